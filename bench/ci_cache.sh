#!/usr/bin/env bash
# A warm CI build with the registry layer cache, as a CI job runs it once an earlier job has
# pushed the cache: `envbuild build --cache-from R/cache [--cache-to R/cache] -o docker://R/app`
# against a local docker-registry (deletes enabled) whose cache holds every layer, so no layer is
# built or uploaded. Two kinds of runner:
#   fresh  an empty --cache-dir (a new machine: packages fetched, extracted and planned again);
#   kept   the package and plan caches kept between jobs, no local layers or blobs;
# and two command lines: --cache-from with --cache-to (the usual CI line), --cache-from alone.
# Each build must reuse every layer from the registry (checked). With BASE=<another envbuild>
# both binaries run, in alternating order, each with a cache repository of its own (their cache
# formats may differ); the script prints the medians and new/base.
# Target: new within 10% of base (issue 22).
#
#   bench/ci_cache.sh [ENVBUILD]   env: BASE= SIZE_MB=200 PACKAGES=60 SEED=1 RUNS=5
#                                       BENCH_DIR (default /tmp/envbuild-bench-ci; the generated
#                                       channel is kept and reused)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
envbuild=${1:-$here/build/envbuild}
base=${BASE:-}
for bin in "$envbuild" ${base:+"$base"}; do
  [[ -x $bin ]] || { echo "no envbuild at $bin (build it or pass its path)" >&2; exit 2; }
done
for tool in python3 docker-registry curl; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
size_mb=${SIZE_MB:-200} packages=${PACKAGES:-60} seed=${SEED:-1} runs=${RUNS:-5}
work=${BENCH_DIR:-/tmp/envbuild-bench-ci}
gen=$work/gen-$size_mb-$packages-$seed
mkdir -p "$work"
scratch=$(mktemp -d "$work/run.XXXXXX")
registry_pid=
cleanup() {
  [[ -z $registry_pid ]] || kill "$registry_pid" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

if [[ ! -f $gen/packages.json ]]; then
  echo "generating $packages packages, $size_mb MB installed (seed $seed) in $gen ..."
  rm -rf "$gen"
  python3 "$here/bench/gen_env.py" "$gen" --size-mb "$size_mb" --packages "$packages" --seed "$seed"
fi
python3 "$here/bench/gen_env.py" "$gen" --reset >/dev/null
"$envbuild" index -q "$gen/channel"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$scratch/registry"
printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$scratch/registry" "$port" >"$scratch/registry.yml"
docker-registry serve "$scratch/registry.yml" >"$scratch/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.05; done
reg=docker://127.0.0.1:$port

declare -A bins=([new]=$envbuild)
names=(new)
if [[ -n $base ]]; then
  bins[base]=$base
  names=(base new)
fi
build() {  # NAME CACHE_DIR OUTPUT_TAG EXTRA... -> wall seconds; every layer must come from the registry
  local name=$1 dir=$2 tag=$3 log=$scratch/build.log s e
  shift 3
  s=$(date +%s.%N)
  "${bins[$name]}" build -f "$gen/environment.yml" -t bench:1 --tls-verify=false --cache-dir "$dir" \
    -o "$reg/$name/app:$tag" "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}

# The cache: one cold build per binary, which also warms its kept runner's package cache.
for name in "${names[@]}"; do
  build "$name" "$scratch/kept-$name" seed --cache-to "$reg/$name/cache" >/dev/null
done

declare -A times
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "cpu: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); $packages packages, $size_mb MB"
for ((r = 1; r <= runs; r++)); do
  order=("${names[@]}")
  ((r % 2)) || order=($(printf '%s\n' "${names[@]}" | tac))
  for kind in fresh kept; do
    for line in from+to from; do
      for name in "${order[@]}"; do
        dir=$scratch/kept-$name
        if [[ $kind == fresh ]]; then
          dir=$scratch/fresh
          rm -rf "$dir"
        else
          rm -rf "$dir/layers" "$dir/oci" "$dir/tmp"
        fi
        extra=(--cache-from "$reg/$name/cache")
        [[ $line == from ]] || extra+=(--cache-to "$reg/$name/cache")
        t=$(build "$name" "$dir" "$r" "${extra[@]}")
        grep -q "(0 written, " "$scratch/build.log" ||
          { echo "$name $kind $line: layers were built:" >&2; cat "$scratch/build.log" >&2; exit 1; }
        times[$kind/$line/$name]+="$t "
        printf '  run %d %-6s %-8s %-5s %6.2f s\n' "$r" "$kind" "$line" "$name" "$t"
      done
    done
  done
done

echo
echo "medians of $runs runs (wall seconds)"
if [[ -n $base ]]; then
  printf '%-16s %8s %8s %9s\n' runner/line base new new/base
else
  printf '%-16s %8s\n' runner/line new
fi
for kind in fresh kept; do
  for line in from+to from; do
    n=$(median <<<"${times[$kind/$line/new]}")
    if [[ -n $base ]]; then
      b=$(median <<<"${times[$kind/$line/base]}")
      printf '%-16s %8.2f %8.2f %9.2f\n' "$kind $line" "$b" "$n" "$(echo "$n / $b" | bc -l)"
    else
      printf '%-16s %8.2f\n' "$kind $line" "$n"
    fi
  done
done
