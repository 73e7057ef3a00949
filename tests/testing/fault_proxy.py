#!/usr/bin/env python3
"""A fault-injecting HTTP reverse proxy for envbuild's fault trials: put it in front of a real
docker-registry (or tests/testing/repo_server.py serving a conda channel) and it forwards every
request unchanged (Host included, so a registry's Location headers point back at the proxy),
except those a --fault rule picks, which get the fault instead:

  500, 502, 503   that status with a distribution-spec JSON error body (upstream not asked)
  429             429 Too Many Requests with Retry-After: 1 (upstream not asked)
  blob-unknown    400 MANIFEST_BLOB_UNKNOWN, what distribution 2.8 may answer a manifest PUT
                  while another upload of one of its blobs rewrites the blob's link (upstream
                  not asked)
  reset           the connection closed without an answer (upstream not asked)
  lost            forwarded, then the connection closed without the answer: the upstream did
                  the work (a blob upload completed) but the client never hears of it
  drop            the upstream's headers and the first half of its body, then the connection
                  closed (Content-Length promises the whole body)
  short           a truncated body whose Content-Length matches it (a server that lies
                  consistently: only a size or digest check notices)
  corrupt         the body with its bytes changed (same length: only a digest check notices)

A rule is FAULT[:COUNT][@METHOD][~REGEX]: the first COUNT requests (default 1; "all" for every
one) whose method is METHOD (default any) and whose path matches REGEX (re.search; default any)
get FAULT. Rules are tried in order; a request takes the first rule it matches that has faults
left. Body faults (drop, short, corrupt) apply to 2xx answers with a body only; other answers of
a matching request pass through without using up the rule.

  fault_proxy.py --upstream 127.0.0.1:5000 --port-file F --log L --fault 503:2@GET~/blobs/

--delay MIN-MAX (milliseconds) holds every request a random time in that range before it goes
upstream, and its answer as long again before it goes back (--seed makes the draws repeatable):
concurrent clients then interleave their registry calls in ever different orders.

--tags-page N answers GET /v2/<name>/tags/list itself from the upstream's whole list (which
distribution 2.8 sends at once), the way a paginating registry does (distribution-spec "Listing
Tags"): sorted, after ?last=, at most min(?n=, N) tags, and a `Link: <...>; rel="next"` header
while more remain. --tags-link-origin ORIGIN puts ORIGIN in front of that link's path (a link
that leaves the registry).

It is a forward proxy too: a request in absolute form (`GET http://host/path`, what a client
configured with this proxy sends) goes to --upstream with its path, whatever host it names, so a
test can name a host that resolves nowhere (`conda.invalid`) and know the request came through
here; `CONNECT host:port` (an https URL through the proxy) opens a tunnel to --upstream, whatever
host it names. --proxy-auth USER:PASS answers such a request 407 unless its
Proxy-Authorization is theirs; the header is the proxy's and is not forwarded.

The port (127.0.0.1, chosen by the OS) is written to --port-file once listening. Every request
is logged as one JSON line: method, path, upstream status, fault applied; for a forward-proxy
request also the URL asked for and its Proxy-Authorization and Authorization headers.
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import random
import re
import select
import socket
import threading
import time
import urllib.parse

args = None
rules = []
lock = threading.Lock()

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}
BODY_FAULTS = {"drop", "short", "corrupt"}


class Rule:
    def __init__(self, spec):
        m = re.fullmatch(r"([a-z0-9-]+)(?::(\d+|all))?(?:@([A-Z]+))?(?:~(.*))?", spec)
        if not m or m.group(1) not in {"500", "502", "503", "429", "blob-unknown", "reset",
                                       "lost", "drop", "short", "corrupt"}:
            raise SystemExit(f"bad --fault {spec!r}")
        self.fault = m.group(1)
        self.left = -1 if m.group(2) == "all" else int(m.group(2) or 1)
        self.method = m.group(3)
        self.regex = re.compile(m.group(4)) if m.group(4) else None
        self.used = 0

    def matches(self, method, path):
        return (self.left != 0 and (self.method is None or self.method == method)
                and (self.regex is None or self.regex.search(path) is not None))

    def take(self):
        self.used += 1
        if self.left > 0:
            self.left -= 1


def pick(method, path, body_fault_ok=None):
    """The first matching rule with faults left (taken), or None. body_fault_ok: None picks any
    rule; True/False picks only body faults / only request faults."""
    with lock:
        for r in rules:
            if not r.matches(method, path):
                continue
            is_body = r.fault in BODY_FAULTS
            if body_fault_ok is not None and is_body != body_fault_ok:
                continue
            r.take()
            return r.fault
    return None


def delay():
    if args.delay:
        low, high = args.delay
        time.sleep(random.uniform(low, high) / 1000.0)


TAGS_LIST = re.compile(r"^/v2/(.+)/tags/list$")


def paginate_tags(path, status, data, headers):
    """The page of a tag list that `path` asks for (a 200 from upstream with every tag)."""
    url = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(url.query)
    tags = sorted(json.loads(data).get("tags") or [])
    last = query.get("last", [""])[0]
    size = min(int(query.get("n", [args.tags_page])[0]), args.tags_page)
    rest = [t for t in tags if t > last]
    page = rest[:size]
    out = [(k, v) for k, v in headers if k.lower() not in ("link", "content-length")]
    if len(rest) > size:
        next_query = urllib.parse.urlencode({"n": size, "last": page[-1]})
        out.append(("Link", f'<{args.tags_link_origin}{url.path}?{next_query}>; rel="next"'))
    body = json.dumps({"name": json.loads(data).get("name"), "tags": page}).encode()
    return status, body, out


def log(entry):
    with lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def read_request_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def hang_up(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # Logs a forward-proxy request's URL and credentials; answers 407 (True) when --proxy-auth
    # wants others.
    def refuse_proxy_request(self, entry):
        given = self.headers.get("Proxy-Authorization")
        entry.update(url=self.path, proxy_authorization=given,
                     authorization=self.headers.get("Authorization"))
        if not args.proxy_auth or given == "Basic " + base64.b64encode(
                args.proxy_auth.encode()).decode():
            return False
        entry["status"] = 407
        log(entry)
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def handle_any(self):
        method, path = self.command, self.path
        target = urllib.parse.urlsplit(path)
        if target.scheme:  # absolute form: this is the client's forward proxy
            path = urllib.parse.urlunsplit(("", "", target.path or "/", target.query, ""))
        body = self.read_request_body()
        entry = {"method": method, "path": path, "request_bytes": len(body)}
        if target.scheme and self.refuse_proxy_request(entry):
            return
        fault = pick(method, path, body_fault_ok=False)
        if fault in ("500", "502", "503", "429", "blob-unknown"):
            status = 400 if fault == "blob-unknown" else int(fault)
            code = {400: "MANIFEST_BLOB_UNKNOWN", 429: "TOOMANYREQUESTS"}.get(status, "UNAVAILABLE")
            payload = json.dumps({"errors": [{"code": code,
                                              "message": "injected fault " + fault}]}).encode()
            entry.update(status=status, fault=fault)
            log(entry)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(payload)
            return
        if fault == "reset":
            entry.update(status=None, fault=fault)
            log(entry)
            return self.hang_up()

        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        delay()
        upstream = http.client.HTTPConnection(args.upstream, timeout=120)
        try:
            upstream_path = path
            paged = args.tags_page and method == "GET" and TAGS_LIST.match(
                urllib.parse.urlsplit(path).path)
            if paged:  # the whole list: this proxy cuts the pages
                upstream_path = urllib.parse.urlsplit(path).path
            upstream.request(method, upstream_path, body=body if body or method in
                             ("PUT", "POST", "PATCH") else None, headers=headers)
            resp = upstream.getresponse()
            data = resp.read()
            status, reason, out_headers = resp.status, resp.reason, resp.getheaders()
            declared = resp.getheader("Content-Length")
            if paged and status == 200:
                status, data, out_headers = paginate_tags(path, status, data, out_headers)
                declared = str(len(data))
        finally:
            upstream.close()
        delay()
        entry["status"] = status
        if fault == "lost":
            entry["fault"] = fault
            log(entry)
            return self.hang_up()

        send_body = data
        length = len(data) if method != "HEAD" else int(declared or 0)
        cut = None
        if method != "HEAD" and 200 <= status < 300 and data:
            fault = pick(method, path, body_fault_ok=True)
            if fault == "drop":
                cut = len(data) // 2
            elif fault == "short":
                send_body = data[: len(data) // 2]
                length = len(send_body)
            elif fault == "corrupt":
                b = bytearray(data)
                for i in range(0, len(b), max(1, len(b) // 16)):
                    b[i] ^= 0x5A
                send_body = bytes(b)
            if fault:
                entry["fault"] = fault
        log(entry)
        self.send_response(status, reason)
        for k, v in out_headers:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if method == "HEAD":
            return
        if cut is not None:
            self.wfile.write(send_body[:cut])
            self.wfile.flush()
            return self.hang_up()
        self.wfile.write(send_body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    def do_CONNECT(self):
        entry = {"method": "CONNECT", "path": self.path, "request_bytes": 0}
        if self.refuse_proxy_request(entry):
            return
        host, port = args.upstream.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=120)
        entry["status"] = 200
        log(entry)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        # Bytes both ways until either side closes: the TLS inside is the client's and server's.
        sides = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(sides, [], [], 120)
                if not readable:
                    return
                for side in readable:
                    data = side.recv(65536)
                    if not data:
                        return
                    (upstream if side is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="HOST:PORT of the real server (http)")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--proxy-auth", default="", help="USER:PASS a forward-proxy request needs")
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--delay", type=lambda v: tuple(float(x) for x in v.split("-", 1)),
                   help="MIN-MAX milliseconds before forwarding and before answering")
    p.add_argument("--seed", type=int)
    p.add_argument("--tags-page", type=int, default=0, help="paginate tag lists, N per page")
    p.add_argument("--tags-link-origin", default="", help="origin in front of next-page links")
    args = p.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    rules.extend(Rule(s) for s in args.fault)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
