#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets into OUTDIR/<target>/.

Binary seeds are generated here (layer tars in plain/gzip/zstd with whiteouts and hostile
entries, tiny .tar.bz2 and .conda packages, prefix-replacement inputs) so that nothing binary is
committed; with TESTDATA (tests/data, or ../shared/testdata) small real inputs are copied in
too: packages, repodata, environment and lock files, the versions and dependency specs found in
repodata, and the `# [selector]` expressions of the environment files.

Usage: make_seeds.py OUTDIR [TESTDATA]
"""

import bz2
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

PLACEHOLDER = b"/opt/anaconda1anaconda2anaconda3"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tar_bytes(entries):
    """entries: (name, kind, payload) with kind file|dir|symlink|hardlink|char|fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind == "file":
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind == "setuid":
                info.size = len(payload)
                info.mode = 0o4755
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind in ("symlink", "hardlink"):
                info.linkname = payload.decode()
            tar.addfile(info)
    return buf.getvalue()


def zstd(data):
    if not shutil.which("zstd"):
        return None
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def layer_seeds(out):
    good = [
        ("etc", "dir", b""),
        ("etc/hosts", "file", b"127.0.0.1 localhost\n"),
        ("etc/link", "symlink", b"hosts"),
        ("etc/hard", "hardlink", b"etc/hosts"),
        ("etc/.wh.old", "file", b""),
        ("opt", "dir", b""),
        ("opt/.wh..wh..opq", "file", b""),
        ("opt/app/bin/tool", "file", b"#!/bin/sh\necho hi\n"),
        ("abs", "symlink", b"/etc/hosts"),
        ("pipe", "fifo", b""),
    ]
    hostile = {
        "dotdot": [("../evil", "file", b"x")],
        "absolute": [("/tmp/evil", "file", b"x")],
        "symlink_then_file": [("d", "symlink", b"/tmp"), ("d/evil", "file", b"x")],
        "symlink_up": [("d", "symlink", b"../.."), ("d/evil", "file", b"x")],
        "hardlink_out": [("h", "hardlink", b"../../etc/passwd")],
        "whiteout_up": [(".wh...", "file", b""), ("a/.wh.../../x", "file", b"")],
        "device": [("dev/null", "char", b"")],
        "setuid": [("bin/su", "setuid", b"x")],
        "duplicate": [("a", "file", b"1"), ("a", "dir", b""), ("a/b", "file", b"2")],
    }
    plain = tar_bytes(good)
    write(os.path.join(out, "layer", "good.tar"), plain)
    write(os.path.join(out, "layer", "good.tar.gz"), gzip.compress(plain, mtime=0))
    z = zstd(plain)
    if z:
        write(os.path.join(out, "layer", "good.tar.zst"), z)
    for name, entries in hostile.items():
        write(os.path.join(out, "layer", f"hostile_{name}.tar"), tar_bytes(entries))
    # A small "bomb": 1 MiB of zeros compresses to about a kilobyte.
    bomb = tar_bytes([("zeros", "file", bytes(1 << 20))])
    write(os.path.join(out, "layer", "bomb.tar.gz"), gzip.compress(bomb, mtime=0))


def package_info(name="seed", extra_paths=()):
    index = {"name": name, "version": "1.0", "build": "0", "build_number": 0,
             "depends": ["python >=3.8"], "subdir": "linux-64", "platform": "linux",
             "arch": "x86_64", "license": "MIT"}
    paths = [{"_path": "bin/tool", "path_type": "hardlink", "file_mode": "text",
              "prefix_placeholder": PLACEHOLDER.decode(), "sha256": "0" * 64,
              "size_in_bytes": 0},
             {"_path": "lib/link", "path_type": "softlink", "sha256": "0" * 64,
              "size_in_bytes": 0}]
    paths.extend(extra_paths)
    return [
        ("info/index.json", "file", json.dumps(index).encode()),
        ("info/paths.json", "file", json.dumps({"paths": paths, "paths_version": 1}).encode()),
        ("info/link.json", "file", b'{"noarch": {"type": "python"}, "package_metadata_version": 1}'),
        ("info/has_prefix", "file", PLACEHOLDER + b" text bin/tool\n"),
        ("info/files", "file", b"bin/tool\nlib/link\n"),
    ]


def package_seeds(out):
    pkg = [("bin/tool", "file", b"#!" + PLACEHOLDER + b"/bin/python\n"),
           ("lib/link", "symlink", b"../bin/tool")]
    info = package_info()
    tarbz2 = bz2.compress(tar_bytes(info + pkg))
    write(os.path.join(out, "package_extract", "seed-1.0-0.tar.bz2"), tarbz2)
    hostile = {
        "dotdot": [("../evil", "file", b"x")],
        "symlink_escape": [("lib/out", "symlink", b"../../../etc"), ("lib/out/x", "file", b"x")],
        "hardlink_escape": [("h", "hardlink", b"/etc/passwd")],
        "device": [("dev/null", "char", b"")],
        "duplicate": [("bin/tool", "file", b"1"), ("bin/tool", "file", b"2")],
    }
    for name, entries in hostile.items():
        write(os.path.join(out, "package_extract", f"hostile_{name}-1.0-0.tar.bz2"),
              bz2.compress(tar_bytes(info + entries)))
    info_zst = zstd(tar_bytes(info))
    pkg_zst = zstd(tar_bytes(pkg))
    if info_zst and pkg_zst:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.writestr("metadata.json", '{"conda_pkg_format_version": 2}')
            z.writestr("pkg-seed-1.0-0.tar.zst", pkg_zst)
            z.writestr("info-seed-1.0-0.tar.zst", info_zst)
        write(os.path.join(out, "package_extract", "seed-1.0-0.conda"), buf.getvalue())


