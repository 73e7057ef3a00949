// Fuzzes CEP 16 shard reading (builder/solve/shards): msgpack into the depth-bounded JSON model,
// then the record checks and conversions (sha256/md5 bytes to hex, one package name, the
// dependency names that drive the traversal). Seeds: decompressed shards of the conda-forge
// subset (tests/testing/make_shards.py), a deep array and a huge declared count.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "builder/solve/shards.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(envbuild::fuzz::as_text(data, size));
  for (std::string_view name : {"python", "a"}) {
    if (auto shard = envbuild::builder::parse_shard_msgpack(raw, name, "fuzz")) {
      (void)shard->packages.dump();
      (void)shard->packages_conda.dump();
    }
  }
  return 0;
}
