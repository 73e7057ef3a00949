// Fuzzes the scan of a whole repodata.json (builder/solve/repodata_scan): indexing by name, the
// dependency names of reached records and the subset written from them. A subset is made of
// members the scan delimited, so it is never larger than the input (plus its braces).
// Seeds: tests/fuzz/corpus/repodata_scan (records with escapes, odd members, nesting).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "builder/solve/repodata_scan.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(envbuild::fuzz::as_text(data, size));
  auto index = envbuild::builder::RepodataIndex::build(text, "fuzz");
  if (!index) return 0;
  envbuild::builder::NameSet names = {"a", "b", "python"};
  for (int round = 0; round < 3; ++round) {
    envbuild::builder::NameSet depends;
    for (const auto& name : names) index->add_depends_of(name, depends);
    names.insert(depends.begin(), depends.end());
  }
  const std::string subset = index->subset(names);
  // Each member and record copied once, plus `"key":{` and separators per member.
  if (subset.size() > size + 64 * (index->records() + 8)) std::abort();
  return 0;
}
