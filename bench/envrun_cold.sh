#!/usr/bin/env bash
# Cold start of envrun (unpack of a 1 GB+ image into an empty cache, then `true`) against
# `umoci unpack --rootless` and `tar -xzf` of the same layers, in one hyperfine run; prints the
# medians and envrun's ratios (target: cold <= 1.0x umoci unpack).
#
#   bench/envrun_cold.sh [ENVRUN]      (env: SIZE_MB=1100 total uncompressed, LAYERS=4, RUNS=3,
#                                       SEED=1, KEEP=1 keeps the work directory)
#
# The image is an OCI layout built here with tar/pigz/sha256sum from a seeded synthetic conda-like
# tree under /opt/conda: per layer a few large "binary" files (random bytes with zero runs, about
# 2:1 compressible), many small text files (1-32 KiB), 2% of them holding the prefix, with the
# relocation records envbuild writes in the top layer, so envrun's relocation pass has work too.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
envrun=${1:-}
if [[ -z $envrun ]]; then
  for c in "$here/build-envrun/envrun" "$here/build/envrun"; do [[ -x $c ]] && envrun=$c && break; done
fi
[[ -x $envrun ]] || { echo "envrun binary not found (build it first)" >&2; exit 2; }
for tool in hyperfine umoci tar pigz python3 jq sha256sum; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
size_mb=${SIZE_MB:-1100} layers=${LAYERS:-4} runs=${RUNS:-3} seed=${SEED:-1}

work=$(mktemp -d /tmp/envrun-cold.XXXXXX)
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT
echo "generating a ${size_mb} MB image in $layers layers (seed $seed) under $work ..."
python3 - "$work/layers" "$size_mb" "$layers" "$seed" <<'PY'
import json, os, random, sys
out, size_mb, nlayers, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
prefix = "/opt/conda"
placeholder = ("/tmp/build/_h_env" + "_placehold" * 30)[:255]
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
         for _ in range(4000)]
records = []
total = size_mb << 20
for layer in range(nlayers):
    root = os.path.join(out, str(layer), "opt/conda")
    budget = total // nlayers
    binary_budget, text_budget = budget * 7 // 10, budget * 3 // 10
    n = 0
    while binary_budget > 0:
        size = min(binary_budget, rng.randint(256 << 10, 8 << 20))
        path = f"lib/pkg{layer}_{n // 50}/libx{n}.so"
        os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(root, path), "wb") as f:
            left = size
            while left > 0:
                chunk = min(left, rng.randint(4 << 10, 64 << 10))
                f.write(rng.randbytes(chunk // 2) + bytes(chunk - chunk // 2))
                left -= chunk
        os.chmod(os.path.join(root, path), 0o755)
        binary_budget -= size
        n += 1
    while text_budget > 0:
        size = min(text_budget, rng.randint(1 << 10, 32 << 10))
        path = f"share/pkg{layer}_{n // 200}/f{n}.py"
        os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
        body = bytearray()
        while len(body) < size:
            body += b" ".join(rng.choices(words, k=12)) + b"\n"
        head = b"# generated\n"
        data = head + bytes(body[:size])
        if rng.random() < 0.02:
            data = head + prefix.encode() + b"/lib\n" + bytes(body[:size])
            records.append({"path": path, "file_mode": "text", "target": "linux",
                            "placeholder": placeholder, "room": len(placeholder),
                            "offsets": [len(head)]})
        with open(os.path.join(root, path), "wb") as f:
            f.write(data)
        text_budget -= len(data)
        n += 1
top = os.path.join(out, str(nlayers - 1), "opt/conda/conda-meta")
os.makedirs(top, exist_ok=True)
with open(os.path.join(top, "envbuild-relocations.json"), "w") as f:
    json.dump({"format": 1, "prefix": prefix, "files": records}, f)
open(os.path.join(top, "history"), "w").close()
PY

mkdir -p "$work/img/blobs/sha256"
diff_ids=() layer_json=()
for ((i = 0; i < layers; i++)); do
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/layers/$i" -cf "$work/layer$i.tar" opt
  diff_ids+=("\"sha256:$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)\"")
  pigz -n -6 -c "$work/layer$i.tar" >"$work/layer$i.tgz"
  rm "$work/layer$i.tar"
  d=$(sha256sum "$work/layer$i.tgz" | cut -d' ' -f1)
  mv "$work/layer$i.tgz" "$work/img/blobs/sha256/$d"
  layer_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$work/img/blobs/sha256/$d")}")
done
rm -rf "$work/layers"
join() { local IFS=,; echo "$*"; }
arch=$(uname -m); [[ $arch == x86_64 ]] && arch=amd64; [[ $arch == aarch64 ]] && arch=arm64
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/opt/conda/bin:/usr/bin:/bin","CONDA_PREFIX=/opt/conda"],"Labels":{"org.envbuild.prefix":"/opt/conda"}},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$arch" "$(join "${diff_ids[@]}")" >"$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
cp "$work/config.json" "$work/img/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
  "$config" "$(stat -c %s "$work/config.json")" "$(join "${layer_json[@]}")" >"$work/manifest.json"
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
cp "$work/manifest.json" "$work/img/blobs/sha256/$manifest"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/img/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$manifest" "$(stat -c %s "$work/manifest.json")" >"$work/img/index.json"

layer_files=$(jq -r '.layers[].digest | sub("sha256:"; "")' "$work/manifest.json" | sed "s|^|$work/img/blobs/sha256/|" | tr '\n' ' ')
echo "image: $(du -sm "$work/img" | cut -f1) MB compressed, ${size_mb} MB unpacked; envrun: $envrun"
echo "cpu: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
export ENVRUN_CACHE=$work/c
hyperfine --runs "$runs" --export-json "$work/cold.json" --export-markdown "$work/cold.md" \
  --prepare "rm -rf $work/out-tar && mkdir -p $work/out-tar" -n "tar -xzf" \
  "sh -c 'for l in $layer_files; do tar -xzf \$l -C $work/out-tar || exit 1; done'" \
  --prepare "rm -rf $work/bundle" -n "umoci unpack --rootless" \
  "umoci unpack --rootless --image $work/img:bench $work/bundle" \
  --prepare "rm -rf $work/c" -n "envrun (cold)" "$envrun oci:$work/img:bench -- true"
cat "$work/cold.md"
jq -r '.results | (map({(.command): .median}) | add) as $m
  | "medians: tar -xzf \($m["tar -xzf"]*1000|round) ms, umoci \($m["umoci unpack --rootless"]*1000|round) ms, envrun \($m["envrun (cold)"]*1000|round) ms",
    "envrun cold / umoci unpack --rootless = \($m["envrun (cold)"] / $m["umoci unpack --rootless"] * 100 | round / 100)x (target <= 1.0x)",
    "envrun cold / tar -xzf = \($m["envrun (cold)"] / $m["tar -xzf"] * 100 | round / 100)x"' "$work/cold.json"
