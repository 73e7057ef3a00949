#!/usr/bin/env bash
# HPC start-up, in one run, for a 1 GB+ synthetic environment (bench/gen_env.py, as bench/build.sh):
# the time to the first command and the files created on the host when envrun starts
#   (a) from the SquashFS image (`envbuild build --output squashfs:FILE`), run in place: mounted
#       (kernel as root, squashfuse otherwise) at its prefix, nothing extracted;
#   (a') the same through squashfuse (ENVRUN_SQUASHFS_MOUNT=fuse), where the host has it;
#   (b) from the OCI image with `envrun` (cold: unpacked and relocated into an empty cache);
#   (c) `tar -x` of the same tree (an uncompressed tar of the unpacked prefix);
# and the size of the SquashFS image against the image's gzip OCI layers.
# Prints medians of RUNS runs and the ratios. Targets: (a) <= 0.2 x (b), fewer than 100 files.
#
#   bench/squashfs.sh [BUILD_DIR]    env: SIZE_MB=1100 PACKAGES=150 SEED=1 RUNS=3
#                                         BENCH_DIR (default /tmp/envbuild-bench-squashfs; kept, so
#                                         the generated channel and images are reused)
# The page cache is warm for every variant (nothing is dropped: the machine is shared), so the
# times compare the work each does, not the disk.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build}
for b in envbuild envrun envrun-full; do
  [[ -x $bin/$b ]] || { echo "no $b in $bin (build it or pass the build directory)" >&2; exit 2; }
done
for tool in python3 tar jq flock find; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
size_mb=${SIZE_MB:-1100} packages=${PACKAGES:-150} seed=${SEED:-1} runs=${RUNS:-3}
work=${BENCH_DIR:-/tmp/envbuild-bench-squashfs}
gen=$work/gen-$size_mb-$packages-$seed
prefix=$work/env  # where the SquashFS image is built for (and mounted): it must exist
mkdir -p "$work" "$prefix"
runs_dir=$work/runs
cleanup() { rm -rf "$runs_dir"; }
trap cleanup EXIT

if [[ ! -f $gen/packages.json ]]; then
  echo "generating $packages packages, $size_mb MB installed (seed $seed) in $gen ..."
  rm -rf "$gen"
  python3 "$here/bench/gen_env.py" "$gen" --size-mb "$size_mb" --packages "$packages" --seed "$seed"
fi
python3 "$here/bench/gen_env.py" "$gen" --reset
"$bin/envbuild" index -q "$gen/channel"

echo "building the images (once; kept in $work) ..."
image=$work/env.sqfs
layout=$work/layout
if [[ ! -f $image || ! -f $layout/index.json ]]; then
  start=$(date +%s.%N)
  "$bin/envbuild" build -q -f "$gen/environment.yml" -t bench:1 --cache-dir "$work/build-cache" \
    --prefix "$prefix" -o "squashfs:$image" >/dev/null
  end=$(date +%s.%N)
  echo "  squashfs: $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s (package cache warm after this)"
  "$bin/envbuild" build -q -f "$gen/environment.yml" -t bench:1 --cache-dir "$work/build-cache" \
    -o "oci:$layout:1" >/dev/null
fi

