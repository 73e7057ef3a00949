#!/usr/bin/env python3
"""Builds the demo's local conda channel from the sources in this folder.

Packages (conda package format v1 `.tar.bz2` and v2 `.conda`, with info/index.json, paths.json,
link.json, about.json), reproducible byte for byte (sorted entries, fixed owner and mtime):

  python        the host's CPython (Debian's /usr/bin/python3.X + its stdlib), so `python train.py`
                is real; a .pth file adds lib/pythonX.Y/site-packages (Debian's site.py only knows
                dist-packages).
  demo-hello    a C program compiled with a long, conda-build style prefix placeholder in its
                binary (file_mode binary).
  demo-tools    a shell tool with a text placeholder and a post-link script.
  demo-trainer  noarch: python: a library, an entry point `demo-train`, an activate.d script.

and, for the environment's pip: section, two pure wheels in OUTDIR/wheels (a find-links directory):

  demo-metrics  a library with a console script `demo-metrics`; requires demo-units (and, behind a
                marker no target matches, a project that exists nowhere).
  demo-units    what demo-metrics requires.

Usage: make_channel.py OUTDIR   (writes OUTDIR/linux-64, OUTDIR/noarch and OUTDIR/wheels; run
`envbuild index OUTDIR` afterwards to write repodata.json). Also used by the tests to make a python
package.
"""

import argparse
import base64
import bz2
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

