#!/usr/bin/env bash
# Extraction throughput: `envbuild pkg extract` vs `cph x` (conda-package-handling) on the same
# real packages from tests/data/packages (ENVBUILD_TESTDATA=DIR: DIR/packages). Prints seconds,
# MB/s of package bytes, and the speed-up ratio (target >= 3x). Timing lives here, never in tests.
#
# usage: bench/extract.sh [ENVBUILD_BINARY] [ROUNDS]
#   ENVBUILD_BINARY  default: build/envbuild
#   ROUNDS           default: 3 (the best round of each tool is reported)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
envbuild=${1:-$here/build/envbuild}
rounds=${2:-3}
testdata=${ENVBUILD_TESTDATA:-$here/tests/data}
command -v cph >/dev/null || { echo "cph is not installed" >&2; exit 2; }
[ -x "$envbuild" ] || { echo "no envbuild at $envbuild (build it or pass its path)" >&2; exit 2; }

# Packages both tools extract (cph refuses the corrupt ones, the nested-zip and the info-only).
mapfile -t packages < <(find "$testdata/packages" -type f \( -name '*.conda' -o -name '*.tar.bz2' \) \
  ! -path '*/corrupt/*' ! -name 'ca-certificates-2024.7.4-hbcca054_0.conda' \
  ! -name 'info-only-*' ! -path '*/conda_format_repo/linux-64/*.conda' \
  ! -path '*/conda_format_repo/osx-64/*.conda' | sort)
bytes=$(cat "${packages[@]}" | wc -c)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

one_pass() {  # $1 = envbuild|cph: extracts every package once
  local out="$work/$1" i=0
  rm -rf "$out"; mkdir -p "$out"
  for p in "${packages[@]}"; do
    i=$((i + 1))
    if [ "$1" = envbuild ]; then
      "$envbuild" pkg extract "$p" "$out/$i" >/dev/null
    else
      cph x "$p" --dest "$out/$i" >/dev/null 2>&1
    fi
  done
}

run_tool() {  # prints "wall cpu" seconds for one pass (cpu = user + sys of the children)
  local TIMEFORMAT='%R %U %S' t
  t=$( { time one_pass "$1"; } 2>&1 )
  echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}

best() { sort -g -k2 | head -1; }  # the round with the least CPU: robust on a busy machine
ours=$(for _ in $(seq "$rounds"); do run_tool envbuild; done | best)
theirs=$(for _ in $(seq "$rounds"); do run_tool cph; done | best)
mb=$(echo "$bytes / 1048576" | bc -l)
read -r ours_wall ours_cpu <<<"$ours"
read -r cph_wall cph_cpu <<<"$theirs"
printf 'packages: %d (%.1f MB compressed), best of %d rounds\n' "${#packages[@]}" "$mb" "$rounds"
printf 'envbuild pkg extract: wall %7.3f s  cpu %7.3f s  %7.1f MB/s (cpu)\n' "$ours_wall" "$ours_cpu" \
  "$(echo "$mb / $ours_cpu" | bc -l)"
printf 'cph x:                wall %7.3f s  cpu %7.3f s  %7.1f MB/s (cpu)\n' "$cph_wall" "$cph_cpu" \
  "$(echo "$mb / $cph_cpu" | bc -l)"
printf 'ratio (cph / envbuild): wall %.1fx, cpu %.1fx (target >= 3x)\n' \
  "$(echo "$cph_wall / $ours_wall" | bc -l)" "$(echo "$cph_cpu / $ours_cpu" | bc -l)"

# The largest packages alone, where per-process start-up matters least.
big=$(ls -S "${packages[@]}" | head -3)
b_ours=0; b_theirs=0; i=0
for p in $big; do
  i=$((i + 1))
  s=$(date +%s.%N); "$envbuild" pkg extract "$p" "$work/big-e$i" >/dev/null; e=$(date +%s.%N)
  b_ours=$(echo "$b_ours + $e - $s" | bc -l)
  s=$(date +%s.%N); cph x "$p" --dest "$work/big-c$i" >/dev/null 2>&1; e=$(date +%s.%N)
  b_theirs=$(echo "$b_theirs + $e - $s" | bc -l)
done
printf 'largest 3 packages: envbuild %.3f s, cph %.3f s, ratio %.1fx\n' "$b_ours" "$b_theirs" \
  "$(echo "$b_theirs / $b_ours" | bc -l)"
