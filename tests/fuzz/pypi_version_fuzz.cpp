// Fuzzes PEP 440 version and specifier parsing: no crash, bounded work, and the round trips
// hold (`Version::parse(v.to_string()) == v` with the same normal form; a specifier set's normal
// form parses to the same set and agrees with it on a few versions).

#include <cstddef>
#include <cstdint>

#include "conda/pypi/specifier.hpp"
#include "conda/pypi/version.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::conda::pypi::SpecifierSet;
using envbuild::conda::pypi::Version;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  if (auto v = Version::parse(text)) {
    auto again = Version::parse(v->to_string());
    if (!again || !(*again == *v)) fail("Version round trip: " + v->to_string());
    if (again->to_string() != v->to_string()) fail("Version normal form moved: " + v->to_string());
    if (v->public_version() > *v) fail("public version above the version: " + v->to_string());
  }
  if (auto s = SpecifierSet::parse(text)) {
    auto printed = s->to_string();
    auto again = SpecifierSet::parse(printed);
    if (!again) fail("SpecifierSet normal form does not parse: " + printed);
    if (again->to_string() != printed) fail("SpecifierSet normal form moved: " + printed);
    for (const char* probe : {"0", "1.0", "1.0a1", "1.0.post1", "2!1.0+local.1", "3.11.9"}) {
      auto v = Version::parse(probe);
      if (s->contains(*v) != again->contains(*v)) fail("SpecifierSet round trip differs: " + printed);
    }
  }
  return 0;
}
