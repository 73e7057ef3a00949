// Fuzzes OCI/Docker manifest, index and image-config parsing; whatever parses must print to
// canonical JSON that parses back to the same value.

#include <cstddef>
#include <cstdint>

#include "oci/manifest.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::oci;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  if (auto m = parse_manifest(text)) {
    auto again = parse_manifest(to_canonical_json(*m));
    if (!again || !(*again == *m)) fail("manifest round trip");
  }
  if (auto i = parse_index(text)) {
    auto again = parse_index(to_canonical_json(*i));
    if (!again || !(*again == *i)) fail("index round trip");
  }
  if (auto c = parse_image_config(text)) {
    auto again = parse_image_config(to_canonical_json(*c));
    if (!again) fail("image config canonical form does not parse");
    (void)c->platform();
  }
  return 0;
}