# conda-build pads the build prefix to 255 characters so that a binary can later be patched to
# any prefix up to that length; we do the same.
PLACEHOLDER = ("/opt/envbuild-demo/_build_env" + "_placehold" * 30)[:255]
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
HERE = os.path.dirname(os.path.abspath(__file__))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Package:
    """An in-memory package description: files with their paths.json attributes."""

    def __init__(self, name, version, build, subdir, depends=(), noarch=None, license="BSD-3-Clause"):
        self.name, self.version, self.build, self.subdir = name, version, build, subdir
        self.depends, self.noarch, self.license = list(depends), noarch, license
        self.files = {}  # path -> (kind, data_or_target, mode, placeholder_mode)
        self.link_json = None

    def add_file(self, path, data: bytes, mode=0o644, placeholder=None):
        self.files[path] = ("file", data, mode, placeholder)

    def add_symlink(self, path, target):
        self.files[path] = ("symlink", target, 0o777, None)

    def add_tree(self, src_root, dest_root, skip=()):
        for root, dirs, names in os.walk(src_root):
            rel_root = os.path.relpath(root, src_root)
            dirs[:] = sorted(d for d in dirs if d not in skip and d != "__pycache__")
            for name in sorted(names):
                src = os.path.join(root, name)
                rel = os.path.normpath(os.path.join(dest_root, rel_root, name))
                if os.path.islink(src) and os.path.isabs(os.readlink(src)):
                    # An absolute link (Debian: sitecustomize.py -> /etc/...) would point outside
                    # the package, which installers reject: package what it points to instead.
                    if os.path.isfile(src):
                        with open(src, "rb") as f:
                            self.add_file(rel, f.read(), 0o644)
                elif os.path.islink(src):
                    self.add_symlink(rel, os.readlink(src))
                elif os.path.isfile(src):
                    with open(src, "rb") as f:
                        data = f.read()
                    self.add_file(rel, data, 0o755 if os.access(src, os.X_OK) else 0o644)

    @property
    def fn_stem(self):
        return f"{self.name}-{self.version}-{self.build}"

    def index_json(self):
        index = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": int(self.build.rsplit("_", 1)[-1]) if self.build[-1].isdigit() else 0,
            "depends": self.depends,
            "license": self.license,
            "subdir": self.subdir,
            "timestamp": EPOCH * 1000,
        }
        if self.subdir != "noarch":
            index.update({"platform": "linux", "arch": "x86_64"})
        if self.noarch:
            index["noarch"] = self.noarch
        return index

    def info_files(self):
        paths = []
        for path in sorted(self.files):
            kind, data, mode, placeholder = self.files[path]
            entry = {"_path": path}
            if kind == "symlink":
                entry.update({"path_type": "softlink", "sha256": sha256_bytes(data.encode()),
                              "size_in_bytes": len(data.encode())})
            else:
                entry.update({"path_type": "hardlink", "sha256": sha256_bytes(data),
                              "size_in_bytes": len(data)})
                if placeholder:
                    entry.update({"file_mode": placeholder, "prefix_placeholder": PLACEHOLDER})
            paths.append(entry)
        info = {
            "info/index.json": json.dumps(self.index_json(), indent=2, sort_keys=True).encode(),
            "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2,
                                          sort_keys=True).encode(),
            "info/files": ("\n".join(sorted(self.files)) + "\n").encode(),
            "info/about.json": json.dumps({"license": self.license,
                                           "summary": f"envbuild demo package {self.name}"},
                                          indent=2, sort_keys=True).encode(),
        }
        has_prefix = [f"{PLACEHOLDER} {p[3]} {path}" for path, p in sorted(self.files.items()) if p[3]]
        if has_prefix:
            info["info/has_prefix"] = ("\n".join(has_prefix) + "\n").encode()
        if self.link_json:
            info["info/link.json"] = json.dumps(self.link_json, indent=2, sort_keys=True).encode()
        return info

    def _tar(self, entries):
        """A deterministic uncompressed tar of (path, kind, data, mode) in sorted order."""
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

    def _pkg_entries(self):
        return [(p, k, d, m) for p, (k, d, m, _) in self.files.items()]

    def _info_entries(self):
        return [(p, "file", d, 0o644) for p, d in self.info_files().items()]

    def write_tar_bz2(self, outdir):
        path = os.path.join(outdir, self.fn_stem + ".tar.bz2")
        data = self._tar(self._info_entries() + self._pkg_entries())
        with open(path, "wb") as f:
            f.write(bz2.compress(data, 9))
        return path

    def write_conda(self, outdir):
        """The v2 format: a stored zip of metadata.json, info-*.tar.zst and pkg-*.tar.zst."""
        if not shutil.which("zstd"):
            return self.write_tar_bz2(outdir)
        path = os.path.join(outdir, self.fn_stem + ".conda")
        members = {"metadata.json": json.dumps({"conda_pkg_format_version": 2}).encode()}
        for prefix, entries in (("info", self._info_entries()), ("pkg", self._pkg_entries())):
            raw = self._tar(entries)
            members[f"{prefix}-{self.fn_stem}.tar.zst"] = subprocess.run(
                ["zstd", "-q", "-19", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            for name in ["metadata.json", f"pkg-{self.fn_stem}.tar.zst", f"info-{self.fn_stem}.tar.zst"]:
                info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
                info.external_attr = 0o644 << 16
                z.writestr(info, members[name])
        return path


def python_package(python=None):
    """The host's CPython as a conda package (relocatable: CPython finds its stdlib from
    the executable's location)."""
    default = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    python = python or os.path.realpath(default or sys.executable)
    info = json.loads(subprocess.run(
        [python, "-c", "import json,sys,sysconfig;print(json.dumps({'v':sys.version_info[:3],"
         "'stdlib':sysconfig.get_paths()['stdlib'],'exe':sys.executable}))"],
        stdout=subprocess.PIPE, check=True).stdout)
    major, minor, micro = info["v"]
    xy = f"{major}.{minor}"
    pkg = Package("python", f"{major}.{minor}.{micro}", "host_0", "linux-64",
                  depends=[f"__glibc >=2.17"], license="PSF-2.0")
    with open(os.path.realpath(info["exe"]), "rb") as f:
        pkg.add_file(f"bin/python{xy}", f.read(), 0o755)
    pkg.add_symlink("bin/python3", f"python{xy}")
    pkg.add_symlink("bin/python", f"python{xy}")
    pkg.add_tree(info["stdlib"], f"lib/python{xy}",
                 skip=("test", "idlelib", "tkinter", "turtledemo", "site-packages", "dist-packages",
                       "ensurepip", "lib2to3", "config-" + xy + "-x86_64-linux-gnu"))
    # Debian's site.py knows only dist-packages: point it at conda's site-packages.
    pkg.add_file(f"lib/python{xy}/dist-packages/envbuild-site-packages.pth",
                 b"import os, site, sys; site.addsitedir(os.path.join(sys.prefix, 'lib', "
                 b"'python%d.%d' % sys.version_info[:2], 'site-packages'))\n")
    pkg.add_file(f"lib/python{xy}/site-packages/README.txt",
                 b"Conda packages install Python modules here.\n")
    return pkg


def demo_hello(workdir):
    src = os.path.join(HERE, "src", "demo_hello.c")
    exe = os.path.join(workdir, "demo-hello")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-o", exe, src, f'-DDEMO_PREFIX="{PLACEHOLDER}"',
                    "-ffile-prefix-map=" + HERE + "=.", "-Wl,--build-id=none"], check=True)
    pkg = Package("demo-hello", "1.0", "h0_0", "linux-64", depends=["__glibc >=2.17"])
    with open(exe, "rb") as f:
        pkg.add_file("bin/demo-hello", f.read(), 0o755, placeholder="binary")
    pkg.add_file("share/demo-hello/greeting.txt", b"Hello from a relocated conda binary!\n")
    return pkg


