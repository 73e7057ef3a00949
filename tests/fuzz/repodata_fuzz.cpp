// Fuzzes repodata.json loading on both paths that read it: libsolv's conda repodata reader
// (builder's Pool, what solve/build use) and conda/'s record parser (what index and the lock
// files use).

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "builder/solve/solv/pool.hpp"
#include "conda/package_record.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(envbuild::fuzz::as_text(data, size));
  {
    envbuild::builder::solv::Pool pool;
    if (pool.add_repodata_json("fuzz", text)) (void)pool.solve({"a"});
  }
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return 0;
  for (const char* key : {"packages", "packages.conda"}) {
    auto it = json.find(key);
    if (it == json.end() || !it->is_object()) continue;
    for (const auto& [fn, record] : it->items()) {
      if (auto parsed = envbuild::conda::package_record_from_json(record)) {
        (void)envbuild::conda::to_json_string(*parsed);
      }
    }
  }
  (void)envbuild::conda::parse_package_record(text, "index.json");
  (void)envbuild::conda::parse_prefix_record(text, "conda-meta/x.json");
  return 0;
}
