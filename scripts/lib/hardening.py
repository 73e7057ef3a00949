"""Shared helpers of scripts/faults and scripts/load: the demo channel, a docker-registry on
127.0.0.1, store verification (every content-addressed blob must hash to its name) and tree
listings to compare a prefix against a clean one."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(*args):
    print(*args, flush=True)


def binaries(build_dir):
    build = os.path.join(ROOT, build_dir)
    envbuild = os.path.join(build, "envbuild")
    envrun = os.path.join(build, "envrun")
    for b in (envbuild, envrun):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: cmake -S . -B {build_dir} -G Ninja "
                     f"-DCMAKE_BUILD_TYPE=Release && cmake --build {build_dir} --target envbuild envrun")
    return envbuild, envrun


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def check_run(cmd, **kw):
    r = run(cmd, **kw)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}")
    return r


def make_demo(work, envbuild):
    """The demo channel in work/channel and the demo environment.yml next to it."""
    channel = os.path.join(work, "channel")
    if not os.path.exists(os.path.join(channel, "noarch", "repodata.json")):
        check_run([sys.executable, os.path.join(ROOT, "examples/demo/make_channel.py"), channel])
        check_run([envbuild, "index", channel])
    env = os.path.join(work, "environment.yml")
    shutil.copyfile(os.path.join(ROOT, "examples/demo/environment.yml"), env)
    return channel, env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Registry:
    """docker-registry (distribution) with filesystem storage under `directory`."""

    def __init__(self, directory):
        if not shutil.which("docker-registry"):
            raise RuntimeError("docker-registry is not installed (scripts/bootstrap)")
        self.dir = directory
        self.storage = os.path.join(directory, "data")
        os.makedirs(self.storage, exist_ok=True)
        self.port = free_port()
        with open(os.path.join(directory, "config.yml"), "w") as f:
            f.write(f"version: 0.1\nlog: {{level: error}}\n"
                    f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, "
                    f"delete: {{enabled: true}}}}\n"
                    f"http: {{addr: 127.0.0.1:{self.port}}}\n")
        self.log = open(os.path.join(directory, "log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve",
                                      os.path.join(directory, "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class Server:
    """A python helper server of tests/testing (repo_server.py, fault_proxy.py) on 127.0.0.1:
    started with a --port-file and a --log, killed on stop(). requests() reads its JSON log."""

    def __init__(self, script, directory, *args):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.log_path = os.path.join(directory, "requests.jsonl")
        port_file = os.path.join(directory, "port")
        for f in (port_file, self.log_path):
            if os.path.exists(f):
                os.remove(f)
        self.out = open(os.path.join(directory, "server.log"), "w")
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/testing", script),
                                      "--port-file", port_file, "--log", self.log_path,
                                      *args], stdout=self.out, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{script} did not start: see {directory}/server.log")

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def requests(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.out.close()


def fault_proxy(directory, upstream, faults):
    """tests/testing/fault_proxy.py in front of `upstream` (HOST:PORT) with --fault rules."""
    args = ["--upstream", upstream]
    for f in faults:
        args += ["--fault", f]
    return Server("fault_proxy.py", directory, *args)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_stores(top):
    """Checks every content-addressed file under `top`: OCI blob stores (blobs/sha256/<hex>),
    docker-registry storage (blobs/sha256/<xx>/<hex>/data), the package cache
    (pkgs/<sha256 or md5-hex>/<fn>) and the layer cache (layers/*.json naming a blob that
    exists). Returns (number checked, list of problems)."""
    checked, problems = 0, []
    for dirpath, dirnames, filenames in os.walk(top):
        parts = dirpath.split(os.sep)
        if len(parts) >= 2 and parts[-2:] == ["blobs", "sha256"]:
            for f in filenames:
                if len(f) == 64 and all(c in "0123456789abcdef" for c in f):
                    checked += 1
                    if sha256_file(os.path.join(dirpath, f)) != f:
                        problems.append(f"blob {os.path.join(dirpath, f)} does not match its digest")
        if len(parts) >= 4 and parts[-4:-2] == ["blobs", "sha256"] and "data" in filenames:
            checked += 1
            if sha256_file(os.path.join(dirpath, "data")) != parts[-1]:
                problems.append(f"registry blob {dirpath}/data does not match its digest")
        if len(parts) >= 2 and parts[-2] == "pkgs":
            key = parts[-1]
            for f in filenames:
                if not (f.endswith(".conda") or f.endswith(".tar.bz2")):
                    continue
                checked += 1
                p = os.path.join(dirpath, f)
                got = md5_file(p) if key.startswith("md5-") else sha256_file(p)
                if got != key.removeprefix("md5-"):
                    problems.append(f"cached package {p} does not match its key")
        if parts[-1] == "layers" and os.path.isdir(os.path.join(os.path.dirname(dirpath), "oci")):
            for f in filenames:
                if not f.endswith(".json"):
                    continue
                checked += 1
                try:
                    with open(os.path.join(dirpath, f)) as fh:
                        text = fh.read()
                    digests = set(_digests(json.loads(text)))
                except Exception as e:  # noqa: BLE001
                    problems.append(f"layer cache entry {f} unreadable: {e}")
                    continue
                store = os.path.join(os.path.dirname(dirpath), "oci", "blobs", "sha256")
                for d in digests:
                    if not os.path.exists(os.path.join(store, d)):
                        problems.append(f"layer cache entry {f} names missing blob {d[:12]}")
    return checked, problems


def _digests(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "digest" and isinstance(v, str) and v.startswith("sha256:"):
                yield v[7:]
            else:
                yield from _digests(v)
    elif isinstance(value, list):
        for v in value:
            yield from _digests(v)


def listing(top):
    """{relative path: kind/size} of a tree (symlinks by target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = "l:" + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "d"
            else:
                out[rel] = f"f:{os.path.getsize(p)}"
    return out


def diff_listing(expected, got, limit=5):
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    changed = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[:limit]})")
    if extra:
        problems.append(f"{len(extra)} extra (e.g. {extra[:limit]})")
    if changed:
        problems.append(f"{len(changed)} differ (e.g. {changed[:limit]})")
    return problems


def leftovers(top):
    """Temp files and staging directories left under `top` (names with .tmp/.partial/staging)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            low = name.lower()
            if ".tmp" in low or ".partial" in low or "staging" in low or low.startswith(".tmp"):
                found.append(os.path.relpath(os.path.join(dirpath, name), top))
    return found


def kill_after(cmd, delay, env=None, cwd=None):
    """Starts cmd, SIGKILLs its process group after `delay` seconds. Returns (killed, rc, out)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=delay)
        return False, proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return True, proc.returncode, out


def table(headers, rows):
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    log(line)
    log("  ".join("-" * w for w in widths))
    for r in rows:
        log("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
