// Fuzzes the PEP 503 (HTML) and PEP 691 (JSON) simple index pages, read from untrusted indexes:
// no crash, no deep recursion, bounded work, and every file they give is one that can be
// fetched and verified (an absolute URL without a fragment, a sha256 that is 64 hex digits).

#include <cstddef>
#include <cstdint>

#include "builder/pypi/simple_index.hpp"
#include "common/hash.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using envbuild::builder::pypi::DistributionFile;
using envbuild::fuzz::fail;

namespace {

void check(const std::vector<DistributionFile>& files, const char* format) {
  for (const auto& f : files) {
    if (f.url.find("://") == std::string::npos) fail(std::string(format) + ": relative URL " + f.url);
    if (f.url.find('#') != std::string::npos) fail(std::string(format) + ": fragment kept in " + f.url);
    if (!f.sha256.empty() && !envbuild::common::is_lower_hex(f.sha256, 64))
      fail(std::string(format) + ": sha256 " + f.sha256);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  const char* page = "https://pypi.example/simple/pkg/";
  if (auto files = envbuild::builder::pypi::parse_simple_json(text, page)) check(*files, "json");
  if (auto files = envbuild::builder::pypi::parse_simple_html(text, page)) check(*files, "html");
  return 0;
}
