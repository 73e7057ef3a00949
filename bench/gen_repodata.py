#!/usr/bin/env python3
"""Deterministic generator of a large synthetic conda channel for the solve benchmark.

    bench/gen_repodata.py OUT_DIR [--seed 15] [--scale 1.0]

Writes OUT_DIR/linux-64/repodata.json, OUT_DIR/noarch/repodata.json and OUT_DIR/ml-environment.yml
(an environment whose solution is about 200 packages, with the cuda variant of the torch-like
package when __cuda is present). The same seed and scale give byte-identical files.

The shape follows conda-forge: a few thousand names; per name a heavy-tailed number of versions
released along a timeline; per version 1-3 build numbers; compiled Python packages built for each
Python of their time (py38 .. py312, `python >=3.11,<3.12.0a0` + `python_abi 3.11.* *_cp311`);
C libraries pinned by run_exports (`libfoo >=1.2.3,<1.3.0a0` or `<2.0a0`); `libgcc-ng >=12`,
`__glibc >=2.17`; numpy pins (`numpy >=1.22.4,<2.0a0` before numpy 2, `<3` after); CUDA
variants (`cuda-version >=12.0,<13`, `__cuda`) for GPU packages; `constrains`; hash-like build
strings; md5/sha256/size/timestamp/license on every record; `.conda` after the format switch,
`.tar.bz2` before. Dependencies of a build point at versions of their time, so the newest
builds form a consistent set and the ML environment is satisfiable.
"""

import argparse
import bisect
import json
import os
import random
import sys

T0_MS = 1_546_300_800_000  # 2019-01-01
SPAN_MS = 6 * 365 * 86_400_000
CONDA_FORMAT_T = 0.45  # .conda packages from here on (packages.conda), .tar.bz2 before
PYTHONS = [  # (tag, minor, from t, until t)
    ("38", 8, 0.00, 0.60),
    ("39", 9, 0.05, 0.78),
    ("310", 10, 0.25, 1.01),
    ("311", 11, 0.50, 1.01),
    ("312", 12, 0.72, 1.01),
]
NUMPY2_T = 0.88
LICENSES = ["MIT", "BSD-3-Clause", "Apache-2.0", "GPL-3.0-or-later", "LGPL-2.1-or-later",
            "MPL-2.0", "BSD-2-Clause", "Zlib", "ISC", "PSF-2.0", "LicenseRef-Proprietary"]
SYLLABLES = ["al", "be", "cor", "da", "el", "fi", "gra", "hu", "io", "jax", "ka", "lu", "mo",
             "nu", "or", "pi", "qu", "ra", "si", "tor", "um", "vi", "wo", "xe", "yo", "ze",
             "tri", "zen", "lux", "net", "ops", "geo", "bio", "chem", "astro", "stat"]

