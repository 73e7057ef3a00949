// Fuzzes CEP 16 shard and shard index reading (builder/solve/shards): msgpack transcoded to
// JSON text record by record (depth-bounded SAX, no DOM), the record checks and conversions
// (sha256/md5 bytes to hex, one package name, the dependency names that drive the traversal),
// and the same bytes read as a shard index (names and 32-byte hashes). Seeds: decompressed
// shards of the conda-forge subset (tests/testing/make_shards.py), a deep array and a huge
// declared count.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "builder/solve/shards.hpp"
#include "common/json.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(envbuild::fuzz::as_text(data, size));
  // The same bytes as a shard index: every name kept has a 64-digit hex hash.
  if (auto index = envbuild::builder::parse_shard_index_msgpack(raw, "fuzz"))
    for (const auto& [name, hash] : index->shard_of)
      if (hash.size() != 64) std::abort();
  for (std::string_view name : {"python", "a"}) {
    if (auto shard = envbuild::builder::parse_shard_msgpack(raw, name, "fuzz")) {
      // Every record is JSON that the depth-bounded parser reads back (invalid UTF-8 aside,
      // which passes through for libsolv).
      for (const auto* records : {&shard->packages, &shard->packages_conda})
        for (const auto& [fn, record] : *records)
          if (auto back = envbuild::common::parse_json(record, "fuzz"); !back) {
            if (back.error().to_string().find("invalid") == std::string::npos) std::abort();
          }
    }
  }
  return 0;
}