mkdir -p "$runs_dir"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# Every entry below $1 on its own file system (a mount in it is the image's, not the host's).
files_below() { find "$1" -xdev 2>/dev/null | wc -l; }
# Blocks until every shared mount's watcher has taken its mount down (no timing involved).
wait_watchers() { for w in "$1"/m/*.watch.lock; do [[ -e $w ]] && flock "$w" true; done; return 0; }

declare -A times files
record() { times[$1]+="$2 "; files[$1]+="$3 "; }
mode=""

run_squashfs() {  # name [VAR=value...]
  local name=$1
  shift
  local cache=$runs_dir/$name-$r
  local start end
  start=$(now)
  env "$@" ENVRUN_CACHE="$cache" "$bin/envrun" "$image" -- true 2>"$runs_dir/err"
  end=$(now)
  wait_watchers "$cache"
  [[ -n $(ls -A "$prefix") ]] && { echo "the host's $prefix changed" >&2; exit 1; }
  record "$name" "$(elapsed "$start" "$end")" "$(files_below "$cache")"
  if grep -q "envrun: mounted" "$runs_dir/err"; then
    mode=$(sed -n 's/.*envrun: mounted .* (\(.*\))$/\1/p' "$runs_dir/err" | head -1)
  else
    mode="fallback: $(head -c 300 "$runs_dir/err")"
  fi
  rm -rf "$cache"
}

echo "cpu: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); data in $work ($(df --output=fstype "$work" | tail -1))"
fuse_mode=""
for ((r = 1; r <= runs; r++)); do
  run_squashfs squashfs
  squashfs_mode=$mode
  if command -v squashfuse_ll >/dev/null || command -v squashfuse >/dev/null; then
    run_squashfs squashfuse ENVRUN_SQUASHFS_MOUNT=fuse
    fuse_mode=$mode
  fi

  cache=$runs_dir/unpack-$r
  start=$(now)
  ENVRUN_CACHE="$cache" "$bin/envrun" "oci:$layout:1" -- true 2>/dev/null
  end=$(now)
  record unpack "$(elapsed "$start" "$end")" "$(files_below "$cache")"
  if [[ ! -f $work/tree.tar ]]; then
    tar -C "$(ls -d "$cache"/p/*/ | head -1)" -cf "$work/tree.tar" .
  fi
  rm -rf "$cache"

  dest=$runs_dir/tar-$r
  mkdir -p "$dest"
  start=$(now)
  tar -xf "$work/tree.tar" -C "$dest"
  end=$(now)
  record tar "$(elapsed "$start" "$end")" "$(($(files_below "$dest") - 1))"
  rm -rf "$dest"
done

layers=$(jq -r '.manifests[0].digest' "$layout/index.json" | sed 's/sha256://')
gzip_bytes=$(jq '[.layers[].size] | add' "$layout/blobs/sha256/$layers")
sqfs_bytes=$(stat -c %s "$image")
compression=$(python3 - "$image" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    sb = f.read(96)
print({1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}.get(struct.unpack_from("<H", sb, 20)[0], "?"))
PY
)

printf "\n%-32s %14s %16s\n" "first command (median of $runs)" "seconds" "files created"
for name in squashfs squashfuse unpack tar; do
  [[ -z ${times[$name]:-} ]] && continue
  label=$name
  case $name in
    squashfs) label="squashfs in place ($squashfs_mode)" ;;
    squashfuse) label="squashfs in place ($fuse_mode)" ;;
    unpack) label="envrun unpack (OCI, cold)" ;;
    tar) label="tar -x of the same tree" ;;
  esac
  printf "%-32s %14s %16s\n" "${label:0:32}" "$(echo "${times[$name]}" | median)" "$(echo "${files[$name]}" | median)"
done
s=$(echo "${times[squashfs]}" | median)
u=$(echo "${times[unpack]}" | median)
t=$(echo "${times[tar]}" | median)
f=$(echo "${files[squashfs]}" | median)
printf "\nsquashfs / envrun unpack: %.3f (target <= 0.2)   squashfs / tar -x: %.3f\n" \
  "$(awk -v a="$s" -v b="$u" 'BEGIN { print a / b }')" "$(awk -v a="$s" -v b="$t" 'BEGIN { print a / b }')"
printf "files created by the squashfs start: %s (target < 100)\n" "$f"
printf "size: squashfs image %.1f MB (%s), gzip OCI layers %.1f MB: %.2f x\n" \
  "$(awk -v b="$sqfs_bytes" 'BEGIN { print b / 1048576 }')" "$compression" \
  "$(awk -v b="$gzip_bytes" 'BEGIN { print b / 1048576 }')" \
  "$(awk -v a="$sqfs_bytes" -v b="$gzip_bytes" 'BEGIN { print a / b }')"