# The ML cluster: real-looking names. (name, kind, deps). kind: c = C/C++ library (linux-64),
# pyc = compiled Python package (linux-64, per-Python builds), pyn = noarch Python,
# cuda = CUDA library (linux-64, cuda-version pinned).
ML = [
    ("cuda-version", "meta", []),
    ("cuda-cudart", "cuda", ["cuda-version"]),
    ("cuda-nvrtc", "cuda", ["cuda-version"]),
    ("cuda-nvtx", "cuda", ["cuda-version"]),
    ("libcublas", "cuda", ["cuda-version", "cuda-nvrtc"]),
    ("libcufft", "cuda", ["cuda-version"]),
    ("libcurand", "cuda", ["cuda-version"]),
    ("libcusparse", "cuda", ["cuda-version", "libnvjitlink"]),
    ("libnvjitlink", "cuda", ["cuda-version"]),
    ("libcusolver", "cuda", ["cuda-version", "libcublas", "libcusparse"]),
    ("cudnn", "cuda", ["cuda-version", "libcublas", "cuda-nvrtc", "libzlib"]),
    ("nccl", "cuda", ["cuda-version"]),
    ("libmagma", "cuda", ["cuda-version", "libcublas", "libcusparse", "libblas", "liblapack"]),
    ("libopenblas", "c", ["libgfortran5"]),
    ("libgfortran5", "c", []),
    ("libgfortran-ng", "c", ["libgfortran5"]),
    ("libblas", "c", ["libopenblas"]),
    ("libcblas", "c", ["libblas"]),
    ("liblapack", "c", ["libblas"]),
    ("libprotobuf", "c", ["libzlib", "libabseil"]),
    ("libabseil", "c", []),
    ("sleef", "c", []),
    ("libuv", "c", []),
    ("libjpeg-turbo", "c", []),
    ("libpng", "c", ["libzlib"]),
    ("libwebp-base", "c", []),
    ("libtiff", "c", ["libjpeg-turbo", "libzlib", "zstd", "lerc", "libdeflate", "xz",
                      "libwebp-base"]),
    ("lerc", "c", []),
    ("libdeflate", "c", []),
    ("zstd", "c", ["libzlib"]),
    ("lcms2", "c", ["libjpeg-turbo", "libtiff"]),
    ("openjpeg", "c", ["libpng", "libtiff", "libzlib"]),
    ("freetype", "c", ["libpng", "libzlib"]),
    ("libxcb", "c", ["pthread-stubs", "xorg-libxau", "xorg-libxdmcp"]),
    ("pthread-stubs", "c", []),
    ("xorg-libxau", "c", []),
    ("xorg-libxdmcp", "c", []),
    ("libhwloc", "c", ["libxml2"]),
    ("libxml2", "c", ["icu", "libiconv", "libzlib", "xz"]),
    ("icu", "c", []),
    ("libiconv", "c", []),
    ("tbb", "c", ["libhwloc"]),
    ("mkl", "c", ["_openmp_mutex", "tbb"]),
    ("libarrow", "c", ["libprotobuf", "zstd", "lz4-c", "snappy", "libre2", "orc", "libthrift",
                       "libutf8proc", "aws-sdk-cpp", "libgoogle-cloud", "gflags", "glog",
                       "libbrotlienc", "libbrotlidec"]),
    ("lz4-c", "c", []),
    ("snappy", "c", []),
    ("libre2", "c", ["libabseil"]),
    ("orc", "c", ["libprotobuf", "lz4-c", "snappy", "zstd"]),
    ("libthrift", "c", ["libevent", "openssl"]),
    ("libevent", "c", ["openssl"]),
    ("libutf8proc", "c", []),
    ("aws-sdk-cpp", "c", ["aws-crt-cpp", "libcurl"]),
    ("aws-crt-cpp", "c", ["aws-c-common", "aws-c-io", "aws-c-http", "aws-c-s3", "aws-c-auth"]),
    ("aws-c-common", "c", []),
    ("aws-c-io", "c", ["aws-c-common", "aws-c-cal", "s2n"]),
    ("aws-c-cal", "c", ["aws-c-common", "openssl"]),
    ("s2n", "c", ["openssl"]),
    ("aws-c-http", "c", ["aws-c-io", "aws-c-compression"]),
    ("aws-c-compression", "c", ["aws-c-common"]),
    ("aws-c-auth", "c", ["aws-c-http", "aws-c-sdkutils"]),
    ("aws-c-sdkutils", "c", ["aws-c-common"]),
    ("aws-c-s3", "c", ["aws-c-auth", "aws-checksums"]),
    ("aws-checksums", "c", ["aws-c-common"]),
    ("libcurl", "c", ["openssl", "libzlib", "zstd", "libnghttp2", "libssh2", "krb5"]),
    ("libnghttp2", "c", ["openssl", "libev", "c-ares"]),
    ("libev", "c", []),
    ("c-ares", "c", []),
    ("libssh2", "c", ["openssl"]),
    ("krb5", "c", ["openssl", "keyutils", "libedit"]),
    ("keyutils", "c", []),
    ("libedit", "c", ["ncurses"]),
    ("libgoogle-cloud", "c", ["libcurl", "libgrpc", "libprotobuf", "libcrc32c"]),
    ("libgrpc", "c", ["libprotobuf", "libre2", "c-ares", "openssl", "libabseil"]),
    ("libcrc32c", "c", []),
    ("gflags", "c", []),
    ("glog", "c", ["gflags"]),
    ("libbrotlicommon", "c", []),
    ("libbrotlienc", "c", ["libbrotlicommon"]),
    ("libbrotlidec", "c", ["libbrotlicommon"]),
    ("numpy", "pyc", ["libblas", "libcblas", "liblapack"]),
    ("scipy", "pyc", ["numpy", "libblas", "libcblas", "liblapack", "libgfortran-ng"]),
    ("pandas", "pyc", ["numpy", "python-dateutil", "pytz", "python-tzdata"]),
    ("pyarrow", "pyc", ["numpy", "libarrow"]),
    ("scikit-learn", "pyc", ["numpy", "scipy", "joblib", "threadpoolctl", "_openmp_mutex"]),
    ("matplotlib-base", "pyc", ["numpy", "freetype", "pillow", "kiwisolver", "cycler",
                                "fonttools", "pyparsing", "packaging", "python-dateutil",
                                "contourpy"]),
    ("pillow", "pyc", ["libjpeg-turbo", "libpng", "libtiff", "libwebp-base", "freetype",
                       "lcms2", "openjpeg", "libxcb"]),
    ("kiwisolver", "pyc", []),
    ("contourpy", "pyc", ["numpy"]),
    ("fonttools", "pyc", ["brotli", "munkres", "unicodedata2"]),
    ("brotli", "pyc", ["libbrotlienc", "libbrotlidec"]),
    ("unicodedata2", "pyc", []),
    ("pytorch", "pyc", ["numpy", "sleef", "libprotobuf", "libuv", "filelock", "jinja2",
                        "networkx", "sympy", "typing_extensions", "fsspec", "libabseil",
                        "mkl", "libcblas", "liblapack"]),
    ("torchvision", "pyc", ["pytorch", "numpy", "pillow", "libjpeg-turbo", "libpng", "requests"]),
    ("torchaudio", "pyc", ["pytorch", "numpy"]),
    ("triton", "pyc", ["filelock", "libzlib", "zstd"]),
    ("safetensors", "pyc", []),
    ("tokenizers", "pyc", ["huggingface_hub"]),
    ("h5py", "pyc", ["numpy", "hdf5", "cached-property"]),
    ("hdf5", "c", ["libcurl", "libzlib", "openssl", "libaec", "libgfortran5"]),
    ("libaec", "c", []),
    ("numba", "pyc", ["numpy", "llvmlite", "_openmp_mutex"]),
    ("llvmlite", "pyc", ["libzlib"]),
    ("pyyaml", "pyc", ["yaml"]),
    ("yaml", "c", []),
    ("markupsafe", "pyc", []),
    ("psutil", "pyc", []),
    ("pyzmq", "pyc", ["zeromq", "libsodium"]),
    ("zeromq", "c", ["libsodium", "krb5"]),
    ("libsodium", "c", []),
    ("tornado", "pyc", []),
    ("debugpy", "pyc", []),
    ("cffi", "pyc", ["pycparser", "libffi"]),
    ("charset-normalizer", "pyn", []),
    ("rpds-py", "pyc", []),
    ("regex", "pyc", []),
    ("orjson", "pyc", []),
    ("aiohttp", "pyc", ["aiosignal", "attrs", "frozenlist", "multidict", "yarl",
                        "async-timeout"]),
    ("frozenlist", "pyc", []),
    ("multidict", "pyc", []),
    ("yarl", "pyc", ["idna", "multidict", "propcache"]),
    ("propcache", "pyc", []),
    ("python-dateutil", "pyn", ["six"]),
    ("pytz", "pyn", []),
    ("python-tzdata", "pyn", []),
    ("joblib", "pyn", []),
    ("threadpoolctl", "pyn", []),
    ("cycler", "pyn", []),
    ("pyparsing", "pyn", []),
    ("packaging", "pyn", []),
    ("munkres", "pyn", []),
    ("six", "pyn", []),
    ("filelock", "pyn", []),
    ("jinja2", "pyn", ["markupsafe"]),
    ("networkx", "pyn", []),
    ("sympy", "pyn", ["mpmath", "gmpy2"]),
    ("mpmath", "pyn", []),
    ("gmpy2", "pyc", ["gmp", "mpfr", "mpc"]),
    ("gmp", "c", []),
    ("mpfr", "c", ["gmp"]),
    ("mpc", "c", ["gmp", "mpfr"]),
    ("typing_extensions", "pyn", []),
    ("fsspec", "pyn", []),
    ("requests", "pyn", ["certifi", "charset-normalizer", "idna", "urllib3"]),
    ("certifi", "pyn", []),
    ("idna", "pyn", []),
    ("urllib3", "pyn", ["brotli-python", "pysocks"]),
    ("brotli-python", "pyc", []),
    ("pysocks", "pyn", []),
    ("huggingface_hub", "pyn", ["filelock", "fsspec", "packaging", "pyyaml", "requests", "tqdm",
                                "typing_extensions"]),
    ("tqdm", "pyn", ["colorama"]),
    ("colorama", "pyn", []),
    ("transformers", "pyn", ["huggingface_hub", "numpy", "packaging", "pyyaml", "regex",
                             "requests", "safetensors", "tokenizers", "tqdm", "filelock"]),
    ("datasets", "pyn", ["aiohttp", "dill", "fsspec", "huggingface_hub", "multiprocess",
                         "numpy", "packaging", "pandas", "pyarrow", "pyyaml", "requests", "tqdm",
                         "xxhash"]),
    ("dill", "pyn", []),
    ("multiprocess", "pyc", ["dill"]),
    ("xxhash", "pyc", ["libxxhash"]),
    ("libxxhash", "c", []),
    ("aiosignal", "pyn", ["frozenlist"]),
    ("attrs", "pyn", []),
    ("async-timeout", "pyn", []),
    ("cached-property", "pyn", []),
    ("pycparser", "pyn", []),
    ("ipykernel", "pyn", ["comm", "debugpy", "ipython", "jupyter_client", "jupyter_core",
                          "matplotlib-inline", "nest-asyncio", "packaging", "psutil", "pyzmq",
                          "tornado", "traitlets"]),
    ("comm", "pyn", ["traitlets"]),
    ("ipython", "pyn", ["decorator", "jedi", "matplotlib-inline", "pexpect", "pickleshare",
                        "prompt-toolkit", "pygments", "stack_data", "traitlets"]),
    ("decorator", "pyn", []),
    ("jedi", "pyn", ["parso"]),
    ("parso", "pyn", []),
    ("pexpect", "pyn", ["ptyprocess"]),
    ("ptyprocess", "pyn", []),
    ("pickleshare", "pyn", []),
    ("prompt-toolkit", "pyn", ["wcwidth"]),
    ("wcwidth", "pyn", []),
    ("pygments", "pyn", []),
    ("stack_data", "pyn", ["asttokens", "executing", "pure_eval"]),
    ("asttokens", "pyn", ["six"]),
    ("executing", "pyn", []),
    ("pure_eval", "pyn", []),
    ("traitlets", "pyn", []),
    ("matplotlib-inline", "pyn", ["traitlets"]),
    ("nest-asyncio", "pyn", []),
    ("jupyter_client", "pyn", ["jupyter_core", "python-dateutil", "pyzmq", "tornado",
                               "traitlets"]),
    ("jupyter_core", "pyn", ["platformdirs", "traitlets"]),
    ("platformdirs", "pyn", []),
    ("jsonschema", "pyn", ["attrs", "jsonschema-specifications", "referencing", "rpds-py"]),
    ("jsonschema-specifications", "pyn", ["referencing"]),
    ("referencing", "pyn", ["attrs", "rpds-py"]),
    ("tensorboard", "pyn", ["absl-py", "grpcio", "markdown", "numpy", "protobuf", "werkzeug",
                            "tensorboard-data-server"]),
    ("tensorboard-data-server", "pyc", []),
    ("absl-py", "pyn", []),
    ("grpcio", "pyc", ["libgrpc"]),
    ("protobuf", "pyc", ["libprotobuf"]),
    ("markdown", "pyn", []),
    ("werkzeug", "pyn", ["markupsafe"]),
    ("opencv", "pyc", ["numpy", "libpng", "libjpeg-turbo", "libtiff", "libwebp-base", "hdf5",
                       "ffmpeg"]),
    ("ffmpeg", "c", ["libopus", "libvpx", "x264", "x265", "lame", "openh264", "dav1d",
                     "aom", "svt-av1", "gnutls", "libass"]),
    ("libopus", "c", []),
    ("libvpx", "c", []),
    ("x264", "c", []),
    ("x265", "c", []),
    ("lame", "c", []),
    ("openh264", "c", []),
    ("dav1d", "c", []),
    ("aom", "c", []),
    ("svt-av1", "c", []),
    ("gnutls", "c", ["nettle", "p11-kit", "libidn2"]),
    ("nettle", "c", ["gmp"]),
    ("p11-kit", "c", ["libffi"]),
    ("libidn2", "c", ["libunistring"]),
    ("libunistring", "c", []),
    ("libass", "c", ["freetype", "fribidi", "harfbuzz", "fontconfig"]),
    ("fribidi", "c", []),
    ("harfbuzz", "c", ["freetype", "icu", "libglib", "graphite2", "cairo"]),
    ("graphite2", "c", []),
    ("libglib", "c", ["libffi", "libiconv", "pcre2", "libzlib", "gettext"]),
    ("pcre2", "c", ["bzip2", "libzlib"]),
    ("gettext", "c", ["libiconv"]),
    ("fontconfig", "c", ["freetype", "libexpat", "libuuid"]),
    ("cairo", "c", ["fontconfig", "freetype", "libpng", "pixman", "libxcb", "libglib"]),
    ("pixman", "c", []),
]
ML_TOP = ["python 3.11.*", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn",
          "matplotlib-base", "pytorch", "torchvision", "torchaudio", "triton", "transformers",
          "datasets", "h5py", "numba", "ipykernel", "jsonschema", "tensorboard", "opencv",
          "gmpy2", "orjson", "libmagma", "nccl", "cudnn", "libcusolver", "libcufft",
          "libcurand", "cuda-nvtx", "pip"]
