#!/usr/bin/env bash
# The pip: section without pip: resolve + install of ~100 wheels into a prefix, against
# `pip install --no-deps --no-index --find-links` of the same wheels, in one run.
#
# The wheels are made by tests/testing/make_wheels.py (WHEELS=100 distributions, FILES=30 modules
# of ~2 KB each, every fifth one with a console script, a chain of dependencies so the resolver
# has work). envbuild: `envbuild install -f environment.yml` of the host's python (a conda
# package made by examples/demo/make_channel.py, cache warm) plus a pip: section naming every
# wheel (--no-index --find-links DIR), which resolves and installs them; its time includes
# linking the python package (~650 files), measured alone as well. pip: Debian's pip installing
# the same wheels with --no-deps (no resolution) into a fresh --prefix, with --no-compile
# (envbuild writes no .pyc either) and without. Target: envbuild <= 0.3x pip's time.
#
# Medians of hyperfine runs; everything under $WORK (default /dev/shm/envbuild-bench-pypi).
#
#   bench/pypi.sh [ENVBUILD]   (env: WHEELS=100 FILES=30 RUNS=5 WORK=...)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
envbuild=${1:-$here/build/envbuild}
[[ -x $envbuild ]] || { echo "no envbuild at $envbuild (build it first)" >&2; exit 2; }
for tool in hyperfine python3 jq; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
/usr/bin/python3 -m pip --version >/dev/null || { echo "Debian's pip is not installed" >&2; exit 2; }
envbuild=$(cd "$(dirname "$envbuild")" && pwd)/$(basename "$envbuild")
wheels=${WHEELS:-100} files=${FILES:-30} runs=${RUNS:-5}
work=${WORK:-/dev/shm/envbuild-bench-pypi}
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

python3 - "$work/spec.json" "$wheels" "$files" <<'EOF'
import json, sys
out, n, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = "".join(f"def f{i}(x):\n    return x * {i} + len('{'y' * 20}')\n" for i in range(60))
spec = []
for k in range(n):
    name = f"benchpkg{k:03d}"
    d = {"name": name, "version": "1.0",
         "files": {f"{name}/m{i}.py": body for i in range(files)}}
    d["files"][f"{name}/__init__.py"] = "def main():\n    return 0\n"
    if k + 1 < n and k % 3 == 0:
        d["requires"] = [f"benchpkg{k + 1:03d}>=1.0"]
    if k % 5 == 0:
        d["entry_points"] = {"console_scripts": {f"{name}-cli": f"{name}:main"}}
    spec.append(d)
json.dump(spec, open(out, "w"))
EOF
python3 "$here/tests/testing/make_wheels.py" "$work/spec.json" "$work/wheels" >/dev/null
python3 "$here/examples/demo/make_channel.py" "$work/channel" --only python >/dev/null
"$envbuild" index "$work/channel" >/dev/null
names=$(cd "$work/wheels" && ls *.whl | sed 's/-1.0-py3-none-any.whl//' | tr '\n' ' ')
bytes=$(du -sb "$work/wheels" | cut -f1)
echo "$(ls "$work/wheels" | wc -l) wheels, $((bytes / 1024)) KiB; python $(python3 -c 'import platform;print(platform.python_version())')"

{
  printf 'name: bench\nchannels:\n  - %s\n  - nodefaults\ndependencies:\n  - python 3.*\n' "$work/channel"
  printf '  - pip:\n    - --no-index\n    - --find-links %s\n' "$work/wheels"
  for n in $names; do printf '    - %s\n' "$n"; done
} >"$work/environment.yml"
printf 'name: bench\nchannels:\n  - %s\n  - nodefaults\ndependencies:\n  - python 3.*\n' \
  "$work/channel" >"$work/python-only.yml"

# Warm the package cache (python, and the wheels' extraction) once; each run installs afresh.
"$envbuild" install -q -f "$work/environment.yml" -p "$work/warm" --cache-dir "$work/cache"
test -x "$work/warm/bin/benchpkg000-cli"

hyperfine --style basic --runs "$runs" --export-json "$work/times.json" \
  --prepare "rm -rf $work/p" \
  -n envbuild "$envbuild install -q -f $work/environment.yml -p $work/p --cache-dir $work/cache" \
  -n envbuild-python-only "$envbuild install -q -f $work/python-only.yml -p $work/p --cache-dir $work/cache" \
  -n pip-no-compile "/usr/bin/python3 -m pip install -q --no-deps --no-index --find-links $work/wheels --prefix $work/p --no-compile --break-system-packages --disable-pip-version-check $names" \
  -n pip "/usr/bin/python3 -m pip install -q --no-deps --no-index --find-links $work/wheels --prefix $work/p --break-system-packages --disable-pip-version-check $names" \
  >/dev/null
median() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$work/times.json"; }
e=$(median envbuild) py=$(median envbuild-python-only) pn=$(median pip-no-compile) pc=$(median pip)
python3 - "$e" "$py" "$pn" "$pc" <<'EOF'
import sys
e, py, pn, pc = map(float, sys.argv[1:])
print(f"envbuild install (python + {''}resolve + wheels)  {e * 1000:8.0f} ms")
print(f"  of which the python package alone            {py * 1000:8.0f} ms")
print(f"pip install --no-deps --no-compile             {pn * 1000:8.0f} ms")
print(f"pip install --no-deps (compiles .pyc)          {pc * 1000:8.0f} ms")
print(f"ratio envbuild / pip --no-compile: {e / pn:.2f}x (target <= 0.3x); "
      f"wheels alone {(e - py) / pn:.2f}x; / pip: {e / pc:.2f}x")
EOF
