#!/usr/bin/env python3
"""Writes the CEP 16 sharded twin of a conda channel directory, beside its repodata.json.

    make_shards.py CHANNEL_DIR [--base-url ./] [--shards-base-url ./shards/]

For every CHANNEL_DIR/<subdir>/repodata.json: one shard per package name,
<subdir>/shards/<sha256 of the file>.msgpack.zst = {packages, packages.conda, removed} (records
as in repodata.json, sha256 and md5 as bytes, as CEP 16 has them), and the index
<subdir>/repodata_shards.msgpack.zst = {version: 1, info: {base_url, shards_base_url, subdir},
shards: {name: sha256 bytes}}. Deterministic: the same repodata gives the same bytes. msgpack is
encoded here (no pip packages on the test machines); zstd by the zstd command, one process for
all the shards of a subdir. Prints the number of shards written per subdir.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile


def pack(value, out):
    """Appends the msgpack encoding of value (dict, list, str, bytes, int, float, bool, None)."""
    if value is None:
        out.append(0xC0)
    elif value is True:
        out.append(0xC3)
    elif value is False:
        out.append(0xC2)
    elif isinstance(value, int):
        if 0 <= value < 128:
            out.append(value)
        elif -32 <= value < 0:
            out.append(value & 0xFF)
        elif value >= 0:
            out += b"\xcf" + struct.pack(">Q", value)
        else:
            out += b"\xd3" + struct.pack(">q", value)
    elif isinstance(value, float):
        out += b"\xcb" + struct.pack(">d", value)
    elif isinstance(value, str):
        data = value.encode()
        n = len(data)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 256:
            out += bytes([0xD9, n])
        elif n < 65536:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += data
    elif isinstance(value, (bytes, bytearray)):
        n = len(value)
        if n < 256:
            out += bytes([0xC4, n])
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += value
    elif isinstance(value, (list, tuple)):
        n = len(value)
        if n < 16:
            out.append(0x90 | n)
        else:
            out += b"\xdd" + struct.pack(">I", n)
        for item in value:
            pack(item, out)
    elif isinstance(value, dict):
        n = len(value)
        if n < 16:
            out.append(0x80 | n)
        else:
            out += b"\xdf" + struct.pack(">I", n)
        for k in sorted(value):
            pack(k, out)
            pack(value[k], out)
    else:
        raise TypeError(type(value))


def packb(value):
    out = bytearray()
    pack(value, out)
    return bytes(out)


def shard_record(record):
    r = dict(record)
    for key in ("sha256", "md5"):
        if isinstance(r.get(key), str):
            r[key] = bytes.fromhex(r[key])
    return r


def zstd_all(paths):
    """Compresses each path to path + '.zst' (kept beside it)."""
    for i in range(0, len(paths), 500):
        subprocess.run(["zstd", "-q", "-f", "-3", "--no-progress"] + paths[i:i + 500], check=True)


def shard_subdir(subdir_dir, base_url, shards_base_url):
    repodata = json.load(open(os.path.join(subdir_dir, "repodata.json")))
    by_name = {}
    for key in ("packages", "packages.conda"):
        for fn, record in repodata.get(key, {}).items():
            shard = by_name.setdefault(record["name"], {"packages": {}, "packages.conda": {},
                                                         "removed": []})
            shard[key][fn] = shard_record(record)
    shard_dir = os.path.join(subdir_dir, "shards")
    os.makedirs(shard_dir, exist_ok=True)
    hashes = {}
    with tempfile.TemporaryDirectory(dir=subdir_dir) as tmp:
        raw = {}
        for i, name in enumerate(sorted(by_name)):
            path = os.path.join(tmp, "%d.msgpack" % i)
            with open(path, "wb") as f:
                f.write(packb(by_name[name]))
            raw[name] = path
        zstd_all(list(raw.values()))
        for name, path in raw.items():
            data = open(path + ".zst", "rb").read()
            digest = hashlib.sha256(data).digest()
            with open(os.path.join(shard_dir, digest.hex() + ".msgpack.zst"), "wb") as f:
                f.write(data)
            hashes[name] = digest
    subdir = os.path.basename(os.path.normpath(subdir_dir))
    index = {"version": 1,
             "info": {"base_url": base_url, "shards_base_url": shards_base_url, "subdir": subdir},
             "shards": hashes}
    index_raw = os.path.join(subdir_dir, "repodata_shards.msgpack")
    with open(index_raw, "wb") as f:
        f.write(packb(index))
    zstd_all([index_raw])
    os.remove(index_raw)
    return len(hashes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("channel")
    p.add_argument("--base-url", default="./")
    p.add_argument("--shards-base-url", default="./shards/")
    a = p.parse_args()
    for subdir in sorted(os.listdir(a.channel)):
        d = os.path.join(a.channel, subdir)
        if os.path.isfile(os.path.join(d, "repodata.json")):
            n = shard_subdir(d, a.base_url, a.shards_base_url)
            print("%s: %d shards" % (subdir, n))


if __name__ == "__main__":
    sys.exit(main())