BASE_C = ["libgcc-ng", "libstdcxx-ng", "libgcc", "libstdcxx", "libgomp", "_libgcc_mutex",
          "_openmp_mutex", "libzlib", "zlib", "bzip2", "xz", "libffi", "ncurses", "readline",
          "tk", "libsqlite", "libuuid", "libnsl", "libxcrypt", "openssl", "ca-certificates",
          "tzdata", "ld_impl_linux-64", "libexpat", "liblzma", "libmpdec"]


class Rng(random.Random):
    def hexstr(self, n):
        return format(self.getrandbits(4 * n), "0%dx" % n)


class Pkg:
    __slots__ = ("name", "kind", "deps", "versions", "times", "pin", "license", "size",
                 "noarch_ok", "cuda", "constrains")

    def __init__(self, name, kind):
        self.name, self.kind = name, kind
        self.deps, self.versions, self.times, self.constrains = [], [], [], []
        self.pin, self.cuda = "minor", False


def make_versions(rng, n, start_t, major0):
    """n ascending versions released over [start_t, 1]."""
    versions, times = [], []
    major, minor, patch = major0, rng.randint(0, 5), 0
    t = start_t
    step = (1.0 - start_t) / max(n, 1)
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            major, minor, patch = major + 1, 0, 0
        elif r < 0.45:
            minor, patch = minor + 1, 0
        else:
            patch += 1
        t = min(1.0, t + step * rng.uniform(0.3, 1.7))
        versions.append("%d.%d.%d" % (major, minor, patch))
        times.append(t)
    times[-1] = max(times[-1], 0.985)  # every package has a build of "now"
    return versions, times


