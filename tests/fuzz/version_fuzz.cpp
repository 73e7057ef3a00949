// Fuzzes conda version and version-spec parsing: no crash, and the documented round trips
// (`Version::parse(v.to_string()) == v`, `VersionSpec::parse(s.to_string()) == s`) hold.

#include <cstddef>
#include <cstdint>

#include "conda/version.hpp"
#include "conda/version_spec.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::conda::Version;
using envbuild::conda::VersionSpec;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  if (auto v = Version::parse(text)) {
    auto again = Version::parse(v->to_string());
    if (!again || !(*again == *v)) fail("Version round trip: " + v->to_string());
    if (again->hash() != v->hash()) fail("Version hash differs for equal versions");
    (void)v->starts_with(*v);
    (void)v->compatible_with(*v);
  }
  if (auto s = VersionSpec::parse(text)) {
    auto printed = s->to_string();
    auto again = VersionSpec::parse(printed);
    if (!again) fail("VersionSpec canonical form does not parse: " + printed);
    if (!(*again == *s)) fail("VersionSpec round trip: " + printed);
    if (auto v = Version::parse("1.2.3")) (void)s->matches(*v);
  }
  return 0;
}