def prefix_seeds(out):
    binary = b"\x7fELF\0\0" + PLACEHOLDER + b"/lib:" + PLACEHOLDER + b"/lib64\0tail\0" + PLACEHOLDER + b"\0"
    text = b"#!" + PLACEHOLDER + b"/bin/python -E\nimport sys\nprefix = '" + PLACEHOLDER + b"'\n"
    long_shebang = b"#!" + PLACEHOLDER + b"/" + b"d" * 150 + b"/bin/perl -w\n" + PLACEHOLDER + b"\n"
    for i, (mode, content) in enumerate([(1, binary), (0, text), (0, long_shebang), (2, text),
                                         (0x81, binary), (4, long_shebang)]):
        write(os.path.join(out, "prefix_replace", f"seed{i}"), bytes([mode, 40 + 20 * i]) + content)


def squashfs_seeds(out):
    """Small SquashFS images made by mksquashfs (when installed): every compressor envrun reads,
    and one with uncompressed metadata, whose tables the fuzzer can mutate directly."""
    import shutil as _shutil
    import tempfile
    mksquashfs = _shutil.which("mksquashfs")
    if mksquashfs is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        write(os.path.join(tree, ".envbuild", "image.json"),
              b'{"env":["PATH=/opt/conda/bin"],"format":1,"labels":{"org.envbuild.prefix":"/opt/conda"}}')
        write(os.path.join(tree, "bin", "tool"), b"#!/bin/sh\necho tool\n")
        write(os.path.join(tree, "lib", "big"), bytes(range(256)) * 40)
        os.symlink("tool", os.path.join(tree, "bin", "alias"))
        os.symlink("/etc", os.path.join(tree, "escape"))
        os.makedirs(os.path.join(tree, "a", "b", "c"))
        for name, extra in (("gzip", ["-comp", "gzip"]), ("zstd", ["-comp", "zstd"]),
                            ("xz", ["-comp", "xz"]), ("plain", ["-noI", "-noD", "-noF"])):
            image = os.path.join(out, "squashfs", name + ".sqfs")
            os.makedirs(os.path.dirname(image), exist_ok=True)
            subprocess.run([mksquashfs, tree, image, "-quiet", "-no-progress", "-noappend",
                            "-no-xattrs", "-all-root", "-mkfs-time", "0", "-all-time", "0",
                            "-b", "4096"] + extra,
                           check=True, stdout=subprocess.DEVNULL)


def testdata_seeds(out, testdata, max_bytes=64 * 1024):
    def copy_tree(src, target, suffixes, limit=max_bytes):
        n = 0
        for root, _, files in os.walk(os.path.join(testdata, src)):
            for f in sorted(files):
                p = os.path.join(root, f)
                if suffixes and not f.endswith(suffixes):
                    continue
                if os.path.getsize(p) > limit:
                    continue
                digest = hashlib.sha1(p.encode()).hexdigest()[:12]
                shutil.copyfile(p, os.path.join(out, target, f"td_{digest}_{f}"[:120]))
                n += 1
        return n

    for target in ("environment_file", "lockfile", "repodata", "package_extract",
                   "version", "match_spec"):
        os.makedirs(os.path.join(out, target), exist_ok=True)
    copy_tree("envs", "environment_file", (".yml", ".yaml"))
    copy_tree("locks", "lockfile", ())
    copy_tree("repodata", "repodata", (".json",))
    copy_tree("packages/single", "package_extract", (".conda", ".tar.bz2"))
    # Versions and dependency specs as they occur in real repodata.
    versions, specs = set(), set()
    path = os.path.join(testdata, "repodata", "defaults", "main_noarch.json")
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
        for group in ("packages", "packages.conda"):
            for record in data.get(group, {}).values():
                versions.add(record.get("version", ""))
                specs.update(record.get("depends", []))
                specs.update(record.get("constrains", []))
    for i, v in enumerate(sorted(versions)[:300]):
        write(os.path.join(out, "version", f"td_{i}"), v.encode())
    for i, s in enumerate(sorted(specs)[:300]):
        write(os.path.join(out, "match_spec", f"td_{i}"), s.encode())
    # The `# [expr]` selectors of the environment files.
    selectors = set()
    for root, _, files in os.walk(os.path.join(testdata, "envs")):
        for f in files:
            if f.endswith((".yml", ".yaml")):
                with open(os.path.join(root, f), errors="replace") as text:
                    for line in text:
                        at = line.rfind("# [")
                        if at >= 0 and line.rstrip().endswith("]"):
                            selectors.add(line[at + 3:line.rstrip().rfind("]")])
    os.makedirs(os.path.join(out, "selector"), exist_ok=True)
    for i, s in enumerate(sorted(selectors)[:300]):
        write(os.path.join(out, "selector", f"td_{i}"), s.encode())


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    layer_seeds(out)
    package_seeds(out)
    prefix_seeds(out)
    squashfs_seeds(out)
    if len(sys.argv) == 3 and os.path.isdir(sys.argv[2]):
        testdata_seeds(out, sys.argv[2])


if __name__ == "__main__":
    main()
