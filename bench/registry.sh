#!/usr/bin/env bash
# Push and pull of a multi-layer image to a local docker-registry: envbuild vs `skopeo copy`,
# in the same run on the same machine, plus the no-op second push.
#   bench/registry.sh [BUILD_DIR] [LAYERS] [MIB_PER_LAYER]
# Each tool gets its own fresh registry (skopeo's blob-info cache would otherwise mount blobs
# that envbuild pushed). Prints seconds per step and envbuild/skopeo ratios.
set -euo pipefail
BUILD=${1:-build-registry}
LAYERS=${2:-6}
MIB=${3:-8}
ENVBUILD=$(cd "$(dirname "$0")/.." && pwd)/$BUILD/envbuild
SCRATCH=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$SCRATCH"; }
trap cleanup EXIT

python3 - "$SCRATCH/img" "$LAYERS" "$MIB" <<'PY'
import hashlib, io, json, os, random, sys, tarfile
out, layers, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{out}/blobs/sha256")
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
descs, diff_ids = [], []
for i in range(layers):
    rnd = random.Random(i)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        payload = rnd.randbytes(mib << 20)
        info = tarfile.TarInfo(f"data/layer{i}.bin"); info.size = len(payload); info.mtime = 0
        t.addfile(info, io.BytesIO(payload))
    raw = buf.getvalue()
    d, n = put(raw)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
    diff_ids.append(d)
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
PY

start_registry() {  # NAME -> prints host:port
  local dir=$SCRATCH/$1 port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  mkdir -p "$dir/data"
  printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$dir/data" "$port" > "$dir/config.yml"
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.05; done
  echo "127.0.0.1:$port"
}
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

A=$(start_registry envbuild-reg)
B=$(start_registry skopeo-reg)
echo "image: $LAYERS layers x $MIB MiB (uncompressed tar), registries $A (envbuild) $B (skopeo)"
e_push=$(t "$ENVBUILD" push -q --tls-verify=false "oci:$SCRATCH/img:v1" "docker://$A/bench:1")
s_push=$(t skopeo copy -q --dest-tls-verify=false "oci:$SCRATCH/img:v1" "docker://$B/bench:1")
e_noop=$(t "$ENVBUILD" push -q --tls-verify=false "oci:$SCRATCH/img:v1" "docker://$A/bench:1")
s_noop=$(t skopeo copy -q --dest-tls-verify=false "oci:$SCRATCH/img:v1" "docker://$B/bench:1")
e_pull=$(t "$ENVBUILD" pull -q --tls-verify=false "docker://$A/bench:1" "oci:$SCRATCH/e-out:1")
s_pull=$(t skopeo copy -q --src-tls-verify=false "docker://$B/bench:1" "oci:$SCRATCH/s-out:1")
printf '%-14s %10s %10s %8s\n' step envbuild skopeo ratio
printf '%-14s %10.3f %10.3f %8s\n' push "$e_push" "$s_push" "$(ratio "$e_push" "$s_push")"
printf '%-14s %10.3f %10.3f %8s\n' "no-op push" "$e_noop" "$s_noop" "$(ratio "$e_noop" "$s_noop")"
printf '%-14s %10.3f %10.3f %8s\n' pull "$e_pull" "$s_pull" "$(ratio "$e_pull" "$s_pull")"
