#!/usr/bin/env python3
"""Builds the wheels (and source distributions) envbuild's PyPI tests and benchmarks use, from a
JSON description, with nothing but the standard library: a wheel is a zip with a .dist-info
directory (METADATA, WHEEL, RECORD, entry_points.txt), written byte for byte reproducibly
(sorted entries, fixed times), so that hashes do not change between runs.

  make_wheels.py SPEC.json OUTDIR

SPEC is a list of distributions:
  {"name": "alpha", "version": "1.0",
   "tag": "py3-none-any",                 # python-abi-platform (default py3-none-any)
   "build": "1",                          # optional build tag
   "requires": ["beta>=1.0", "gamma; extra == 'fast'"],
   "extras": ["fast"],                    # Provides-Extra
   "requires_python": ">=3.8",
   "files": {"alpha/__init__.py": "VALUE = 1\\n"},   # default: alpha/__init__.py
   "data": {"scripts/alpha-tool": "#!python\\nprint(1)\\n",
            "data/share/alpha/x.txt": "x", "headers/alpha.h": "int a;",
            "purelib/alpha_extra.py": "", "platlib/alpha_native.py": ""},
   "entry_points": {"console_scripts": {"alpha": "alpha:main"},
                    "gui_scripts": {"alpha-gui": "alpha:gui"}},
   "purelib": true,                       # Root-Is-Purelib
   "sdist": false,                        # true: a .tar.gz only (no wheel)
   "metadata_name": "other"}              # a wrong Name in METADATA (hostile tests)
"""

import hashlib
import base64
import io
import json
import os
import sys
import tarfile
import zipfile

EPOCH = (2020, 1, 1, 0, 0, 0)


def normalize(name):
    out, run = [], False
    for c in name.lower():
        if c in "-_.":
            if not run:
                out.append("-")
            run = True
        else:
            out.append(c)
            run = False
    return "".join(out)


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def metadata(d):
    lines = ["Metadata-Version: 2.1", "Name: " + d.get("metadata_name", d["name"]),
             "Version: " + d["version"]]
    if "requires_python" in d:
        lines.append("Requires-Python: " + d["requires_python"])
    for extra in d.get("extras", []):
        lines.append("Provides-Extra: " + extra)
    for req in d.get("requires", []):
        lines.append("Requires-Dist: " + req)
    return ("\n".join(lines) + "\n\nA test distribution.\n").encode()


def wheel(d, outdir):
    name = normalize(d["name"]).replace("-", "_")
    version = d["version"]
    tag = d.get("tag", "py3-none-any")
    build = d.get("build")
    stem = "-".join([name, version] + ([build] if build else []) + [tag])
    dist_info = f"{name}-{version}.dist-info"
    data_dir = f"{name}-{version}.data"
    files = {}
    for path, content in d.get("files", {f"{name}/__init__.py": "VALUE = 1\n"}).items():
        files[path] = content.encode() if isinstance(content, str) else bytes(content)
    for path, content in d.get("data", {}).items():
        files[f"{data_dir}/{path}"] = content.encode()
    files[f"{dist_info}/METADATA"] = metadata(d)
    py, abi, plat = tag.split("-")
    wheel_lines = ["Wheel-Version: 1.0", "Generator: envbuild-tests",
                   "Root-Is-Purelib: " + ("true" if d.get("purelib", True) else "false")]
    for p in py.split("."):
        for a in abi.split("."):
            for pl in plat.split("."):
                wheel_lines.append(f"Tag: {p}-{a}-{pl}")
    if build:
        wheel_lines.append("Build: " + build)
    files[f"{dist_info}/WHEEL"] = ("\n".join(wheel_lines) + "\n").encode()
    eps = d.get("entry_points")
    if eps:
        text = ""
        for section, entries in eps.items():
            text += f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        files[f"{dist_info}/entry_points.txt"] = text.encode()
    record = "".join(f"{p},{record_hash(c)},{len(c)}\n" for p, c in sorted(files.items()))
    record += f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    path = os.path.join(outdir, stem + ".whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        # The .dist-info directory last, as wheel builders write it.
        for p in sorted(files, key=lambda p: (p.startswith(dist_info), p)):
            info = zipfile.ZipInfo(p, EPOCH)
            executable = p.startswith(f"{data_dir}/scripts/") or d.get("mode", {}).get(p) == "755"
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[p])
    return path


def sdist(d, outdir):
    name = normalize(d["name"]).replace("-", "_")
    stem = f"{name}-{d['version']}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted({f"{stem}/PKG-INFO": metadata(d),
                                  f"{stem}/setup.py": b"raise SystemExit('no builds')\n"}.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    path = os.path.join(outdir, stem + ".tar.gz")
    import gzip
    with open(path, "wb") as f:
        f.write(gzip.compress(buf.getvalue(), mtime=0))
    return path


def main():
    spec_file, outdir = sys.argv[1], sys.argv[2]
    with open(spec_file) as f:
        spec = json.load(f)
    os.makedirs(outdir, exist_ok=True)
    for d in spec:
        print(sdist(d, outdir) if d.get("sdist") else wheel(d, outdir))


if __name__ == "__main__":
    main()
