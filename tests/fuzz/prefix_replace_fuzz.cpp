// Fuzzes binary and text prefix replacement. Input: byte 0 picks mode and target OS, byte 1 the
// new prefix length; the rest is file content (seeded with the placeholder). Whatever
// replace_prefix patches must relocate to another prefix, and A -> B -> C equals A -> C.

#include <cstddef>
#include <cstdint>
#include <string>

#include "conda/prefix_replace.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::conda;
using envbuild::fuzz::fail;

namespace {
constexpr const char* kPlaceholder = "/opt/anaconda1anaconda2anaconda3";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  PrefixReplacement r;
  r.placeholder = kPlaceholder;
  r.mode = (data[0] & 1) ? FileMode::Binary : FileMode::Text;
  constexpr TargetOs kOs[] = {TargetOs::Linux, TargetOs::MacOs, TargetOs::Windows};
  r.target = kOs[(data[0] >> 1) % 3];
  // Prefix lengths around the placeholder's (32) and the shebang limits (127, 512).
  size_t length = 1 + data[1] % 160;
  if (data[0] & 0x80) length += 400;
  r.new_prefix = "/p" + std::string(length, 'x');
  auto content = envbuild::fuzz::as_text(data + 2, size - 2);

  auto patched = replace_prefix(content, r);
  if (!patched || !patched->has_value()) return 0;
  const auto& [text, record] = **patched;
  // What the builder records must pass the check envrun applies to records from images.
  RelocationRecord named = record;
  named.path = "bin/file";
  if (auto valid = validate_record(named); !valid)
    fail("a fresh record does not validate: " + valid.error().message());
  // B -> C and A -> C must agree (binary prefixes must fit the room).
  std::string c = "/q" + std::string(length / 2, 'y');
  auto moved = relocate_content(text, record, r.new_prefix, c);
  if (!moved) fail("relocate failed on fresh output: " + moved.error().message());
  PrefixReplacement direct = r;
  direct.new_prefix = c;
  auto at_c = replace_prefix(content, direct);
  if (!at_c || !at_c->has_value()) fail("replace to C failed where replace to B worked");
  if ((*at_c)->content != moved->content) fail("A->B->C differs from A->C");
  return 0;
}