def version_at(pkg, t):
    """Index of the newest version released at or before t (0 if none)."""
    i = bisect.bisect_right(pkg.times, t) - 1
    return max(i, 0)


def lower_pin(pkg, i):
    return pkg.versions[i]


def run_export(pkg, i):
    """conda-forge run_exports style pin of pkg at version index i."""
    v = pkg.versions[i]
    major, minor = v.split(".")[:2]
    if pkg.pin == "major":
        return "%s >=%s,<%d.0a0" % (pkg.name, v, int(major) + 1)
    return "%s >=%s,<%s.%d.0a0" % (pkg.name, v, major, int(minor) + 1)


def build_universe(rng, scale):
    pkgs = {}

    def add(name, kind):
        p = Pkg(name, kind)
        pkgs[name] = p
        return p

    # Base C libraries: a long history each.
    for name in BASE_C:
        p = add(name, "c")
        p.versions, p.times = make_versions(rng, rng.randint(15, 45), 0.0, rng.randint(1, 12))
        p.pin = "major" if rng.random() < 0.5 else "minor"
    for name in ["libgcc-ng", "libstdcxx-ng", "libgcc", "libstdcxx", "libgomp"]:
        # GCC: 7.5 .. 14.2, several patch versions, "libgcc-ng >=12".
        p = pkgs[name]
        p.versions = ["%d.%d.0" % (g, m) for g in range(7, 15) for m in (1, 2, 3)]
        p.times = [i / len(p.versions) for i in range(1, len(p.versions) + 1)]
    pkgs["libgcc-ng"].deps = ["libgcc", "_libgcc_mutex"]
    pkgs["libstdcxx-ng"].deps = ["libstdcxx"]
    pkgs["libstdcxx"].deps = ["libgcc"]
    pkgs["libgcc"].deps = ["_openmp_mutex"]
    pkgs["_openmp_mutex"].deps = ["libgomp"]
    pkgs["readline"].deps = ["ncurses"]
    pkgs["tk"].deps = ["libzlib"]
    pkgs["zlib"].deps = ["libzlib"]
    pkgs["libsqlite"].deps = ["libzlib"]
    pkgs["openssl"].deps = ["ca-certificates"]
    pkgs["xz"].deps = ["liblzma"]

    # python: 3.8.x .. 3.12.x, released in overlapping windows, and python_abi.
    py = add("python", "python")
    vs = []
    for tag, minor, t0, t1 in PYTHONS:
        n = 12 + minor
        for k in range(n):
            vs.append(("3.%d.%d" % (minor, k), t0 + (min(t1, 0.995) - t0) * (k + 1) / n))
    vs.sort(key=lambda x: tuple(int(c) for c in x[0].split(".")))
    py.versions = [v for v, _ in vs]
    py.times = [t for _, t in vs]
    py.deps = ["libgcc-ng", "bzip2", "libffi", "libzlib", "ncurses", "readline", "tk",
               "libsqlite", "libuuid", "libnsl", "libxcrypt", "openssl", "xz", "libexpat",
               "libmpdec", "ld_impl_linux-64", "tzdata"]
    abi = add("python_abi", "abi")
    abi.versions = ["3.%d" % m for _, m, _, _ in PYTHONS]
    abi.times = [t0 for _, _, t0, _ in PYTHONS]
    for name in ["pip", "setuptools", "wheel"]:
        p = add(name, "pyn")
        p.versions, p.times = make_versions(rng, 40, 0.0, 20)
    pkgs["pip"].deps = ["setuptools", "wheel"]

    # The ML cluster.
    for name, kind, deps in ML:
        p = pkgs.get(name) or add(name, kind)
        p.kind = kind
        p.deps = list(deps)
        n = rng.randint(12, 60) if kind != "meta" else 0
        if kind == "meta":  # cuda-version: 11.2 .. 12.6
            p.versions = ["11.%d" % m for m in range(2, 9)] + ["12.%d" % m for m in range(0, 7)]
            p.times = [0.1 + 0.9 * (i + 1) / len(p.versions) for i in range(len(p.versions))]
            continue
        p.versions, p.times = make_versions(rng, n, rng.uniform(0.0, 0.3), rng.randint(0, 3))
        p.pin = "major" if rng.random() < 0.4 else "minor"
    numpy = pkgs["numpy"]
    numpy.versions = ["1.%d.%d" % (m, k) for m in range(18, 27) for k in range(0, 6)] + \
                     ["2.0.%d" % k for k in range(3)] + ["2.1.%d" % k for k in range(4)]
    numpy.times = [0.9 * (i + 1) / 54 for i in range(54)] + \
                  [NUMPY2_T + 0.11 * (i + 1) / 7 for i in range(7)]
    for name in ["pytorch", "torchvision", "torchaudio", "nccl", "cudnn", "libmagma", "triton"]:
        pkgs[name].cuda = True
    pkgs["pytorch"].constrains = ["cpuonly <0", "pytorch-cpu <0"]
    pkgs["scipy"].constrains = ["libopenblas * *openmp*"]
    pkgs["pyarrow"].constrains = ["apache-arrow-proc * cpu"]

    # Filler: a few thousand more names with deps among themselves and on the base.
    n_c = int(2000 * scale)
    n_pyc = int(1700 * scale)
    n_pyn = int(2600 * scale)
    used = set(pkgs)

    def fresh(prefix):
        while True:
            n = prefix + "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
            if rng.random() < 0.3:
                n += "-" + rng.choice(["core", "base", "tools", "io", "utils", "py", "ext",
                                       "plugin", "cpp", "dev"])
            if n not in used:
                used.add(n)
                return n

    c_names = [fresh("lib") if rng.random() < 0.5 else fresh("") for _ in range(n_c)]
    pyc_names = [fresh("py") if rng.random() < 0.3 else fresh("") for _ in range(n_pyc)]
    pyn_names = [fresh("") for _ in range(n_pyn)]
    all_c = [n for n, p in pkgs.items() if p.kind == "c"]
    all_py = [n for n, p in pkgs.items() if p.kind in ("pyc", "pyn")]
    for i, name in enumerate(c_names):
        p = add(name, "c")
        n = min(90, max(2, int(rng.lognormvariate(2.7, 0.8))))
        p.versions, p.times = make_versions(rng, n, rng.uniform(0.0, 0.8), rng.randint(0, 9))
        p.pin = "major" if rng.random() < 0.4 else "minor"
        pool = c_names[:i] + all_c
        p.deps = rng.sample(pool, min(len(pool), rng.randint(0, 5)))
        if rng.random() < 0.04:
            p.cuda = True
    for i, name in enumerate(pyc_names):
        p = add(name, "pyc")
        n = min(70, max(2, int(rng.lognormvariate(2.5, 0.8))))
        p.versions, p.times = make_versions(rng, n, rng.uniform(0.0, 0.8), rng.randint(0, 4))
        p.deps = rng.sample(c_names + all_c, rng.randint(0, 3))
        p.deps += rng.sample(pyc_names[:i] + all_py, min(i + len(all_py), rng.randint(0, 4)))
        if rng.random() < 0.35:
            p.deps.append("numpy")
        if rng.random() < 0.2:
            p.constrains = [rng.choice(pyn_names)]  # a name; its bound is set below
        if rng.random() < 0.03:
            p.cuda = True
    for i, name in enumerate(pyn_names):
        p = add(name, "pyn")
        n = min(120, max(2, int(rng.lognormvariate(2.8, 0.9))))
        p.versions, p.times = make_versions(rng, n, rng.uniform(0.0, 0.9), rng.randint(0, 5))
        p.deps = rng.sample(pyn_names[:i] + pyc_names + all_py, rng.randint(0, 6))
    for name in pyc_names:
        # conda-forge style `constrains`: an old lower bound that current releases satisfy.
        p = pkgs[name]
        for k, other in enumerate(p.constrains):
            q = pkgs[other]
            v = q.versions[rng.randrange(len(q.versions))].split(".")
            p.constrains[k] = "%s >=%s.%s" % (other, v[0], v[1])
    for p in pkgs.values():
        p.license = rng.choice(LICENSES)
        p.size = int(rng.lognormvariate(12.5, 1.6))
    for name in ["pytorch", "libcublas", "cudnn", "libcusparse", "nccl", "libmagma"]:
        pkgs[name].size = 400_000_000 + rng.randint(0, 400_000_000)
    return pkgs


