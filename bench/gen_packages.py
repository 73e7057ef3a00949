#!/usr/bin/env python3
"""A seeded synthetic conda channel for the install benchmark (bench/install.sh).

  gen_packages.py OUTDIR [--size-mb 1100] [--packages 150] [--seed 1]

Writes OUTDIR/linux-64/*.conda (and a few small *.tar.bz2), every package with info/index.json,
info/paths.json (prefix_placeholder + file_mode where a file holds the placeholder) and
info/files, and OUTDIR/manifest.json (per package: file name, sha256, size, and the files that
hold the placeholder with their mode), which the baseline uses. Run `envbuild index OUTDIR`
afterwards for repodata.json. The same seed gives the same bytes.

File-size mix, roughly what a scientific Python environment has (of the total size):
  * ~20% small text files (.py, .h, .txt; 1-32 KiB, log-uniform), 2% of them with the text
    placeholder (shebangs, config lines);
  * ~55% shared-library-like binaries (.so; 128 KiB - 8 MiB, log-uniform; random bytes with zero
    runs, about 2:1 compressible), 10% of them with a NUL-terminated binary placeholder;
  * ~25% a few 50-100 MiB blobs (model weights or data: incompressible) in a few packages;
  * a versioned symlink for some libraries (libx.so -> libx.so.1).
"""

import argparse
import bz2
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


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.words = [bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in
                            range(self.rng.randint(2, 12))) for _ in range(5000)]

    def text(self, size, placeholder):
        rng, out, n = self.rng, [], 0
        if placeholder:
            line = b"#!" + PLACEHOLDER.encode() + b"/bin/python\nPREFIX = '" + PLACEHOLDER.encode() + b"'\n"
            out.append(line)
            n += len(line)
        while n < size:
            line = b" ".join(rng.choices(self.words, k=rng.randint(3, 14))) + b"\n"
            out.append(line)
            n += len(line)
            if placeholder and rng.random() < 0.01:
                line = b"path = '" + PLACEHOLDER.encode() + b"/lib/x'\n"
                out.append(line)
                n += len(line)
        return b"".join(out)[:max(size, len(out[0]) if placeholder else 0)]

    def binary(self, size, placeholder):
        rng, parts, n = self.rng, [], 0
        while n < size:
            chunk = rng.randint(4 << 10, 64 << 10)
            parts.append(rng.randbytes(chunk))
            parts.append(bytes(chunk))  # a zero run: about 2:1 compressible overall
            n += 2 * chunk
        data = bytearray(b"".join(parts)[:size])
        if placeholder and size > 4096:
            for _ in range(rng.randint(1, 3)):
                s = PLACEHOLDER.encode() + b"/lib:" + PLACEHOLDER.encode() + b"/share/terminfo\0"
                at = rng.randrange(0, size - len(s))
                data[at:at + len(s)] = s
        return bytes(data)


