// Fuzzes match-spec parsing: no crash, `MatchSpec::parse(s.to_string()) == s`, and the printers
// and matcher work on whatever parses.

#include <cstddef>
#include <cstdint>

#include "conda/match_spec.hpp"
#include "conda/package_record.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::conda::MatchSpec;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto spec = MatchSpec::parse(envbuild::fuzz::as_text(data, size));
  if (!spec) return 0;
  auto printed = spec->to_string();
  auto again = MatchSpec::parse(printed);
  if (!again) fail("MatchSpec canonical form does not parse: " + printed);
  if (!(*again == *spec)) fail("MatchSpec round trip: " + printed);
  (void)spec->to_libsolv_string();
  (void)spec->has_extra_constraints();
  envbuild::conda::PackageRecord record;
  record.name = spec->name();
  (void)spec->matches(record);
  return 0;
}