EPOCHS = 20  # migration cycles: builds of one epoch agree on every pin


NOW = 2.0  # pin time of the final migration: the newest version of everything


def pin_time(tb):
    """Builds pin their dependencies to what was current when their epoch started."""
    return max(0.0, int(tb * EPOCHS) / EPOCHS - 0.001)


def dep_specs(pkgs, p, t, rng):
    """Dependencies of a build pinned against the versions current at time t: compatible ranges
    (run_exports of C libraries, lower bounds of Python packages) that those versions satisfy."""
    out = []
    for d in p.deps:
        q = pkgs.get(d)
        if q is None or not q.versions:
            continue
        i = version_at(q, t)
        if q.kind in ("c", "cuda"):
            out.append(run_export(q, i))
        elif q.kind == "meta":
            continue
        elif d == "numpy" and p.kind == "pyc":
            out.append("numpy >=1.22.4,<2.0a0" if t < NUMPY2_T else "numpy >=1.23.5,<3")
        else:
            v = q.versions[i].split(".")
            out.append("%s >=%s.%s" % (d, v[0], v[1]) if rng.random() < 0.8 else d)
    return out


def current_versions(p):
    """Indexes of the versions that the final migration rebuilds: the newest version, and for
    python the newest patch release of every minor still supported."""
    if p.name != "python":
        return {len(p.versions) - 1}
    newest = {}
    for i, v in enumerate(p.versions):
        minor = int(v.split(".")[1])
        if any(m == minor and t1 > 1.0 for _, m, _, t1 in PYTHONS):
            newest[minor] = i
    return set(newest.values())


