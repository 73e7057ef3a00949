// Fuzzes image references (skopeo's transport syntax and docker references), the distribution
// name grammar and digests: whatever parses prints back to text that parses to the same value,
// and a registry reference's host and repository obey the grammar, so no parsed name holds a
// "." or ".." component or reaches past 255 characters (issue 16, class 10).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "oci/digest.hpp"
#include "oci/reference.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::oci;
using envbuild::fuzz::fail;

namespace {

void check_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxReferenceNameLength) fail("name length");
  for (size_t start = 0;;) {
    size_t slash = name.find('/', start);
    std::string_view component = name.substr(start, slash - start);
    if (component.empty() || component == "." || component == "..") fail("name component");
    for (char c : component)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        fail("name character");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

void check_reference(const ImageReference& ref) {
  auto again = ImageReference::parse(ref.to_string());
  if (!again || !(*again == ref)) fail("reference round trip: " + ref.to_string());
  if (ref.transport != Transport::Registry) return;
  if (!is_valid_registry_host(ref.host)) fail("registry host");
  if (!is_valid_repository_name(ref.name)) fail("repository name");
  check_name(ref.name);
  if (ref.host.size() + 1 + ref.name.size() > kMaxReferenceNameLength) fail("host/name length");
  if (!ref.tag.empty() && !is_valid_tag(ref.tag)) fail("tag");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  if (auto ref = ImageReference::parse(text)) check_reference(*ref);
  if (auto ref = parse_docker_reference(text)) check_reference(*ref);
  if (is_valid_repository_name(text)) check_name(text);
  if (is_valid_tag(text) && (text.size() > 128 || text.find('/') != std::string_view::npos))
    fail("tag grammar");
  if (is_valid_registry_host(text) && text.find_first_of("/@?#") != std::string_view::npos)
    fail("host grammar");
  if (auto digest = Digest::parse(text); digest && digest->to_string() != text)
    fail("digest round trip");
  return 0;
}
