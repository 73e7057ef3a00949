#!/usr/bin/env python3
"""Writes an OCI image layout whose layers and config say whatever a test wants: symlinks out of
the tree, FIFOs where files should be, relocation records that point elsewhere, odd labels.

Reads one JSON object on stdin:
  {"layout": DIR, "labels": {...}, "env": ["K=V", ...],
   "layers": [[ENTRY, ...], ...],
   "replace": {"index.json": "fifo" | "devzero" | "symlink:TARGET"},
   "blob_fifo": false}
ENTRY: {"path": P, "type": "dir" | "file" | "symlink" | "fifo" | "hardlink",
        "content": TEXT (file), "zeros": N (file: N zero bytes instead), "target": T (symlink,
        hardlink), "mode": 0o644}
Prints the manifest digest.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_bytes(entries):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["path"])
            info.mtime = 0
            kind = e.get("type", "file")
            data = None
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = e.get("mode", 0o755)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e["target"]
                info.mode = 0o777
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e["target"]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                info.mode = 0o644
            elif "zeros" in e:
                data = bytes(e["zeros"])
                info.size = len(data)
                info.mode = e.get("mode", 0o644)
            else:
                data = e.get("content", "").encode("utf-8", "surrogateescape")
                info.size = len(data)
                info.mode = e.get("mode", 0o644)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return raw.getvalue(), out.getvalue()


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def replace_with(path, how):
    os.unlink(path)
    if how == "fifo":
        os.mkfifo(path)
    elif how == "devzero":
        os.symlink("/dev/zero", path)
    elif how.startswith("symlink:"):
        os.symlink(how[len("symlink:"):], path)
    else:
        raise SystemExit("unknown replacement " + how)


def main():
    spec = json.load(sys.stdin)
    layout = spec["layout"]
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    diff_ids, layers = [], []
    for entries in spec["layers"]:
        plain, gz = layer_bytes(entries)
        digest, size = put_blob(layout, gz)
        diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": digest, "size": size})
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    config = {"architecture": arch, "os": "linux",
              "config": {"Env": spec.get("env", []), "Labels": spec.get("labels", {})},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_digest, config_size = put_blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config_digest, "size": config_size},
                "layers": layers}
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest, manifest_size = put_blob(layout, manifest_bytes)
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    for name, how in spec.get("replace", {}).items():
        replace_with(os.path.join(layout, name), how)
    if spec.get("blob_fifo"):
        replace_with(os.path.join(layout, "blobs", "sha256", layers[-1]["digest"][7:]), "fifo")
    print(manifest_digest)


if __name__ == "__main__":
    main()
