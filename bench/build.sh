#!/usr/bin/env bash
# `envbuild build` of a 1 GB+ environment against the alternatives, in one run, with a warm
# package cache (every tool starts from the same extracted packages):
#   (a) cold `envbuild build` (empty layer cache) to an oci: layout;
#   (b) the baseline: `envbuild install` + `tar --sort=name -c prefix | gzip -n` (+ sha256sum);
#   (c) `umoci repack` of the same installed prefix (init, new, unpack, copy prefix into the
#       rootfs, repack), and `buildah commit` of it when buildah is installed;
#   (d) incremental rebuild after a one-package change (the smallest linux-64 package regenerated
#       with the next build number, channel reindexed) as a fraction of the cold build.
# Prints medians of RUNS runs, the ratios and envbuild's peak RSS (/usr/bin/time -v).
# Targets: cold <= baseline, incremental <= 10% of cold, peak RSS < 300 MB.
#
#   bench/build.sh [ENVBUILD]   env: SIZE_MB=1100 PACKAGES=150 SEED=1 RUNS=3 JOBS=$(nproc)
#                                    BENCH_DIR (default /dev/shm/envbuild-bench-build when /dev/shm
#                                    has 8 GB free, else /tmp/...; the run holds ~6 GB; kept, so the
#                                    generated channel is reused)
# On a busy disk staging (patched copies of the placeholder files, ~80 MB here) is I/O bound. The
# plan cache (<cache>/plans, warmed by the --plan run below) limits it to the packages whose layers
# are written: all of them in a cold build, the bumped package's layer in an incremental one.
# On a shared machine wall times mostly measure the other load: CPU times are printed too.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
envbuild=${1:-$here/build/envbuild}
[[ -x $envbuild ]] || { echo "no envbuild at $envbuild (build it or pass its path)" >&2; exit 2; }
for tool in python3 zstd umoci tar gzip sha256sum jq /usr/bin/time; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
size_mb=${SIZE_MB:-1100} packages=${PACKAGES:-150} seed=${SEED:-1} runs=${RUNS:-3}
jobs=${JOBS:-$(nproc)}
default_dir=/tmp/envbuild-bench-build
if [[ -d /dev/shm && -w /dev/shm ]] && (($(df --output=avail -k /dev/shm | tail -1) > 8 * 1024 * 1024)); then
  default_dir=/dev/shm/envbuild-bench-build
fi
work=${BENCH_DIR:-$default_dir}
gen=$work/gen-$size_mb-$packages-$seed
cache=$work/cache
mkdir -p "$work"
cleanup() { rm -rf "$work/runs"; }
trap cleanup EXIT

if [[ ! -f $gen/packages.json ]]; then
  echo "generating $packages packages, $size_mb MB installed (seed $seed) in $gen ..."
  rm -rf "$gen"
  python3 "$here/bench/gen_env.py" "$gen" --size-mb "$size_mb" --packages "$packages" --seed "$seed"
fi
python3 "$here/bench/gen_env.py" "$gen" --reset  # an earlier run bumped a package
# The package to change: the smallest linux-64 one.
small=$(jq -r '[.packages[] | select(.subdir == "linux-64")] | min_by(.size) | .name' "$gen/packages.json")
"$envbuild" index -q "$gen/channel"
env_file=$gen/environment.yml
installed_mb=$(du -sm --apparent-size "$gen/channel" | cut -f1)

# Warm the package cache (and the repodata cache): fetch + extract everything once.
echo "warming the package cache in $cache ..."
"$envbuild" build -q -f "$env_file" -t bench:warm --plan --cache-dir "$cache" >/dev/null

runs_dir=$work/runs
mkdir -p "$runs_dir"
declare -A wall cpu
record() {  # name seconds cpu-seconds
  wall[$1]+="$2 "
  cpu[$1]+="$3 "
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# Runs "$@" under /usr/bin/time; sets T_WALL, T_CPU, T_RSS_MB.
timed() {
  local out=$runs_dir/time.txt
  /usr/bin/time -v -o "$out" "$@"
  T_WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$out")
  T_CPU=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$out")
  T_RSS_MB=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$out")
}
# Shell pipelines as one timed command (time -v counts the children: cpu is all of them).
timed_sh() { timed bash -c "$1"; }
rss_max=0
note_rss() { ((T_RSS_MB > rss_max)) && rss_max=$T_RSS_MB; return 0; }

echo "cpu: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); data in $work ($(df --output=fstype "$work" | tail -1))"
build_cmd=("$envbuild" build -q -f "$env_file" -t bench:1 --cache-dir "$cache" -j "$jobs")
for ((r = 1; r <= runs; r++)); do
  # (a) cold: no layer cache, no blobs; the package cache stays warm.
  rm -rf "$cache/layers" "$cache/oci" "$cache/tmp" "$runs_dir/oci-a"
  sync
  timed "${build_cmd[@]}" --output "oci:$runs_dir/oci-a" >"$runs_dir/digest-a"
  record cold "$T_WALL" "$T_CPU"; note_rss
  echo "  run $r: cold envbuild build ${T_WALL}s (cpu ${T_CPU}s, rss ${T_RSS_MB} MB)"

