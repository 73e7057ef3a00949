#!/usr/bin/env python3
"""A tiny HTTP file server for envbuild's tests: ETag, Last-Modified, 304 on If-None-Match /
If-Modified-Since, keep-alive (HTTP/1.1), `Range: bytes=N-` (206 + Content-Range; --no-range
ignores it and answers 200), a flaky mode that answers 503 (Retry-After: 0) the first N times
each path is asked for, and a drop-once mode that sends the headers and half of each file's body
the first time it is asked for, then closes the connection. Every request is logged as one JSON
line.

  repo_server.py --root DIR --port-file F --log L [--fail-first N] [--auth user:pass]
                 [--drop-once] [--no-range]

The port (bound on 127.0.0.1, chosen by the OS) is written to --port-file once listening.
"""
import argparse
import base64
import email.utils
import hashlib
import http.server
import json
import os
import threading

args = None
counts = {}
lock = threading.Lock()


def log(entry):
    with lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, headers, body=b"", drop=False):
        # Logged before answering, so a client that got the answer finds the line.
        log({"method": self.command, "path": self.path, "status": status,
             "body_bytes": len(body) if self.command != "HEAD" else 0,
             "range": self.headers.get("Range"), "dropped": drop,
             "if_none_match": self.headers.get("If-None-Match"),
             "if_modified_since": self.headers.get("If-Modified-Since"),
             "authorization": bool(self.headers.get("Authorization"))})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            if drop:  # half the body, then a dropped connection
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
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
        if not full.startswith(os.path.abspath(args.root)) or not os.path.isfile(full):
            return self.reply(404, {}, b"not found\n")
        with open(full, "rb") as f:
            body = f.read()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        mtime = int(os.stat(full).st_mtime)
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified,
                   "Content-Type": "application/json" if full.endswith(".json") else "application/octet-stream"}
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            if inm == etag:
                return self.reply(304, headers)
        elif ims is not None:
            t = email.utils.parsedate_to_datetime(ims)
            if t is not None and int(t.timestamp()) >= mtime:
                return self.reply(304, headers)
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-") and not args.no_range:
            start = int(rng[6:-1])
            if start >= len(body):
                return self.reply(416, {"Content-Range": f"bytes */{len(body)}"})
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            return self.reply(206, headers, body[start:])
        self.reply(200, headers, body, drop=args.drop_once and n == 1 and len(body) > 1)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--auth", default="")
    p.add_argument("--drop-once", action="store_true")
    p.add_argument("--no-range", action="store_true")
    args = p.parse_args()
    args.root = os.path.abspath(args.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
