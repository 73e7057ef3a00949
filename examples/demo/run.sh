#!/usr/bin/env bash
# The embedded demo, end to end: environment.yml -> local channel -> layered OCI image ->
# (registry) -> envrun runs train.py from the image on this host, after checking it.
# Called by scripts/demo with envbuild and envrun on PATH; everything goes under $DEMO_OUT
# (default out/demo in the repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${DEMO_OUT:-$root/out/demo}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export ENVBUILD_CACHE=${ENVBUILD_CACHE:-$out/cache}
export ENVRUN_CACHE=${ENVRUN_CACHE:-$out/run}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

rm -rf "$out/image" "$out/demo.tar" "$out/channel"
mkdir -p "$out"
# The environment names ./channel: work on a copy of the folder next to it.
cp "$here/environment.yml" "$out/environment.yml"

step "1. Build the demo channel from source (host CPython, a C tool, a shell tool, a noarch library; two wheels)"
python3 "$here/make_channel.py" "$out/channel"

step "2. Index it (envbuild index)"
envbuild index "$out/channel"

step "3. Solve and lock (envbuild lock)"
(cd "$out" && envbuild lock -f environment.yml --explicit locks --cache-dir "$ENVBUILD_CACHE")

step "4. The layer plan (envbuild build --plan)"
(cd "$out" && envbuild build -f environment.yml -t envbuild-demo:1 --plan)

step "5. Build the image: OCI layout + docker-archive (envbuild build)"
(cd "$out" && envbuild build -f environment.yml -t envbuild-demo:1 \
  --output "oci:$out/image:1" --output "docker-archive:$out/demo.tar:envbuild-demo:1" \
  --sbom "$out/sbom.spdx.json" --label org.opencontainers.image.title=envbuild-demo)

if command -v skopeo >/dev/null; then
  step "   skopeo reads it back"
  skopeo inspect "oci:$out/image:1" | python3 -c \
    'import json,sys; d=json.load(sys.stdin); print("digest", d["Digest"]); print(len(d["Layers"]), "layers"); print("labels", json.dumps(d["Labels"], sort_keys=True))'
fi

registry_pid=
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true; }
trap cleanup EXIT
if command -v docker-registry >/dev/null; then
  step "6. Push to a local registry (docker-registry on 127.0.0.1)"
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  mkdir -p "$out/registry"
  cat >"$out/registry/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $out/registry/data}}
http: {addr: 127.0.0.1:$port}
EOF
  docker-registry serve "$out/registry/config.yml" >"$out/registry/log" 2>&1 &
  registry_pid=$!
  # Until it answers, or until it has exited (the port was taken since it was picked: say so).
  until curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
    if ! kill -0 "$registry_pid" 2>/dev/null; then
      echo "docker-registry exited: $(cat "$out/registry/log")" >&2
      exit 1
    fi
    sleep 0.1
  done
  envbuild push --tls-verify=false "oci:$out/image:1" "docker://127.0.0.1:$port/envbuild-demo:1"
  echo "pushing again (nothing to upload):"
  envbuild push --tls-verify=false "oci:$out/image:1" "docker://127.0.0.1:$port/envbuild-demo:1"
else
  step "6. (no docker-registry installed: skipping the push)"
fi

step "7. Check this host against the image's needs (envrun check)"
envrun check "oci:$out/image:1"

step "8. Run the training script from the image (envrun IMAGE -- python train.py)"
envrun "oci:$out/image:1" -- python "$here/train.py"

step "9. The other tools of the environment, relocated into envrun's cache"
envrun "oci:$out/image:1" -- demo-hello
envrun "oci:$out/image:1" -- demo-info
envrun "oci:$out/image:1" -- demo-train
envrun "oci:$out/image:1" -- demo-metrics

cat <<EOF

Done. Where everything went:
  channel        $out/channel
  lock files     $out/conda-lock.yml, $out/locks/
  OCI layout     $out/image  (tag 1; try: skopeo inspect oci:$out/image:1)
  docker-archive $out/demo.tar  (docker load -i / podman load -i)
  SBOM           $out/sbom.spdx.json
  envrun prefix  $ENVRUN_CACHE  (envrun ls)
EOF
