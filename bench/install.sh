#!/usr/bin/env bash
# `envbuild install` of a 1 GB+ synthetic environment (bench/gen_packages.py: ~150 packages,
# realistic file-size mix, text and binary placeholders), in one run:
#
#  (a) warm: package cache filled and extracted, `envbuild install --lock` into a fresh prefix,
#      against the baseline `tar -xf` of the same files (one uncompressed tar of every package's
#      extracted files, in link order) + a perl pass that patches the placeholder files (text:
#      s/placeholder/prefix/g; binary: the same with NUL padding to keep the length, as conda
#      does). Target: envbuild faster (ratio baseline/envbuild > 1).
#  (b) cold: empty cache, packages from a local HTTP channel (python3 -m http.server on
#      127.0.0.1), against the link's throughput: curl of the same URLs to /dev/null, 8 in
#      parallel. Target: envbuild's throughput (package bytes / wall time) >= 80% of curl's.
#
# Medians of hyperfine runs. Everything lives under $WORK (default /dev/shm/envbuild-bench-install:
# /tmp is a slow disk on the CI VM; cache and prefix must be on one file system for hard links).
#
#   bench/install.sh [ENVBUILD]   (env: SIZE_MB=1100 PACKAGES=150 SEED=1 RUNS=5 COLD_RUNS=3
#                                  JOBS=8 WORK=... KEEP=1 keeps the generated channel)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
envbuild=${1:-$here/build/envbuild}
[[ -x $envbuild ]] || { echo "no envbuild at $envbuild (build it first)" >&2; exit 2; }
for tool in hyperfine python3 curl perl tar jq zstd; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
envbuild=$(cd "$(dirname "$envbuild")" && pwd)/$(basename "$envbuild")
size_mb=${SIZE_MB:-1100} packages=${PACKAGES:-150} seed=${SEED:-1}
runs=${RUNS:-5} cold_runs=${COLD_RUNS:-3} jobs=${JOBS:-8}
work=${WORK:-/dev/shm/envbuild-bench-install}
channel=$work/channel-$size_mb-$packages-$seed
mkdir -p "$work"
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work/cache" "$work/prefix" "$work/base" "$work/base.tar" "$work/lists"
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$channel"
}
trap cleanup EXIT

if [[ ! -f $channel/linux-64/repodata.json ]]; then
  echo "generating $size_mb MB in $packages packages (seed $seed) under $channel ..."
  rm -rf "$channel"
  python3 "$here/bench/gen_packages.py" "$channel" --size-mb "$size_mb" --packages "$packages" \
    --seed "$seed"
  "$envbuild" index "$channel" >/dev/null
fi

# The channel over HTTP on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$channel" "$port" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/linux-64/repodata.json" && break; sleep 0.1; done

# An @EXPLICIT lock with every package (url#sha256), and the URL list for curl.
python3 - "$channel" "$port" "$work" <<'PY'
import json, os, sys
channel, port, work = sys.argv[1:4]
m = json.load(open(os.path.join(channel, "manifest.json")))
base = f"http://127.0.0.1:{port}/linux-64/"
with open(os.path.join(work, "env.lock"), "w") as f:
    f.write("# platform: linux-64\n@EXPLICIT\n")
    for p in m["packages"]:
        f.write(f"{base}{p['fn']}#sha256:{p['sha256']}\n")
with open(os.path.join(work, "urls"), "w") as f:
    for p in m["packages"]:
        f.write(base + p["fn"] + "\n")
PY
pkg_bytes=$(jq '[.packages[].size] | add' "$channel/manifest.json")
inst_bytes=$(jq '[.packages[].installed_bytes] | add' "$channel/manifest.json")
pkg_count=$(jq '.packages | length' "$channel/manifest.json")
prefix=$work/prefix
cache=$work/cache
install_cmd="$envbuild install -q -j $jobs --prefix $prefix --lock $work/env.lock --cache-dir $cache"
curl_cmd="xargs -P $jobs -n 1 curl -sf -o /dev/null < $work/urls"
median() { jq -r ".results[$1].median" "$2"; }

echo "== (b) cold install from http://127.0.0.1:$port ($pkg_count packages, $((pkg_bytes >> 20)) MiB)"
hyperfine -N --runs "$cold_runs" --export-json "$work/cold.json" \
  --prepare "rm -rf $cache $prefix" -n "envbuild install (cold)" "$install_cmd" \
  --prepare "true" -n "curl x$jobs to /dev/null" "bash -c '$curl_cmd'" >/dev/null
