// Fuzzes the registry's WWW-Authenticate challenge parser, --creds and base64 decoding.

#include <cstddef>
#include <cstdint>

#include "oci/registry/auth.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::oci::registry;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  if (auto c = parse_challenge(text)) {
    (void)c->param("realm");
    (void)c->param("scope");
  }
  (void)parse_creds(text);
  if (auto decoded = base64_decode(text)) (void)base64_encode(*decoded);
  auto encoded = base64_encode(text);
  auto decoded = base64_decode(encoded);
  if (!decoded || *decoded != text) fail("base64 round trip");
  return 0;
}