def demo_tools():
    pkg = Package("demo-tools", "1.0", "0", "linux-64")
    script = f"""#!/bin/sh
# demo-info: prints where its environment lives; PREFIX is patched at install (text placeholder).
PREFIX="{PLACEHOLDER}"
echo "demo-info: environment at $PREFIX"
if [ -f "$PREFIX/share/demo-tools/post-link-ran" ]; then
  echo "demo-info: post-link script ran: $(cat "$PREFIX/share/demo-tools/post-link-ran")"
fi
""".encode()
    pkg.add_file("bin/demo-info", script, 0o755, placeholder="text")
    pkg.add_file("bin/.demo-tools-post-link.sh", b"""#!/bin/sh
# Runs once at install with PREFIX, PKG_NAME, PKG_VERSION set (CEP 34).
mkdir -p "$PREFIX/share/demo-tools"
echo "$PKG_NAME $PKG_VERSION" > "$PREFIX/share/demo-tools/post-link-ran"
echo "demo-tools: post-link done" >> "$PREFIX/.messages.txt"
""", 0o755)
    pkg.add_file("share/demo-tools/README", b"demo-tools: a shell tool with a text placeholder.\n")
    return pkg


def demo_trainer():
    pkg = Package("demo-trainer", "0.3", "pyh0_0", "noarch", depends=["python >=3.8"],
                  noarch="python")
    pkg.add_file("site-packages/demo_trainer/__init__.py",
                 b'"""demo_trainer: a noarch python library of the envbuild demo."""\n'
                 b'__version__ = "0.3"\n')
    pkg.add_file("site-packages/demo_trainer/cli.py", b'''"""Entry point `demo-train`."""
import os
import sys


def main():
    print("demo-train: python", sys.version.split()[0], "in", sys.prefix)
    print("demo-train: DEMO_TRAINER_HOME =", os.environ.get("DEMO_TRAINER_HOME", "(unset)"))
    return 0
''')
    pkg.add_file("etc/conda/activate.d/demo-trainer.sh",
                 b'export DEMO_TRAINER_HOME="$CONDA_PREFIX/share/demo-trainer"\n')
    pkg.add_file("etc/conda/deactivate.d/demo-trainer.sh", b"unset DEMO_TRAINER_HOME\n")
    pkg.link_json = {"noarch": {"type": "python", "entry_points": ["demo-train = demo_trainer.cli:main"]},
                     "package_metadata_version": 1}
    return pkg