class Package:
    def __init__(self, name, version, build, depends):
        self.name, self.version, self.build, self.depends = name, version, build, depends
        self.files = {}  # path -> (kind, data, mode, placeholder mode or None)

    @property
    def stem(self):
        return f"{self.name}-{self.version}-{self.build}"

    def size(self):
        return sum(len(d) for k, d, m, p in self.files.values() if k == "file")

    def info(self):
        paths = []
        for path in sorted(self.files):
            kind, data, mode, ph = self.files[path]
            if kind == "symlink":
                paths.append({"_path": path, "path_type": "softlink",
                              "sha256": hashlib.sha256(data.encode()).hexdigest(),
                              "size_in_bytes": len(data.encode())})
                continue
            e = {"_path": path, "path_type": "hardlink",
                 "sha256": hashlib.sha256(data).hexdigest(), "size_in_bytes": len(data)}
            if ph:
                e.update({"file_mode": ph, "prefix_placeholder": PLACEHOLDER})
            paths.append(e)
        index = {"name": self.name, "version": self.version, "build": self.build,
                 "build_number": 0, "depends": self.depends, "license": "MIT",
                 "subdir": "linux-64", "platform": "linux", "arch": "x86_64",
                 "timestamp": EPOCH * 1000}
        return {
            "info/index.json": json.dumps(index, indent=2, sort_keys=True).encode(),
            "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2).encode(),
            "info/files": ("\n".join(sorted(self.files)) + "\n").encode(),
        }

    def tar(self, entries):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
            for path, (kind, data, mode) in sorted(entries.items()):
                ti = tarfile.TarInfo(path)
                ti.mtime, ti.uid, ti.gid = EPOCH, 0, 0
                if kind == "symlink":
                    ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data, 0o777
                    t.addfile(ti)
                else:
                    ti.size, ti.mode = len(data), mode
                    t.addfile(ti, io.BytesIO(data))
        return out.getvalue()

    def write(self, outdir, fmt):
        info = {p: ("file", d, 0o644) for p, d in self.info().items()}
        pkg = {p: (k, d, m) for p, (k, d, m, _) in self.files.items()}
        if fmt == "tar.bz2":
            path = os.path.join(outdir, self.stem + ".tar.bz2")
            with open(path, "wb") as f:
                f.write(bz2.compress(self.tar({**info, **pkg}), 9))
            return path
        path = os.path.join(outdir, self.stem + ".conda")
        members = {"metadata.json": json.dumps({"conda_pkg_format_version": 2}).encode()}
        for prefix, entries in (("info", info), ("pkg", pkg)):
            members[f"{prefix}-{self.stem}.tar.zst"] = subprocess.run(
                ["zstd", "-q", "-3", "-T2", "-c"], input=self.tar(entries),
                stdout=subprocess.PIPE, check=True).stdout
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            for name in ["metadata.json", f"pkg-{self.stem}.tar.zst", f"info-{self.stem}.tar.zst"]:
                zi = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
                zi.external_attr = 0o644 << 16
                z.writestr(zi, members[name])
        return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--size-mb", type=int, default=1100)
    ap.add_argument("--packages", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    g = Gen(a.seed)
    rng = g.rng
    total = a.size_mb << 20
    budgets = {"text": total * 20 // 100, "so": total * 55 // 100, "blob": total * 25 // 100}
    pkgs = [Package(f"bench-pkg{i:03d}", f"1.{i % 7}.{i % 3}", f"h{i:08x}_0",
                    [f"bench-pkg{d:03d}" for d in sorted(rng.sample(range(i), min(i, 3)))])
            for i in range(a.packages)]
    # Blobs: 50-100 MiB each, in the first few packages after the base ones.
    left, n = budgets["blob"], 0
    while left > (20 << 20):
        size = min(left, rng.randint(50 << 20, 100 << 20))
        pkgs[5 + 7 * n].files[f"share/bench/data{n}.bin"] = ("file", rng.randbytes(size), 0o644, None)
        left -= size
        n += 1
    # Shared libraries.
    left, n = budgets["so"], 0
    while left > 0:
        size = min(left, log_uniform(rng, 128 << 10, 8 << 20))
        p = rng.choice(pkgs)
        ph = "binary" if rng.random() < 0.10 else None
        path = f"lib/lib{p.name}_{n}.so"
        p.files[path + ".1"] = ("file", g.binary(size, ph), 0o755, ph)
        if rng.random() < 0.5:
            p.files[path] = ("symlink", os.path.basename(path) + ".1", 0o777, None)
        left -= size
        n += 1
    # Small text files, grouped in a module tree per package.
    left, n = budgets["text"], 0
    exts = [".py"] * 6 + [".h"] * 3 + [".txt", ".json"]
    while left > 0:
        size = min(left, log_uniform(rng, 1 << 10, 32 << 10))
        p = rng.choice(pkgs)
        ph = "text" if rng.random() < 0.02 else None
        ext = rng.choice(exts)
        top = "include" if ext == ".h" else f"lib/python3.11/site-packages/{p.name.replace('-', '_')}"
        path = f"{top}/m{n % 13}/f{n}{ext}"
        if ph:
            path = f"bin/tool{n}"
        p.files[path] = ("file", g.text(size, ph), 0o755 if ph else 0o644, ph)
        left -= size
        n += 1
    out = os.path.join(a.outdir, "linux-64")
    os.makedirs(out, exist_ok=True)
    manifest = []
    for p in pkgs:
        fmt = "tar.bz2" if p.size() < (4 << 20) and rng.random() < 0.3 else "conda"
        path = p.write(out, fmt)
        with open(path, "rb") as f:
            data = f.read()
        manifest.append({"fn": os.path.basename(path), "sha256": hashlib.sha256(data).hexdigest(),
                         "size": len(data), "installed_bytes": p.size(),
                         "placeholders": sorted([path, v[3]] for path, v in p.files.items() if v[3])})
    with open(os.path.join(a.outdir, "manifest.json"), "w") as f:
        json.dump({"placeholder": PLACEHOLDER, "packages": manifest}, f, indent=1)
    files = sum(len(p.files) for p in pkgs)
    print(f"{len(pkgs)} packages, {files} files, {sum(m['installed_bytes'] for m in manifest) >> 20} MiB "
          f"installed, {sum(m['size'] for m in manifest) >> 20} MiB of packages in {out}")


if __name__ == "__main__":
    main()
