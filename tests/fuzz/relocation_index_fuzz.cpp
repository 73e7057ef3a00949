// Fuzzes the relocation-record reader: conda-meta/envbuild-relocations.json comes from images, so
// whatever it holds must parse or fail cleanly, a parsed index must print and parse back to
// itself, and relocating content by a record that passed validation must either work or fail
// with an error, never read or write out of bounds (ASan watches) or abort.

#include <cstddef>
#include <cstdint>
#include <string>

#include "conda/relocate_prefix.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::conda;
using envbuild::fuzz::fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  auto index = parse_relocation_index(text, "fuzz");
  if (!index) return 0;
  auto again = parse_relocation_index(to_json_string(*index), "fuzz again");
  if (!again) fail("a printed index does not parse: " + again.error().message());
  if (!(*again == *index)) fail("an index does not print back to itself");
  // Content the records may or may not fit: the prefix at a few places, a shebang line.
  const std::string& prefix = index->prefix;
  std::string content = "#!" + prefix + "/bin/python\n" + prefix + "/lib\n" + std::string(64, 'x') +
                        '\0' + prefix + "/share" + '\0' + std::string(32, '\0');
  for (const auto& record : index->files) {
    if (!validate_record(record)) fail("a parsed record does not validate");
    (void)relocate_content(content, record, prefix, "/n");
    (void)relocate_content(content, record, prefix, "/a-longer-new-prefix/for/text/files");
  }
  return 0;
}
