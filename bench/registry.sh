#!/usr/bin/env bash
# Push and pull of a large multi-layer image to a local docker-registry: envbuild vs `skopeo
# copy`, in the same run on the same machine, plus the no-op second push.
#   bench/registry.sh [BUILD_DIR] [LAYERS] [MIB_PER_LAYER] [RUNS]
# Defaults: 8 layers x 160 MiB of seeded synthetic data of mixed compressibility (random,
# 4-bit text, half zero pages, random), gzip-compressed (level 1) into ~1.1 GB of blobs, so that
# skopeo passes the layers through as envbuild does (it would gzip uncompressed ones).
# Every run starts a fresh registry per tool (skopeo's blob-info cache would otherwise mount
# blobs that an earlier push left in the same registry) and alternates which tool goes first.
# Prints each run, then medians and envbuild/skopeo ratios.
set -euo pipefail
BUILD=${1:-build}
LAYERS=${2:-8}
MIB=${3:-160}
RUNS=${4:-3}
ENVBUILD=$(cd "$(dirname "$0")/.." && pwd)/$BUILD/envbuild
SCRATCH=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$SCRATCH"; }
trap cleanup EXIT

python3 - "$SCRATCH/img" "$LAYERS" "$MIB" <<'PY'
import hashlib, io, json, os, random, sys, tarfile, zlib
out, layers, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{out}/blobs/sha256")

def payload(i, n):
    rnd = random.Random(1000 + i)
    kind = i % 4
    if kind == 1:  # 4 bits of entropy per byte: hex text
        return rnd.randbytes(n // 2).hex().encode()[:n]
    if kind == 2:  # 4 KiB random pages alternating with zero pages
        page = 4096
        return b"".join(rnd.randbytes(page) + bytes(page) for _ in range(n // (2 * page)))[:n]
    return rnd.randbytes(n)  # incompressible

class Sink:  # hashes the tar (diff_id) and gzips it into the blob file, streaming
    def __init__(self, path):
        self.f = open(path, "wb")
        self.z = zlib.compressobj(1, zlib.DEFLATED, 31)
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
    def _out(self, data):
        if data:
            self.blob.update(data)
            self.size += len(data)
            self.f.write(data)
    def write(self, data):
        self.diff.update(data)
        self._out(self.z.compress(data))
        return len(data)
    def close(self):
        self._out(self.z.flush())
        self.f.close()

descs, diff_ids, total = [], [], 0
for i in range(layers):
    tmp = f"{out}/blobs/sha256/tmp"
    sink = Sink(tmp)
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as t:
        data = payload(i, mib << 20)
        info = tarfile.TarInfo(f"data/layer{i}.bin"); info.size = len(data); info.mtime = 0
        t.addfile(info, io.BytesIO(data))
    sink.close()
    d = sink.blob.hexdigest()
    os.rename(tmp, f"{out}/blobs/sha256/{d}")
    total += sink.size
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                  "digest": "sha256:" + d, "size": sink.size})
    diff_ids.append("sha256:" + sink.diff.hexdigest())

def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True,
                    separators=(",", ":")).encode()
cd, cn = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": cd, "size": cn}, "layers": descs},
                      sort_keys=True, separators=(",", ":")).encode()
md, mn = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print(f"image: {layers} layers x {mib} MiB, {total / 1e9:.2f} GB of gzip blobs "
      f"({', '.join(str(round(x['size'] / (mib << 20), 2)) for x in descs)} of the tar size)")
PY

start_registry() {  # NAME -> prints host:port
  local dir=$SCRATCH/$1 port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  mkdir -p "$dir/data"
  printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$dir/data" "$port" > "$dir/config.yml"
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.05; done
  echo "127.0.0.1:$port"
}
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }

e_steps() {  # REGISTRY RUN
  E_PUSH+=("$(t "$ENVBUILD" push -q --tls-verify=false "oci:$SCRATCH/img:v1" "docker://$1/bench:1")")
  E_NOOP+=("$(t "$ENVBUILD" push -q --tls-verify=false "oci:$SCRATCH/img:v1" "docker://$1/bench:1")")
  E_PULL+=("$(t "$ENVBUILD" pull -q --tls-verify=false "docker://$1/bench:1" "oci:$SCRATCH/e-out-$2:1")")
  rm -rf "$SCRATCH/e-out-$2"
}
s_steps() {  # REGISTRY RUN
  S_PUSH+=("$(t skopeo copy -q --dest-tls-verify=false "oci:$SCRATCH/img:v1" "docker://$1/bench:1")")
  S_NOOP+=("$(t skopeo copy -q --dest-tls-verify=false "oci:$SCRATCH/img:v1" "docker://$1/bench:1")")
  S_PULL+=("$(t skopeo copy -q --src-tls-verify=false "docker://$1/bench:1" "oci:$SCRATCH/s-out-$2:1")")
  rm -rf "$SCRATCH/s-out-$2"
}

E_PUSH=(); E_NOOP=(); E_PULL=(); S_PUSH=(); S_NOOP=(); S_PULL=()
printf '%-4s %10s %10s %10s %10s %10s %10s\n' run e-push s-push e-noop s-noop e-pull s-pull
for run in $(seq "$RUNS"); do
  A=$(start_registry "envbuild-reg-$run")
  B=$(start_registry "skopeo-reg-$run")
  if (( run % 2 )); then e_steps "$A" "$run"; s_steps "$B" "$run"; else s_steps "$B" "$run"; e_steps "$A" "$run"; fi
  i=$((run - 1))
  printf '%-4s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n' "$run" "${E_PUSH[$i]}" "${S_PUSH[$i]}" \
    "${E_NOOP[$i]}" "${S_NOOP[$i]}" "${E_PULL[$i]}" "${S_PULL[$i]}"
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=()
  rm -rf "$SCRATCH/envbuild-reg-$run" "$SCRATCH/skopeo-reg-$run"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
row() {  # NAME ENVBUILD_TIMES... -- SKOPEO_TIMES...
  local name=$1; shift
  local e=() s=() side=e
  for x in "$@"; do if [[ $x == -- ]]; then side=s; elif [[ $side == e ]]; then e+=("$x"); else s+=("$x"); fi; done
  local me ms
  me=$(median "${e[@]}"); ms=$(median "${s[@]}")
  printf '%-12s %10.3f %10.3f %8s\n' "$name" "$me" "$ms" "$(echo "scale=2; $me / $ms" | bc)"
}
echo "medians of $RUNS runs (seconds)"
printf '%-12s %10s %10s %8s\n' step envbuild skopeo ratio
row push "${E_PUSH[@]}" -- "${S_PUSH[@]}"
row "no-op push" "${E_NOOP[@]}" -- "${S_NOOP[@]}"
row pull "${E_PULL[@]}" -- "${S_PULL[@]}"