cold=$(median 0 "$work/cold.json")
link=$(median 1 "$work/cold.json")

# The baseline's input: every package's extracted files in one tree (later packages win, as
# in envbuild), as one uncompressed tar; the placeholder files, by mode.
rm -rf "$prefix"
"$envbuild" install -q --prefix "$prefix" --lock "$work/env.lock" --cache-dir "$cache" >/dev/null
mkdir -p "$work/base" "$work/lists"
python3 - "$channel" "$cache" "$work" <<'PY'
import json, os, shutil, sys
channel, cache, work = sys.argv[1:4]
m = json.load(open(os.path.join(channel, "manifest.json")))
base = os.path.join(work, "base")
text, binary = set(), set()
for p in m["packages"]:
    src = os.path.join(cache, "extracted", p["sha256"])
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        if rel == "info" or rel.startswith("info/"):
            continue
        os.makedirs(os.path.join(base, rel), exist_ok=True)
        for name in files:
            d = os.path.join(base, rel, name)
            if os.path.lexists(d):
                os.remove(d)
            s = os.path.join(root, name)
            if os.path.islink(s):
                os.symlink(os.readlink(s), d)
            else:
                os.link(s, d)
    for path, mode in p["placeholders"]:
        (text if mode == "text" else binary).add(path)
open(os.path.join(work, "lists", "text"), "w").write("".join(p + "\0" for p in sorted(text)))
open(os.path.join(work, "lists", "binary"), "w").write("".join(p + "\0" for p in sorted(binary)))
open(os.path.join(work, "lists", "placeholder"), "w").write(m["placeholder"])
PY
tar -cf "$work/base.tar" -C "$work/base" .
rm -rf "$work/base"
ntext=$(tr -cd '\0' <"$work/lists/text" | wc -c)
nbin=$(tr -cd '\0' <"$work/lists/binary" | wc -c)
cat >"$work/baseline.sh" <<EOF
set -e
rm -rf $work/base && mkdir -p $work/base && cd $work/base
tar -xf $work/base.tar
export PH=\$(cat $work/lists/placeholder) NEW=$prefix  # same bytes as envbuild: diffable
xargs -0 -r perl -pi -e 's/\\Q\$ENV{PH}\\E/\$ENV{NEW}/g' < $work/lists/text
xargs -0 -r perl -0777 -pi -e 's{(\\Q\$ENV{PH}\\E[^\\0]*)\\0}{my \$o = \$1; (my \$s = \$o) =~ s/\\Q\$ENV{PH}\\E/\$ENV{NEW}/g; \$s . ("\\0" x (length(\$o) + 1 - length(\$s)))}ge' < $work/lists/binary
EOF

echo "== (a) warm install ($((inst_bytes >> 20)) MiB installed; $ntext text and $nbin binary placeholder files)"
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/warm.json" \
  --prepare "rm -rf $prefix" -n "envbuild install (warm cache)" "$install_cmd" \
  --prepare "rm -rf $work/base" -n "tar -x + perl patch" "bash $work/baseline.sh" >/dev/null
warm=$(median 0 "$work/warm.json")
base=$(median 1 "$work/warm.json")
# The baseline must give the same tree as envbuild (less conda-meta): check it once.
if ! diff -r --no-dereference -x conda-meta -x .envbuild-staging "$prefix" "$work/base" >/dev/null 2>&1; then
  echo "note: the baseline's tree differs from envbuild's; first differences:" >&2
  diff -rq --no-dereference -x conda-meta "$prefix" "$work/base" 2>&1 | head -5 >&2 || true
fi

echo
echo "work dir: $work (tmpfs); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); medians"
printf '(a) warm: envbuild %.3f s, tar -x + perl %.3f s: ratio %.2fx (target > 1)\n' \
  "$warm" "$base" "$(echo "$base / $warm" | bc -l)"
printf '(b) cold: envbuild %.3f s = %.0f MB/s, curl x%d %.3f s = %.0f MB/s: %.0f%% of the link (target >= 80%%)\n' \
  "$cold" "$(echo "$pkg_bytes / 1000000 / $cold" | bc -l)" "$jobs" "$link" \
  "$(echo "$pkg_bytes / 1000000 / $link" | bc -l)" "$(echo "100 * $link / $cold" | bc -l)"
