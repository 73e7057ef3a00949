#!/usr/bin/env python3
"""A seeded synthetic conda channel and environment for the image benchmarks (bench/build.sh).

    gen_env.py OUTDIR [--size-mb 1100] [--packages 150] [--seed 1]
    gen_env.py OUTDIR --bump NAME     regenerate one package with the next build number
    gen_env.py OUTDIR --reset         back to build number 0 everywhere

Writes OUTDIR/channel/linux-64/*.conda (+ a few noarch), OUTDIR/environment.yml (every package,
channel OUTDIR/channel) and OUTDIR/packages.json (what was generated). Run `envbuild index
OUTDIR/channel` afterwards.

The mix is meant to look like a real environment: a few large "stable" packages (a cuda-like
runtime, an mkl-like math library, a framework, python) hold most of the bytes; the long tail is
log-normally sized. Inside a package: shared libraries (random bytes with zero runs, about 2:1
compressible, some with a binary prefix placeholder), text (python/headers from a word list, about
4:1, 2% with a text placeholder), many tiny files (metadata, __init__.py) and symlinks
(libX.so -> libX.so.1). Packages depend on a few earlier ones so the solve and the layering's
dependency depths have a real graph. Everything is a function of the seed (and the package's
build number), so a --bump changes exactly one package.
"""

import argparse
import hashlib
import io
import json
import math
import os
import random
import subprocess
import tarfile
import zipfile

PLACEHOLDER = ("/opt/bench/_build_env" + "_placehold" * 30)[:255]
EPOCH = 1700000000
WORDS = None


def words(rng):
    global WORDS
    if WORDS is None:
        r = random.Random(12345)
        WORDS = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in range(r.randint(2, 10)))
                 for _ in range(3000)]
    return WORDS


def text_bytes(rng, size):
    w = words(rng)
    out = bytearray()
    while len(out) < size:
        out += b"    " + b" ".join(rng.choices(w, k=10)) + b"\n"
    return bytes(out[:size])


def binary_bytes(rng, size):
    out = bytearray()
    while len(out) < size:
        chunk = rng.randint(4 << 10, 64 << 10)
        out += rng.randbytes(chunk // 2) + bytes(chunk - chunk // 2)
    return bytes(out[:size])


def tar_of(entries):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, kind, data, mode in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            if kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, data, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-3", "-T2", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def plan(seed, count, size_mb):
    """Names, sizes, depends and subdirs of every package (no file contents)."""
    rng = random.Random(seed)
    total = size_mb << 20
    big = [("cudart-like", 0.22), ("mkl-like", 0.16), ("framework-like", 0.14), ("python", 0.05)]
    pkgs = [{"name": n, "share": s} for n, s in big]
    tail = 1.0 - sum(s for _, s in big)
    raw = [rng.lognormvariate(0, 1.3) for _ in range(count - len(big))]
    for i, r in enumerate(raw):
        family = rng.choice(["lib", "py", "r", "x", "font", "gst", "perl"])
        pkgs.append({"name": f"{family}-pkg{i:03d}", "share": tail * r / sum(raw)})
    for i, p in enumerate(pkgs):
        p["size"] = max(4 << 10, int(total * p["share"]))
        p["subdir"] = "noarch" if p["name"].startswith("py-") and p["size"] < (2 << 20) else "linux-64"
        p["version"] = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        earlier = [q["name"] for q in pkgs[:i]]
        p["depends"] = sorted(set(rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))))
        if p["name"].startswith("py-") and "python" not in p["depends"] and i > 3:
            p["depends"].append("python")
        p["seed"] = rng.getrandbits(32)
    return pkgs


