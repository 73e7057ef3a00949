#!/bin/sh
# Layer write throughput: oci::write_layer vs `tar --sort=name | gzip -n` and `| zstd` on the
# same tree, same level, in one run; prints the speed ratio (>= 0.9 is the target) and peak RSS.
# Usage: bench/layer_write.sh [TREE] [SIZE_MB]   (no TREE: a synthetic tree of SIZE_MB, default 256)
# Needs build-oci (cmake --build build-oci --target envbuild_oci); compiles the bench itself.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-oci}
WORK=$(mktemp -d /tmp/layer-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TREE=${1:-}
SIZE_MB=${2:-256}

BENCH=$WORK/layer_write_bench
g++ -std=c++20 -O2 -I"$ROOT" "$ROOT/bench/layer_write_bench.cpp" \
  "$BUILD/libenvbuild_oci.a" "$BUILD/libenvbuild_common.a" \
  -larchive -lzstd -lz -lcrypto -lssl -lcurl -lpthread -o "$BENCH"

if [ -z "$TREE" ]; then
  # Mixed content: compressible text (the bulk of a conda env) plus incompressible blobs.
  TREE=$WORK/tree
  python3 - "$TREE" "$SIZE_MB" <<'PY'
import os, random, sys
root, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in range(rnd.randint(3, 12))) for _ in range(5000)]
total, i = 0, 0
while total < mb << 20:
    d = os.path.join(root, "pkg%03d" % (i % 97), "lib", "sub%d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    size = rnd.choice([2000, 20000, 200000, 2000000])
    if i % 5 == 0:
        data = os.urandom(size)
    else:
        out = bytearray()
        while len(out) < size:
            out += b" ".join(rnd.choice(words) for _ in range(16)) + b"\n"
        data = bytes(out[:size])
    with open(os.path.join(d, "f%05d.py" % i), "wb") as f:
        f.write(data)
    total += size; i += 1
PY
fi
echo "tree: $TREE ($(du -sh "$TREE" | cut -f1))"

TAR="tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1 --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf - -C $TREE ."
run() {  # label, command -> prints "label seconds maxrss_kb"
  /usr/bin/time -f "%e %M" -o "$WORK/time" sh -c "$2" >/dev/null
  echo "$1 $(cat "$WORK/time")"
}
for c in gzip zstd; do
  lvl=6; [ $c = zstd ] && lvl=3
  sync
  ours=$(run ours "$BENCH $TREE $WORK/store-$c $c $lvl")
  if [ $c = gzip ]; then ref=$(run ref "$TAR | gzip -n -$lvl > $WORK/ref.gz")
  else ref=$(run ref "$TAR | zstd -q -$lvl -T1 > $WORK/ref.zst"); fi
  set -- $ours; ot=$2; orss=$3
  set -- $ref; rt=$2; rrss=$3
  ratio=$(python3 -c "print(f'{$rt/$ot:.2f}' if $ot > 0 else 'inf')")
  echo "$c level $lvl: envbuild ${ot}s (peak RSS ${orss} KB) | tar+$c ${rt}s | speed ratio ${ratio}x (target >= 0.9)"
  rm -rf "$WORK/store-$c" "$WORK"/ref.*
done
