#!/usr/bin/env python3
"""A tiny HTTP file server for envbuild's tests: ETag, Last-Modified, 304 on If-None-Match /
If-Modified-Since, keep-alive (HTTP/1.1), and a flaky mode that answers 503 (Retry-After: 0) the
first N times each path is asked for, `Range: bytes=N-` (206; --no-range ignores it and answers
200), and a dropping mode that sends the headers of the first body of each path but only its first
N bytes (--drop-after N) or half of it (--drop-once), then closes the connection, and a
corrupting mode that changes one byte of the first body of each path (--corrupt-once), and a
stalling mode that sends half of the first body of each path that contains STALL and then waits
until the client goes away (--stall-once STALL): a client is then busy downloading for as long as
a test needs, and the next one gets the file.
A directory with an index.json answers with it (so `/v2/` can answer a registry ping). Every
request is logged as one JSON line.

  repo_server.py --root DIR --port-file F --log L [--fail-first N] [--auth user:pass]
                 [--drop-after N | --drop-once] [--corrupt-once] [--no-range] [--stall-once STALL]
                 [--tls CERT KEY] [--always-304]

--always-304 answers 304 Not Modified to every GET, asked to revalidate or not (a hostile server).

--tls serves https with the certificate CERT (PEM, its chain after it) and key KEY.

The port (bound on 127.0.0.1, chosen by the OS) is written to --port-file once listening.
"""
import argparse
import base64
import email.utils
import hashlib
import http.server
import json
import os
import ssl
import threading

args = None
counts = {}
dropped = set()
corrupted = set()
stalled = set()
lock = threading.Lock()


def log(entry):
    with lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, headers, body=b"", drop_after=None):
        # Logged before answering, so a client that got the answer finds the line.
        log({"method": self.command, "path": self.path, "status": status,
             "body_bytes": len(body) if self.command != "HEAD" else 0,
             "if_none_match": self.headers.get("If-None-Match"),
             "if_modified_since": self.headers.get("If-Modified-Since"),
             "range": self.headers.get("Range"),
             "dropped_after": drop_after, "dropped": drop_after is not None,
             "authorization": bool(self.headers.get("Authorization"))})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            if self.command == "GET" and args.stall_once and args.stall_once in self.path:
                with lock:
                    first = self.path not in stalled
                    stalled.add(self.path)
            else:
                first = False
            if first:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.rfile.read()  # returns when the client's connection closes
                self.close_connection = True
                return
            if drop_after is not None:
                self.wfile.write(body[:drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if args.auth:
            want = "Basic " + base64.b64encode(args.auth.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, {"WWW-Authenticate": 'Basic realm="x"'}, b"unauthorized\n")
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
            n = counts[self.path]
        if n <= args.fail_first:
            return self.reply(503, {"Retry-After": "0"}, b"try again\n")
        rel = self.path.split("?")[0].lstrip("/")
        full = os.path.normpath(os.path.join(args.root, rel))
        if os.path.isdir(full) and os.path.isfile(os.path.join(full, "index.json")):
            full = os.path.join(full, "index.json")
        if not full.startswith(os.path.abspath(args.root)) or not os.path.isfile(full):
            return self.reply(404, {}, b"not found\n")
        with open(full, "rb") as f:
            body = f.read()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        mtime = int(os.stat(full).st_mtime)
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified,
                   "Content-Type": "application/json" if full.endswith(".json") else "application/octet-stream"}
        if args.always_304:  # a broken or hostile server: 304 to whatever is asked
            return self.reply(304, headers)
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            if inm == etag:
                return self.reply(304, headers)
        elif ims is not None:
            t = email.utils.parsedate_to_datetime(ims)
            if t is not None and int(t.timestamp()) >= mtime:
                return self.reply(304, headers)
        status = 200
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit() and not args.no_range:
            start = int(rng[6:-1])
            if start >= len(body):
                return self.reply(416, {"Content-Range": "bytes */%d" % len(body)})
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(body) - 1, len(body))
            body = body[start:]
            status = 206
        if self.command == "GET" and args.corrupt_once and body:
            with lock:
                if self.path not in corrupted:
                    corrupted.add(self.path)
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
        drop = None
        drop_after = len(body) // 2 if args.drop_once else args.drop_after
        if self.command == "GET" and 0 <= drop_after < len(body):
            with lock:
                if self.path not in dropped:
                    dropped.add(self.path)
                    drop = drop_after
        self.reply(status, headers, body, drop)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--auth", default="")
    p.add_argument("--drop-after", type=int, default=-1)
    p.add_argument("--drop-once", action="store_true")
    p.add_argument("--corrupt-once", action="store_true")
    p.add_argument("--no-range", action="store_true")
    p.add_argument("--stall-once", default="")
    p.add_argument("--always-304", action="store_true")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = p.parse_args()
    args.root = os.path.abspath(args.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