def build_times(p, rng):
    """(version index, build number, build time, pin time): 1-3 builds per version, pinned to
    the dependency versions of their epoch, and for the current versions a last rebuild (the
    conda-forge migration that ends the timeline) pinned against the newest version of every
    dependency. So the newest builds of all packages form one consistent set, as on conda-forge,
    and older builds are consistent with the dependency versions of their time."""
    current = current_versions(p)
    for i, t in enumerate(p.times):
        nbuilds = 1 + (rng.random() < 0.45) + (rng.random() < 0.15)
        times = [min(1.0, t + k * rng.uniform(0.01, 0.05)) for k in range(nbuilds)]
        for bn, tb in enumerate(times):
            yield i, bn, tb, pin_time(tb)
        if i in current:
            yield i, nbuilds, 1.0, NOW


def records_for(pkgs, p, rng):
    """Yields (subdir, ext, filename, record) for every build of p."""
    name = p.name
    for i, bn, tb, pin_t in build_times(p, rng):
        v = p.versions[i]
        ts = T0_MS + int(tb * SPAN_MS)
        ext = ".conda" if tb >= CONDA_FORMAT_T else ".tar.bz2"
        variants = [None]
        if p.kind == "pyc":
            variants = [py for py in PYTHONS if py[2] <= tb < py[3]] or [PYTHONS[-1]]
        if name == "libopenblas":  # threading variants, chosen by `constrains` of consumers
            variants = ["pthreads", "openmp"]
        cudas = [None]
        if p.cuda and tb > 0.3:
            cudas = [None, "11.8", "12.0"] if tb > 0.6 else [None, "11.8"]
        if p.kind == "cuda":
            # Built for every CUDA minor of its time (`cuda-version >=12.4,<12.5.0a0`).
            cudas = [c for k, c in enumerate(["11.8", "12.0", "12.2", "12.4", "12.6"])
                     if tb > 0.3 + 0.15 * k] or ["11.8"]
        for py in variants:
            for cuda in cudas:
                deps = []
                constrains = list(p.constrains)
                h = rng.hexstr(7)
                build_number = bn
                if p.kind == "pyn":
                    subdir = "noarch"
                    build = "pyhd8ed1ab_%d" % bn if rng.random() < 0.8 else "pyh%s_%d" % (h, bn)
                    # The oldest Python still supported when it was built (`python >=3.10`).
                    deps.append("python >=3.%d" % min(m for _, m, _, t1 in PYTHONS if t1 > tb))
                elif p.kind == "meta":  # cuda-version
                    subdir = "noarch"
                    build = "h%s_%d" % (h, bn)
                    constrains = ["__cuda >=%s" % v, "cudatoolkit %s|%s.*" % (v, v)]
                else:
                    subdir = "linux-64"
                    build = "h%s_%d" % (h, bn)
                    if py in ("pthreads", "openmp"):
                        build = "%s_h%s_%d" % (py, h, bn)
                    elif py:
                        build = "py%sh%s_%d" % (py[0], h, bn)
                        deps += ["python >=3.%d,<3.%d.0a0" % (py[1], py[1] + 1),
                                 "python_abi 3.%d.* *_cp%s" % (py[1], py[0])]
                    if p.kind == "cuda":
                        major, minor = cuda.split(".")
                        deps += ["cuda-version >=%s,<%s.%d.0a0" % (cuda, major, int(minor) + 1),
                                 "__glibc >=2.17,<3.0.a0"]
                    elif cuda:
                        # conda-forge: GPU builds carry a higher build number, so they win
                        # where __cuda is present.
                        build_number = bn + 200
                        build = "cuda%s_%s" % (cuda.replace(".", ""), build[:-len(str(bn))] +
                                               str(build_number))
                        deps += ["cuda-version >=%s,<%d" % (cuda, int(cuda.split(".")[0]) + 1),
                                 "__cuda", "cuda-cudart", "cuda-nvrtc"]
                    elif p.cuda:
                        build = "cpu_" + build
                    if name not in ("_libgcc_mutex", "libgcc", "libgomp", "_openmp_mutex",
                                    "libstdcxx", "ca-certificates", "tzdata", "libgcc-ng",
                                    "libstdcxx-ng") and p.kind != "abi":
                        deps.append("libgcc-ng >=%d" % (12 if tb > 0.5 else 9))
                        if rng.random() < 0.5 and p.kind in ("c", "pyc", "cuda"):
                            deps.append("libstdcxx-ng >=%d" % (12 if tb > 0.5 else 9))
                        if rng.random() < 0.3 and p.kind == "c":
                            deps.append("__glibc >=2.17")
                if p.kind == "abi":
                    build = "%d_cp%s" % (4 + bn, v.replace(".", ""))
                    constrains = ["python %s.* *_cpython" % v]
                if name == "python":
                    build = "h%s_%d_cpython" % (h, bn)
                    minor = int(v.split(".")[1])
                    deps.append("python_abi %s.* *_cp3%d" % (v.rsplit(".", 1)[0], minor))
                    deps.append("pip")
                deps += dep_specs(pkgs, p, pin_t, rng)
                if name in ("libgcc-ng", "libstdcxx-ng"):
                    deps = ["%s %s" % (name[:-3], v)]
                if name == "libgcc":
                    constrains = ["libgomp %s" % v]
                fn = "%s-%s-%s%s" % (name, v, build, ext)
                rec = {
                    "build": build,
                    "build_number": build_number,
                    "depends": sorted(set(deps)),
                    "license": p.license,
                    "md5": rng.hexstr(32),
                    "name": name,
                    "sha256": rng.hexstr(64),
                    "size": max(1000, int(p.size * rng.uniform(0.8, 1.25))),
                    "subdir": subdir,
                    "timestamp": ts + rng.randint(0, 3_600_000),
                    "version": v,
                }
                if constrains:
                    rec["constrains"] = constrains
                if p.kind == "pyn":
                    rec["noarch"] = "python"
                yield subdir, ext, fn, rec