def make_package(p, build_number, outdir):
    rng = random.Random(p["seed"] * 1000 + build_number)
    name, version, subdir = p["name"], p["version"], p["subdir"]
    build = f"h{p['seed'] & 0xffff:04x}_{build_number}"
    stem = f"{name}-{version}-{build}"
    files = {}  # path -> (kind, data, mode, placeholder mode)
    budget = p["size"]
    base = name.replace("-", "_")
    # Binaries: 70% of a linux-64 package, in 64 KiB - 48 MiB files.
    if subdir == "linux-64":
        left = int(budget * 0.7)
        n = 0
        while left > (16 << 10):
            size = min(left, int(rng.lognormvariate(math.log(1 << 20), 1.4)))
            size = max(16 << 10, min(size, 48 << 20))
            data = bytearray(binary_bytes(rng, size))
            mode = None
            if rng.random() < 0.1:  # a binary with the build prefix in it (conda-build pads it)
                at = rng.randrange(0, max(1, size - 512))
                data[at:at + len(PLACEHOLDER) + 5] = PLACEHOLDER.encode() + b"/lib\0"
                mode = "binary"
            path = f"lib/lib{base}_{n}.so.1"
            files[path] = ("file", bytes(data[:size]), 0o755, mode)
            files[f"lib/lib{base}_{n}.so"] = ("symlink", f"lib{base}_{n}.so.1", 0o777, None)
            left -= size
            n += 1
        budget -= int(budget * 0.7) - left
    # Text: the rest, in 512 B - 64 KiB files, 2% of them holding the prefix; tiny files too.
    n = 0
    root = f"lib/python3.11/site-packages/{base}" if name.startswith("py-") else f"share/{base}"
    while budget > 0:
        size = min(budget, int(rng.lognormvariate(math.log(6 << 10), 1.0)))
        size = max(64, min(size, 64 << 10))
        data = text_bytes(rng, size)
        mode = None
        if rng.random() < 0.02:
            data = b"prefix = '" + PLACEHOLDER.encode() + b"'\n" + data
            mode = "text"
        files[f"{root}/m{n // 100}/f{n}.py"] = ("file", data, 0o644, mode)
        if n % 20 == 0:
            files[f"{root}/m{n // 100}/__init__.py"] = ("file", b"", 0o644, None)
        budget -= len(data)
        n += 1
    if subdir == "linux-64" and rng.random() < 0.5:
        script = f'#!/bin/sh\nexec "{PLACEHOLDER}/bin/python" -m {base} "$@"\n'.encode()
        files[f"bin/{name}"] = ("file", script, 0o755, "text")

    paths = []
    for path in sorted(files):
        kind, data, mode, ph = files[path]
        raw = data.encode() if kind == "symlink" else data
        entry = {"_path": path, "path_type": "softlink" if kind == "symlink" else "hardlink",
                 "sha256": hashlib.sha256(raw).hexdigest(), "size_in_bytes": len(raw)}
        if ph:
            entry.update({"file_mode": ph, "prefix_placeholder": PLACEHOLDER})
        paths.append(entry)
    index = {"name": name, "version": version, "build": build, "build_number": build_number,
             "depends": p["depends"], "license": "BSD-3-Clause", "subdir": subdir,
             "timestamp": (EPOCH + build_number * 86400) * 1000}
    if subdir == "linux-64":
        index.update({"platform": "linux", "arch": "x86_64"})
    else:
        index["noarch"] = "generic"
    info = {
        "info/index.json": json.dumps(index, indent=2, sort_keys=True).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2).encode(),
        "info/files": ("\n".join(sorted(files)) + "\n").encode(),
        "info/about.json": json.dumps({"license": "BSD-3-Clause",
                                       "summary": f"synthetic {name}"}).encode(),
    }
    has_prefix = [f"{PLACEHOLDER} {f[3]} {path}" for path, f in sorted(files.items()) if f[3]]
    if has_prefix:
        info["info/has_prefix"] = ("\n".join(has_prefix) + "\n").encode()
    os.makedirs(os.path.join(outdir, subdir), exist_ok=True)
    pkg_tar = zstd(tar_of([(p_, k, d, m) for p_, (k, d, m, _) in files.items()]))
    info_tar = zstd(tar_of([(p_, "file", d, 0o644) for p_, d in info.items()]))
    out = os.path.join(outdir, subdir, stem + ".conda")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for member, data in (("metadata.json", b'{"conda_pkg_format_version": 2}'),
                             (f"pkg-{stem}.tar.zst", pkg_tar), (f"info-{stem}.tar.zst", info_tar)):
            zi = zipfile.ZipInfo(member, date_time=(2023, 11, 14, 22, 13, 20))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return out, sum(len(f[1]) for f in files.values() if f[0] == "file")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--size-mb", type=int, default=1100)
    ap.add_argument("--packages", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bump", help="regenerate this package with the next build number")
    ap.add_argument("--reset", action="store_true", help="undo every --bump")
    a = ap.parse_args()
    channel = os.path.join(os.path.abspath(a.outdir), "channel")
    state_file = os.path.join(a.outdir, "packages.json")
    if a.reset:
        with open(state_file) as f:
            state = json.load(f)
        for p in state["packages"]:
            if p["build_number"]:
                os.remove(os.path.join(channel, p["subdir"], p["file"]))
                p["build_number"] = 0
                p["file"] = os.path.basename(make_package(p, 0, channel)[0])
        with open(state_file, "w") as f:
            json.dump(state, f, indent=1)
        return
    if a.bump:
        with open(state_file) as f:
            state = json.load(f)
        p = next(p for p in state["packages"] if p["name"] == a.bump)
        old = os.path.join(channel, p["subdir"], p["file"])
        p["build_number"] += 1
        out, size = make_package(p, p["build_number"], channel)
        os.remove(old)
        p["file"] = os.path.basename(out)
        with open(state_file, "w") as f:
            json.dump(state, f, indent=1)
        print(f"bumped {a.bump}: {p['file']} ({size} bytes)")
        return
    pkgs = plan(a.seed, a.packages, a.size_mb)
    total = 0
    for p in pkgs:
        p["build_number"] = 0
        out, size = make_package(p, 0, channel)
        p["file"] = os.path.basename(out)
        total += size
    with open(state_file, "w") as f:
        json.dump({"seed": a.seed, "packages": pkgs}, f, indent=1)
    with open(os.path.join(a.outdir, "environment.yml"), "w") as f:
        f.write(f"name: bench\nchannels:\n  - {channel}\n  - nodefaults\ndependencies:\n")
        for p in pkgs:
            f.write(f"  - {p['name']}\n")
    print(f"{len(pkgs)} packages, {total / 1048576:.0f} MB installed, in {channel}")


if __name__ == "__main__":
    main()
