#!/usr/bin/env bash
# Warm-start overhead of `envrun IMAGE -- true` against plain `true` (target: <= 5 ms median).
# The `envrun` launcher runs warm starts alone (envrun-full is only exec'd on a miss); the cold
# start (unpack of a 1 GB+ image) is bench/envrun_cold.sh.
#
#   bench/envrun.sh [ENVRUN] [IMAGE]
#
# ENVRUN defaults to build-envrun/envrun (then build/envrun); IMAGE defaults to a small OCI
# layout built here with tar/gzip/sha256sum (a /opt/conda prefix with a script, conda-meta and an
# activate-free config), so the number is envrun's own cost, not an activate.d script's.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
envrun=${1:-}
if [[ -z $envrun ]]; then
  for c in "$here/build-envrun/envrun" "$here/build/envrun"; do [[ -x $c ]] && envrun=$c && break; done
fi
[[ -x $envrun ]] || { echo "envrun binary not found (build it first)" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 2; }

work=$(mktemp -d /tmp/envrun-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
image=${2:-}
if [[ -z $image ]]; then
  root=$work/rootfs
  mkdir -p "$root/opt/conda/bin" "$root/opt/conda/conda-meta" "$work/img/blobs/sha256"
  printf '#!/bin/sh\necho hello from $CONDA_PREFIX\n' >"$root/opt/conda/bin/hello"
  chmod 755 "$root/opt/conda/bin/hello"
  : >"$root/opt/conda/conda-meta/history"
  tar --sort=name --owner=0 --group=0 --mtime=@0 -C "$root" -cf "$work/layer.tar" opt
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  gzip -n -c "$work/layer.tar" >"$work/layer.tgz"
  layer=$(sha256sum "$work/layer.tgz" | cut -d' ' -f1)
  cp "$work/layer.tgz" "$work/img/blobs/sha256/$layer"
  arch=$(uname -m); [[ $arch == x86_64 ]] && arch=amd64; [[ $arch == aarch64 ]] && arch=arm64
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/opt/conda/bin:/usr/bin:/bin","CONDA_PREFIX=/opt/conda"],"Labels":{"org.envbuild.prefix":"/opt/conda"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diff_id" >"$work/config.json"
  config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
  cp "$work/config.json" "$work/img/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$config" "$(stat -c %s "$work/config.json")" "$layer" "$(stat -c %s "$work/layer.tgz")" >"$work/manifest.json"
  manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
  cp "$work/manifest.json" "$work/img/blobs/sha256/$manifest"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/img/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
    "$manifest" "$(stat -c %s "$work/manifest.json")" >"$work/img/index.json"
  image=oci:$work/img:bench
fi

export ENVRUN_CACHE=$work/c
"$envrun" "$image" -- true  # cold: unpack once
"$envrun" "$image" -- hello
# The floor of any launcher that execs the command: a C program doing nothing but execvp (the
# second execve and process start-up are most of envrun's overhead on slow-exec machines, VMs in
# particular), so the report can say how much above that floor envrun itself costs.
floor=()
if command -v cc >/dev/null; then
  printf '#include <unistd.h>\nint main(int c, char** v) { (void)c; execvp(v[1], v + 1); return 127; }\n' >"$work/floor.c"
  cc -O2 -o "$work/exec-floor" "$work/floor.c" && floor=("$work/exec-floor true")
fi
echo "envrun: $envrun  image: $image  cpu: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --warmup 20 --runs "${RUNS:-300}" --export-markdown "$work/result.md" \
  --export-json "$work/result.json" "true" "$envrun $image -- true" "${floor[@]}"
cat "$work/result.md"
# Wall medians; CPU is hyperfine's mean user+system per run (it keeps no per-run CPU times).
jq -r '.results | "median wall: true \(.[0].median * 1000 * 100 | round / 100) ms, envrun \(.[1].median * 1000 * 100 | round / 100) ms: warm overhead \((.[1].median - .[0].median) * 1000 * 100 | round / 100) ms (target <= 5 ms)",
  "mean cpu (user+sys): true \((.[0].user + .[0].system) * 1000 * 100 | round / 100) ms, envrun \((.[1].user + .[1].system) * 1000 * 100 | round / 100) ms",
  if length > 2 then "exec floor (execvp wrapper): median wall \(.[2].median * 1000 * 100 | round / 100) ms, overhead \((.[2].median - .[0].median) * 1000 * 100 | round / 100) ms, cpu \((.[2].user + .[2].system) * 1000 * 100 | round / 100) ms; envrun above the floor: \((.[1].median - .[2].median) * 1000 * 100 | round / 100) ms wall" else empty end' \
  "$work/result.json"
