#!/usr/bin/env python3
"""A tiny Docker token-auth service for the registry tests (Docker "token.md" flow).

GET /token?service=S&scope=repository:NAME:pull,push[&scope=...] with HTTP Basic USER:PASS
answers {"token": JWT, "access_token": JWT}; the JWT is RS256-signed with --key and carries the
certificate (--cert) in its x5c header, which the registry checks against its rootcertbundle.
Wrong or missing credentials get 401. The chosen port is written to --port-file.
Every request line is appended to --log (scopes only; never the Authorization header).
"""
import argparse
import base64
import http.server
import json
import os
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()

    key = serialization.load_pem_private_key(open(args.key, "rb").read(), password=None)
    cert = x509.load_pem_x509_certificate(open(args.cert, "rb").read())
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    expected = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(url.query)
            with open(args.log, "a") as log:
                log.write(json.dumps({"path": url.path, "scope": q.get("scope", [])}) + "\n")
            if url.path != "/token" or self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"details":"bad credentials"}')
                return
            access = []
            for scope in q.get("scope", []):
                parts = scope.split(":")
                if len(parts) >= 3 and parts[0] == "repository":
                    access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                                   "actions": parts[-1].split(",")})
            now = int(time.time())
            header = {"alg": "RS256", "typ": "JWT", "x5c": [x5c]}
            claims = {"iss": args.issuer, "sub": args.user, "aud": q.get("service", [""])[0],
                      "exp": now + 300, "nbf": now - 10, "iat": now,
                      "jti": b64url(os.urandom(12)), "access": access}
            signing_input = b64url(json.dumps(header).encode()) + "." + \
                b64url(json.dumps(claims).encode())
            sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
            token = signing_input + "." + b64url(sig)
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
