// tests/data holds the real data the tests read, and its README.md lists every file with where
// it comes from, its license and its sha256. The table and the folder must agree, and the
// folder stay lean.

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "common/hash.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;

// The rows of README.md's file table, "| `path` | from | license | `sha256` |": path -> sha256.
std::map<std::string, std::string> listed_files(const std::string& readme) {
  static const std::regex row(R"(^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$)");
  std::map<std::string, std::string> out;
  std::istringstream lines(readme);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, row)) out[m[1]] = m[2];
  }
  return out;
}

TEST(TestData, EveryFileIsListedWithItsSha256) {
  const fs::path root = testing::data_dir();
  auto listed = listed_files(testing::read_text(root / "README.md"));
  size_t files = 0;
  uintmax_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), root).generic_string();
    if (rel == "README.md" || rel == "make_index4_subset.py") continue;
    ++files;
    bytes += entry.file_size();
    auto sha256 = common::sha256_file(entry.path().string());
    ASSERT_TRUE(sha256) << sha256.error().to_string();
    auto it = listed.find(rel);
    if (it == listed.end()) {
      ADD_FAILURE() << rel << " has no row in tests/data/README.md; its sha256 is " << *sha256;
      continue;
    }
    EXPECT_EQ(it->second, *sha256) << rel << " is not the file its README.md row describes";
    listed.erase(it);
  }
  for (const auto& [rel, sha256] : listed)
    ADD_FAILURE() << "tests/data/README.md lists " << rel << ", which is not there";
  EXPECT_GE(files, 290u);
  EXPECT_LE(bytes, 30u << 20) << "tests/data is meant to stay under 30 MB";
}

}  // namespace
}  // namespace envbuild::conda
