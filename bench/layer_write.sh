#!/bin/sh
# Layer write throughput: oci::write_layer (into a BlobStore, fsync included) against
# `tar --sort=name | gzip -n -6` and `tar --sort=name | zstd -3 -T1` (zstd's CLI default: one
# worker thread) on the same tree, at the same level, in one run. For each tree size it prints
# the median wall time of REPEAT runs, the speed ratio (pipeline time / envbuild time; the
# target is >= 0.9) and envbuild's peak RSS, which should not grow with the layer size. CPU time
# (user + sys, all threads and processes) is printed too: on a shared machine the wall time
# mostly measures the other load, the CPU time much less so.
# The tree and all outputs live in BENCH_TMP (default /dev/shm, a tmpfs, when it exists), so
# that a throttled disk does not hide the CPU cost; blob store fsyncs are then nearly free.
#
# Usage: bench/layer_write.sh [TREE]
#   no TREE: a synthetic tree (seeded, the same bytes on every run) for each size in SIZES
#   env: BUILD (build dir with libenvbuild_oci.a, default build), SIZES (MiB, default
#        "64 256 1024"), REPEAT (default 3; GZIP_REPEAT for gzip, which is slow), CODECS
#        (default "gzip zstd"), BENCH_TMP
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SIZES=${SIZES:-64 256 1024}
REPEAT=${REPEAT:-3}
GZIP_REPEAT=${GZIP_REPEAT:-$REPEAT}
CODECS=${CODECS:-gzip zstd}
if [ -z "${BENCH_TMP:-}" ]; then
  BENCH_TMP=/tmp
  [ -d /dev/shm ] && [ -w /dev/shm ] && BENCH_TMP=/dev/shm
fi
WORK=$(mktemp -d "$BENCH_TMP/layer-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

BENCH=$WORK/layer_write_bench
g++ -std=c++20 -O2 -I"$ROOT" "$ROOT/bench/layer_write_bench.cpp" \
  "$BUILD/libenvbuild_oci.a" "$BUILD/libenvbuild_common.a" \
  -larchive -lzstd -lz -lcrypto -lssl -lcurl -lpthread -o "$BENCH"

make_tree() {  # dir, MiB: mixed content, compressible text (the bulk of a conda env) + random
  python3 - "$1" "$2" <<'PY'
import os, random, sys
root, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
letters = b"abcdefghijklmnopqrstuvwxyz_"
words = [bytes(rnd.choice(letters) for _ in range(rnd.randint(3, 12))) for _ in range(5000)]
lines = [b" ".join(rnd.choices(words, k=16)) + b"\n" for _ in range(200000)]
total, i = 0, 0
while total < mb << 20:
    d = os.path.join(root, "pkg%03d" % (i % 97), "lib", "sub%d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    size = rnd.choice([2000, 20000, 200000, 2000000])
    if i % 5 == 0:
        data = rnd.randbytes(size)
    else:
        data = b"".join(rnd.choices(lines, k=size // 100 + 1))[:size]
    with open(os.path.join(d, "f%05d.py" % i), "wb") as f:
        f.write(data)
    total += size; i += 1
PY
}

TAR_OPTS="--sort=name --owner=0 --group=0 --numeric-owner --mtime=@1 --format=posix"
TAR_OPTS="$TAR_OPTS --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"
timed() {  # command -> "seconds maxrss_kb cpu_seconds"
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" sh -c "$1" >/dev/null
  read -r t rss u s <"$WORK/time"
  echo "$t $rss $(python3 -c "print($u + $s)")"
}
median() { python3 -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

bench_tree() {  # tree, label
  tree=$1 label=$2
  tar $TAR_OPTS -cf - -C "$tree" . | cat >/dev/null  # warm the page cache for both sides
  for c in $CODECS; do
    lvl=6; [ "$c" = zstd ] && lvl=3
    if [ "$c" = gzip ]; then ref_cmd="gzip -n -$lvl"; else ref_cmd="zstd -q -$lvl -T1"; fi
    ours_t="" ref_t="" ours_rss="" ref_rss="" ours_cpu="" ref_cpu=""
    reps=$REPEAT; [ "$c" = gzip ] && reps=$GZIP_REPEAT
    n=0
    while [ $n -lt "$reps" ]; do
      set -- $(timed "$BENCH $tree $WORK/store $c $lvl")
      ours_t="$ours_t $1"; ours_rss="$ours_rss $2"; ours_cpu="$ours_cpu $3"
      rm -rf "$WORK/store"
      set -- $(timed "tar $TAR_OPTS -cf - -C $tree . | $ref_cmd > $WORK/ref.out")
      ref_t="$ref_t $1"; ref_rss="$ref_rss $2"; ref_cpu="$ref_cpu $3"
      rm -f "$WORK/ref.out"
      n=$((n + 1))
    done
    ot=$(median $ours_t); rt=$(median $ref_t)
    orss=$(median $ours_rss); rrss=$(median $ref_rss)
    oc=$(median $ours_cpu); rc=$(median $ref_cpu)
    python3 -c 'import sys
label, c, lvl, ot, rt, orss, rrss, oc, rc, ours, ref = sys.argv[1:]
ot, rt, oc, rc = float(ot), float(rt), float(oc), float(rc)
print(f"{label:>8} {c:4} -{lvl}: envbuild {ot:6.2f}s cpu {oc:6.2f}s peak RSS {float(orss)/1024:5.1f} MiB"
      f" | tar|{c} {rt:6.2f}s cpu {rc:6.2f}s RSS {float(rrss)/1024:5.1f} MiB"
      f" | speed ratio {rt/ot:.2f}x (target >= 0.9), cpu ratio {rc/oc:.2f}x"
      f" | runs (s): envbuild{ours} / pipeline{ref}")' \
      "$label" "$c" "$lvl" "$ot" "$rt" "$orss" "$rrss" "$oc" "$rc" "$ours_t" "$ref_t"
  done
}

echo "median of $REPEAT runs (gzip: $GZIP_REPEAT) in $WORK; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $# -gt 0 ]; then
  bench_tree "$1" "$(du -sm "$1" | cut -f1)MiB"
else
  for mb in $SIZES; do
    make_tree "$WORK/tree" "$mb"
    bench_tree "$WORK/tree" "${mb}MiB"
    rm -rf "$WORK/tree"
  done
fi