class Wheel:
    """A pure-Python wheel (PEP 427), reproducible byte for byte: sorted members, fixed times."""

    def __init__(self, name, version, requires=(), entry_points=None):
        self.name, self.version = name, version
        self.requires, self.entry_points = list(requires), entry_points
        self.files = {}  # path in the wheel -> bytes

    @property
    def dist(self):
        return self.name.replace("-", "_")

    def add_module(self, package, module, text):
        self.files[f"{package}/{module}"] = text.encode()

    def write(self, outdir):
        dist_info = f"{self.dist}-{self.version}.dist-info"
        metadata = [f"Metadata-Version: 2.1", f"Name: {self.name}", f"Version: {self.version}",
                    f"Summary: envbuild demo wheel {self.name}", "License: BSD-3-Clause"]
        metadata += [f"Requires-Dist: {r}" for r in self.requires]
        files = dict(self.files)
        files[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
        files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: envbuild-demo\n"
                                       b"Root-Is-Purelib: true\nTag: py3-none-any\n")
        if self.entry_points:
            files[f"{dist_info}/entry_points.txt"] = self.entry_points.encode()
        record = []
        for path in sorted(files):
            digest = base64.urlsafe_b64encode(hashlib.sha256(files[path]).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(files[path])}")
        record.append(f"{dist_info}/RECORD,,")
        files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
        path = os.path.join(outdir, f"{self.dist}-{self.version}-py3-none-any.whl")
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            # dist-info last, as bdist_wheel writes it.
            for name in sorted(files, key=lambda p: (p.startswith(dist_info), p)):
                info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, files[name])
        return path


def demo_wheels():
    """The pip: section's wheels: demo-metrics needs demo-units; the marker-guarded requirement
    names a project no index has, so a resolver that ignored markers would fail."""
    units = Wheel("demo-units", "0.2")
    units.add_module("demo_units", "__init__.py", '''"""demo_units: formats numbers with units."""
__version__ = "0.2"


def fmt(value, unit):
    return f"{value:.4f} {unit}"
''')
    metrics = Wheel("demo-metrics", "1.0",
                    requires=["demo-units>=0.2", 'demo-legacy-py2; python_version < "3"'],
                    entry_points="[console_scripts]\ndemo-metrics = demo_metrics.cli:main\n")
    metrics.add_module("demo_metrics", "__init__.py", '''"""demo_metrics: regression metrics, from a wheel."""
__version__ = "1.0"


def r2(pairs):
    """The coefficient of determination of (prediction, truth) pairs."""
    truths = [t for _, t in pairs]
    mean = sum(truths) / len(truths)
    ss_res = sum((p - t) ** 2 for p, t in pairs)
    ss_tot = sum((t - mean) ** 2 for t in truths)
    return 1.0 - ss_res / ss_tot
''')
    metrics.add_module("demo_metrics", "cli.py", '''"""Console script `demo-metrics` (generated by the installer, shebang to the environment's python)."""
import sys

import demo_metrics
import demo_units


def main():
    print(f"demo-metrics {demo_metrics.__version__} with demo-units {demo_units.__version__}: "
          f"r2 of a perfect fit = {demo_units.fmt(demo_metrics.r2([(1, 1), (2, 2), (4, 4)]), 'r2')}")
    print(f"demo-metrics: python {sys.version.split()[0]} at {sys.executable}")
    return 0
''')
    return [units, metrics]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--only", choices=["python", "demo"], help="build only these packages")
    parser.add_argument("--python", help="the interpreter to package (default: python3 on PATH)")
    args = parser.parse_args()
    for subdir in ("linux-64", "noarch"):
        os.makedirs(os.path.join(args.outdir, subdir), exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as work:
        if args.only in (None, "python"):
            written.append(python_package(args.python).write_tar_bz2(os.path.join(args.outdir, "linux-64")))
        if args.only in (None, "demo"):
            written.append(demo_hello(work).write_conda(os.path.join(args.outdir, "linux-64")))
            written.append(demo_tools().write_tar_bz2(os.path.join(args.outdir, "linux-64")))
            written.append(demo_trainer().write_tar_bz2(os.path.join(args.outdir, "noarch")))
            os.makedirs(os.path.join(args.outdir, "wheels"), exist_ok=True)
            for wheel in demo_wheels():
                written.append(wheel.write(os.path.join(args.outdir, "wheels")))
    for path in written:
        print(f"  {os.path.relpath(path, args.outdir)}  {os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
