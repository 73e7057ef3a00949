#!/usr/bin/env python3
"""A Python package index for envbuild's tests: serves the distribution files of a directory as a
PEP 691 (JSON) and PEP 503 (HTML) simple index, with PEP 658/714 metadata files on request, and
as a find-links page. Every request is logged as one JSON line.

  pypi_server.py --root DIR [--log FILE] [--format negotiate|html|json] [--metadata]
                 [--auth user:pass] [--yank FILE ...] [--no-hashes] [--files-host URL]

Prints "PORT PID" on stdout once listening on 127.0.0.1 (port chosen by the OS).
  /simple/                  the project list
  /simple/<project>/        the project's files (JSON or HTML by Accept, or --format)
  /files/<file>             a file; /files/<file>.metadata its METADATA (with --metadata)
  /links/                   every file as one HTML page of links (for --find-links)
--files-host puts file links on another origin (credentials must not follow them there).
"""
import argparse
import base64
import hashlib
import html
import http.server
import json
import os
import re
import signal
import sys
import threading
import zipfile

args = None
lock = threading.Lock()


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename):
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
    return normalize(stem.rsplit("-", 1)[0])


def wheel_metadata(path):
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            if n.count("/") == 1 and n.endswith(".dist-info/METADATA"):
                return z.read(n)
    return None


def requires_python(path):
    if not path.endswith(".whl"):
        return None
    meta = wheel_metadata(path) or b""
    for line in meta.decode().split("\n"):
        if not line.strip():
            break
        if line.lower().startswith("requires-python:"):
            return line.split(":", 1)[1].strip()
    return None


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", content_type="text/plain"):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"path": self.path, "status": status,
                                    "accept": self.headers.get("Accept"),
                                    "authorization": bool(self.headers.get("Authorization"))}) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="pypi"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def files(self):
        return sorted(f for f in os.listdir(args.root) if not f.startswith("."))

    def link_base(self):
        return (args.files_host.rstrip("/") if args.files_host else "") + "/files/"

    def do_GET(self):
        if args.auth:
            want = "Basic " + base64.b64encode(args.auth.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401)
        path = self.path.split("?")[0]
        if path == "/simple/":
            projects = sorted({project_of(f) for f in self.files()})
            body = "".join(f'<a href="{p}/">{p}</a>\n' for p in projects)
            return self.reply(200, f"<html><body>{body}</body></html>".encode(), "text/html")
        m = re.match(r"^/simple/([^/]+)/$", path)
        if m:
            return self.project(m.group(1))
        if path == "/links/":
            return self.reply(200, self.anchors(self.files()).encode(), "text/html")
        m = re.match(r"^/files/([^/]+)$", path)
        if m:
            name = m.group(1)
            if name.endswith(".metadata") and args.metadata:
                meta = wheel_metadata(os.path.join(args.root, name[:-9]))
                return self.reply(200, meta) if meta else self.reply(404)
            full = os.path.join(args.root, name)
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    return self.reply(200, f.read(), "application/octet-stream")
        return self.reply(404)

    def anchors(self, names):
        out = ["<!DOCTYPE html><html><body>"]
        for n in names:
            full = os.path.join(args.root, n)
            with open(full, "rb") as f:
                digest = sha256(f.read())
            href = self.link_base() + n + ("" if args.no_hashes else "#sha256=" + digest)
            attrs = f'href="{html.escape(href)}"'
            rp = requires_python(full)
            if rp:
                attrs += f' data-requires-python="{html.escape(rp)}"'
            if n in args.yank:
                attrs += ' data-yanked=""'
            if args.metadata and n.endswith(".whl"):
                meta = wheel_metadata(full)
                attrs += f' data-core-metadata="sha256={sha256(meta)}"'
                attrs += f' data-dist-info-metadata="sha256={sha256(meta)}"'
            out.append(f"<a {attrs}>{html.escape(n)}</a><br/>")
        out.append("</body></html>")
        return "\n".join(out)

    def project(self, name):
        project = normalize(name)
        names = [f for f in self.files() if project_of(f) == project]
        if not names:
            return self.reply(404)
        accept = self.headers.get("Accept", "")
        want_json = args.format == "json" or (
            args.format == "negotiate" and "application/vnd.pypi.simple.v1+json" in accept)
        if not want_json:
            return self.reply(200, self.anchors(names).encode(), "text/html")
        files = []
        for n in names:
            full = os.path.join(args.root, n)
            with open(full, "rb") as f:
                digest = sha256(f.read())
            entry = {"filename": n, "url": self.link_base() + n,
                     "hashes": {} if args.no_hashes else {"sha256": digest}}
            rp = requires_python(full)
            if rp:
                entry["requires-python"] = rp
            if n in args.yank:
                entry["yanked"] = True
            if args.metadata and n.endswith(".whl"):
                entry["core-metadata"] = {"sha256": sha256(wheel_metadata(full))}
            files.append(entry)
        body = json.dumps({"meta": {"api-version": "1.0"}, "name": project, "files": files})
        return self.reply(200, body.encode(), "application/vnd.pypi.simple.v1+json")


def never_outlive_the_test():
    """A test killed by its timeout must not leave the server behind: it would keep the files
    it inherited open (a `flock` on the shared CPU lock held forever). Close them, and die with
    the test process (PR_SET_PDEATHSIG; the parent exec'd us, so it is the test itself)."""
    os.closerange(3, 1 << 16)
    parent = os.getppid()
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(0)


def main():
    global args
    never_outlive_the_test()
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--log")
    p.add_argument("--format", default="negotiate", choices=["negotiate", "html", "json"])
    p.add_argument("--metadata", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--yank", action="append", default=[])
    p.add_argument("--no-hashes", action="store_true")
    p.add_argument("--files-host")
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"{server.server_address[1]} {os.getpid()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