  # (b) baseline: install, then tar | gzip the prefix.
  rm -rf "$runs_dir/prefix" "$runs_dir/prefix.tar.gz"
  sync
  timed "$envbuild" install -q -p "$runs_dir/prefix" -f "$env_file" --cache-dir "$cache" \
    -j "$jobs" --no-link-scripts
  record install "$T_WALL" "$T_CPU"
  inst=$T_WALL inst_cpu=$T_CPU
  timed_sh "tar --sort=name --owner=0 --group=0 --numeric-owner -C '$runs_dir/prefix' -c . | gzip -n > '$runs_dir/prefix.tar.gz' && sha256sum '$runs_dir/prefix.tar.gz' >/dev/null"
  record targz "$T_WALL" "$T_CPU"
  record baseline "$(echo "$inst + $T_WALL" | bc -l)" "$(echo "$inst_cpu + $T_CPU" | bc -l)"
  echo "  run $r: baseline install ${inst}s + tar|gzip ${T_WALL}s"

  # (c) umoci repack of the same prefix.
  rm -rf "$runs_dir/umoci" "$runs_dir/bundle"
  sync
  timed_sh "umoci init --layout '$runs_dir/umoci' && umoci new --image '$runs_dir/umoci:bench' &&
    umoci unpack --rootless --image '$runs_dir/umoci:bench' '$runs_dir/bundle' &&
    mkdir -p '$runs_dir/bundle/rootfs/opt' && cp -a '$runs_dir/prefix' '$runs_dir/bundle/rootfs/opt/conda' &&
    umoci repack --image '$runs_dir/umoci:bench' '$runs_dir/bundle'"
  record umoci "$T_WALL" "$T_CPU"
  echo "  run $r: umoci repack ${T_WALL}s"
  if command -v buildah >/dev/null; then
    timed_sh "c=\$(buildah from scratch) && m=\$(buildah mount \$c) && mkdir -p \$m/opt &&
      cp -a '$runs_dir/prefix' \$m/opt/conda && buildah commit -q \$c oci:$runs_dir/buildah:bench >/dev/null &&
      buildah rm \$c >/dev/null"
    record buildah "$T_WALL" "$T_CPU"
    echo "  run $r: buildah commit ${T_WALL}s"
  fi
  rm -rf "$runs_dir/bundle" "$runs_dir/umoci" "$runs_dir/prefix.tar.gz"

  # (d) incremental: one small package changes; the layer cache holds the cold build's layers.
  python3 "$here/bench/gen_env.py" "$gen" --bump "$small" >/dev/null
  "$envbuild" index -q "$gen/channel"
  rm -rf "$runs_dir/oci-d"
  timed "${build_cmd[@]}" --output "oci:$runs_dir/oci-d" >"$runs_dir/digest-d"
  record incremental "$T_WALL" "$T_CPU"; note_rss
  new_layers=$(comm -13 <(jq -r '.layers[].digest' "$runs_dir"/oci-a/blobs/sha256/"$(cut -d: -f2 "$runs_dir/digest-a")" | sort) \
    <(jq -r '.layers[].digest' "$runs_dir"/oci-d/blobs/sha256/"$(cut -d: -f2 "$runs_dir/digest-d")" | sort) | wc -l)
  echo "  run $r: incremental ($small bumped) ${T_WALL}s, $new_layers new layers"
  rm -rf "$runs_dir/prefix"
done

layers=$(jq '.layers | length' "$runs_dir"/oci-a/blobs/sha256/"$(cut -d: -f2 "$runs_dir/digest-a")")
image_mb=$(du -sm "$runs_dir/oci-a" | cut -f1)
echo
echo "environment: $packages packages, $installed_mb MB of .conda files; image: $layers layers, $image_mb MB (gzip)"
echo "medians of $runs runs (wall s / cpu s), jobs $jobs:"
for k in cold install targz baseline umoci buildah incremental; do
  [[ -n ${wall[$k]:-} ]] || continue
  printf '  %-12s %8.2f s  cpu %8.2f s\n' "$k" "$(median <<<"${wall[$k]}")" "$(median <<<"${cpu[$k]}")"
done
cold=$(median <<<"${wall[cold]}")
ratio() { echo "$1 / $2" | bc -l; }
printf 'cold / baseline (install + tar|gzip) = %.2fx (target <= 1.0x); cpu %.2fx\n' \
  "$(ratio "$cold" "$(median <<<"${wall[baseline]}")")" \
  "$(ratio "$(median <<<"${cpu[cold]}")" "$(median <<<"${cpu[baseline]}")")"
printf 'cold / (install + umoci repack) = %.2fx\n' \
  "$(ratio "$cold" "$(echo "$(median <<<"${wall[install]}") + $(median <<<"${wall[umoci]}")" | bc -l)")"
[[ -n ${wall[buildah]:-} ]] || echo "buildah: not installed, skipped"
printf 'incremental / cold = %.1f%% (target <= 10%%)\n' \
  "$(echo "100 * $(median <<<"${wall[incremental]}") / $cold" | bc -l)"
echo "envbuild peak RSS: $rss_max MB (target < 300 MB)"
