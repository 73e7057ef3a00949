#!/usr/bin/env python3
"""A hostile HTTP(S) server for envbuild's network security tests (docs/security.md "Network").

It records every request it receives (method, path, every header, the body) as one JSON line in
--log, so that a test can check which secrets reached it, and it misbehaves on request:

  --role collector   answers everything: GET/HEAD 200 "{}" (a /token path answers a token JSON),
                     PUT/POST/PATCH 201. It stands for "another host" that must see no secret.
  --role registry    a small registry that wants credentials: --auth basic (USER:PASS from --user,
                     --password) or --auth bearer (a challenge naming --realm, "self" for this
                     server's /token, where a GET with the Basic credentials answers --token).
                     Then /v2/ is 200,
                     HEAD of a blob 404, POST of an upload 202 with Location --upload-location,
                     PUT/PATCH 201, a manifest GET answers a one-layer image manifest, and a blob
                     GET redirects (307) to --blob-redirect + the path.
  --redirect URL     a request (any role) whose path contains --redirect-match (default: every
                     one) is redirected (302) to URL, as written (absolute or relative).
  --trickle-headers S   sends the status line, then one byte of headers every S seconds, forever.
  --trickle-body S      sends the headers (Content-Length 1000000), then one body byte every S
                        seconds, forever.
  --trickle-match TEXT  trickles only for paths that contain TEXT (default: every path).
  --missing TEXT     paths that contain TEXT answer 404 before anything else (".zst": a channel
                     without compressed repodata).
  --tls CERT KEY     serves https.

The port is printed on stdout (one line) once the server listens on --bind (default 127.0.0.1);
the test reads it from the pipe, so nothing waits on a clock.
"""
import argparse
import base64
import hashlib
import http.server
import json
import ssl
import sys
import threading
import time

args = None
lock = threading.Lock()


def log(entry):
    with lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def manifest():
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = b"layer bytes"

    def desc(media_type, data):
        return {"mediaType": media_type, "size": len(data),
                "digest": "sha256:" + hashlib.sha256(data).hexdigest()}
    return json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": desc("application/vnd.oci.image.config.v1+json", config),
                       "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer)]}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        entry = {"method": self.command, "path": self.path,
                 "headers": {k: v for k, v in self.headers.items()},
                 "body": body[:65536].decode("latin-1")}
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):  # so that a search for the password finds it
            entry["basic"] = base64.b64decode(auth[6:] + "==").decode("latin-1")
        log(entry)

    def answer(self, status, headers=None, body=b""):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def trickle(self):
        """Never finishes: the client must give up on its own deadline."""
        try:
            if args.trickle_headers:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self.wfile.flush()
                while True:
                    time.sleep(args.trickle_headers)
                    self.wfile.write(b"X")
                    self.wfile.flush()
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.flush()
            while True:
                time.sleep(args.trickle_body)
                self.wfile.write(b"{")
                self.wfile.flush()
        except OSError:  # the client hung up: what it should do
            self.close_connection = True

    def handle_any(self):
        self.record()
        if args.missing and args.missing in self.path:
            return self.answer(404)
        if (args.trickle_headers or args.trickle_body) and args.trickle_match in self.path:
            return self.trickle()
        if args.redirect and args.redirect_match in self.path:
            return self.answer(302, {"Location": args.redirect})
        if args.role == "collector":
            if self.path.startswith("/token"):
                body = json.dumps({"token": "collector-token"}).encode()
                return self.answer(200, {"Content-Type": "application/json"}, body)
            status = 201 if self.command in ("PUT", "POST", "PATCH") else 200
            return self.answer(status, {"Content-Type": "application/json"}, b"{}")
        return self.registry()

    def authorized(self):
        basic = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        got = self.headers.get("Authorization")
        if args.auth == "basic":
            return got == basic
        if args.auth == "bearer":
            return got == "Bearer " + args.token
        return True

    def registry(self):
        basic = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        if self.path.startswith("/token"):
            if self.headers.get("Authorization") != basic:
                return self.answer(401, {"WWW-Authenticate": 'Basic realm="token"'})
            body = json.dumps({"token": args.token}).encode()
            return self.answer(200, {"Content-Type": "application/json"}, body)
        if not self.authorized():
            realm = args.realm
            if realm == "self":
                scheme = "https" if args.tls else "http"
                realm = "%s://%s:%d/token" % (scheme, args.bind, self.server.server_address[1])
            challenge = 'Basic realm="hostile"' if args.auth == "basic" else \
                'Bearer realm="%s",service="hostile"' % realm
            return self.answer(401, {"WWW-Authenticate": challenge,
                                     "Content-Type": "application/json"},
                               b'{"errors":[{"code":"UNAUTHORIZED","message":"authenticate"}]}')
        if self.path == "/v2/":
            return self.answer(200, {"Content-Type": "application/json"}, b"{}")
        if "/blobs/uploads/" in self.path:
            if self.command == "POST":
                return self.answer(202, {"Location": args.upload_location})
            return self.answer(201)
        if "/blobs/" in self.path:
            if self.command == "HEAD":
                return self.answer(404)
            return self.answer(307, {"Location": args.blob_redirect + self.path})
        if "/manifests/" in self.path:
            if self.command == "PUT":
                return self.answer(201)
            return self.answer(200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                               manifest())
        return self.answer(404)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--role", choices=["collector", "registry"], default="collector")
    p.add_argument("--auth", choices=["none", "basic", "bearer"], default="none")
    p.add_argument("--user", default="user")
    p.add_argument("--password", default="password")
    p.add_argument("--token", default="token")
    p.add_argument("--realm", default="")
    p.add_argument("--upload-location", default="/v2/upload/session")
    p.add_argument("--blob-redirect", default="")
    p.add_argument("--redirect", default="")
    p.add_argument("--redirect-match", default="")
    p.add_argument("--trickle-headers", type=float, default=0)
    p.add_argument("--trickle-body", type=float, default=0)
    p.add_argument("--trickle-match", default="")
    p.add_argument("--missing", default="")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer((args.bind, 0), Handler)
    server.daemon_threads = True
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