def write_repodata(path, subdir, items):
    """Streams {"info", "packages", "packages.conda", "repodata_version"} with sorted keys."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    enc = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
    with open(tmp, "w") as f:
        f.write('{"info":{"subdir":"%s"},' % subdir)
        for key, ext in (("packages", ".tar.bz2"), ("packages.conda", ".conda")):
            f.write('"%s":{' % key)
            first = True
            for fn, rec in sorted((fn, r) for e, fn, r in items if e == ext):
                if not first:
                    f.write(",\n")
                first = False
                f.write(json.dumps(fn) + ":" + enc.encode(rec))
            f.write("},")
        f.write('"removed":[],"repodata_version":1}\n')
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the filler names")
    args = ap.parse_args()
    rng = Rng(args.seed)
    pkgs = build_universe(rng, args.scale)
    by_subdir = {"linux-64": [], "noarch": []}
    for name in sorted(pkgs):
        for subdir, ext, fn, rec in records_for(pkgs, pkgs[name], rng):
            by_subdir[subdir].append((ext, fn, rec))
    total = 0
    for subdir, items in by_subdir.items():
        path = os.path.join(args.out, subdir, "repodata.json")
        write_repodata(path, subdir, items)
        total += len(items)
        print("%s: %d records, %.1f MB" % (path, len(items), os.path.getsize(path) / 1e6),
              file=sys.stderr)
    with open(os.path.join(args.out, "ml-environment.yml"), "w") as f:
        f.write("# generated by bench/gen_repodata.py --seed %d --scale %g\n" %
                (args.seed, args.scale))
        f.write("name: ml\nchannels:\n  - %s\ndependencies:\n" % os.path.abspath(args.out))
        for spec in ML_TOP:
            f.write("  - %s\n" % spec)
    print("%d names, %d records" % (len(pkgs), total), file=sys.stderr)


if __name__ == "__main__":
    main()
