// Fuzzes PEP 508 markers and requirements (both read from untrusted wheel metadata): no crash
// or deep recursion, and the normal forms round-trip and evaluate alike.

#include <cstddef>
#include <cstdint>

#include "conda/pypi/marker.hpp"
#include "conda/pypi/requirement.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::conda::pypi::Marker;
using envbuild::conda::pypi::MarkerEnvironment;
using envbuild::conda::pypi::Requirement;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  MarkerEnvironment env;
  env.python_version = "3.11";
  env.python_full_version = env.implementation_version = "3.11.9";
  if (auto m = Marker::parse(text)) {
    auto again = Marker::parse(m->to_string());
    if (!again) fail("Marker normal form does not parse: " + m->to_string());
    if (again->to_string() != m->to_string()) fail("Marker normal form moved: " + m->to_string());
    auto a = m->evaluate(env, "x");
    auto b = again->evaluate(env, "x");
    if (a.has_value() != b.has_value() || (a && *a != *b))
      fail("Marker round trip evaluates differently: " + m->to_string());
  }
  if (auto r = Requirement::parse(text)) {
    auto again = Requirement::parse(r->to_string());
    if (!again) fail("Requirement normal form does not parse: " + r->to_string());
    if (again->to_string() != r->to_string())
      fail("Requirement normal form moved: " + r->to_string());
  }
  return 0;
}
