// Extraction must give the same tree as `cph x` (conda-package-handling), file for file:
// content, exec bit and symlink target.

#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <map>

#include "common/hash.hpp"
#include "conda/extract.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::shell_quote;

struct Node {
  char type = '?';      // f, d, l
  std::string content;  // sha256 for files, target for links
  bool executable = false;
  bool operator==(const Node&) const = default;
};

std::map<std::string, Node> snapshot(const fs::path& root) {
  std::map<std::string, Node> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path& p = it->path();
    Node node;
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    if (S_ISLNK(st.st_mode)) {
      node.type = 'l';
      node.content = fs::read_symlink(p).string();
    } else if (S_ISDIR(st.st_mode)) {
      node.type = 'd';
    } else {
      node.type = 'f';
      node.content = common::sha256_file(p.string()).value_or("unreadable");
      node.executable = (st.st_mode & S_IXUSR) != 0;
    }
    out[fs::relative(p, root).string()] = node;
  }
  return out;
}

// Packages `cph x` cannot extract; envbuild's behaviour for them is pinned in
// package_archive_test.cpp.
const std::string_view kCphFails[] = {
    "single/corrupt/another_bad_package.conda",
    "single/corrupt/bad_package.tar.bz2",
    "channels/conda_format_repo/linux-64/zlib-1.2.11-h7b6447c_3.conda",
    "channels/conda_format_repo/osx-64/zlib-1.2.11-h1de35cc_3.conda",
    "single/ca-certificates-2024.7.4-hbcca054_0.conda",  // components nested in a folder
    "single/rattler-sparse/info-only-1.0.0-0.conda",     // no pkg- component
};

class ExtractMatchesCphTest : public testing::TempDirTest {};

TEST_F(ExtractMatchesCphTest, EveryRealPackage) {
  ENVB_REQUIRE_TOOL("cph");
  fs::path root = testing::data_dir() / "packages";
  std::vector<fs::path> packages;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && (name.ends_with(".conda") || name.ends_with(".tar.bz2")))
      packages.push_back(e.path());
  }
  std::sort(packages.begin(), packages.end());
  int compared = 0;
  size_t files = 0;
  int index = 0;
  for (const auto& package : packages) {
    std::string rel = fs::relative(package, root).string();
    SCOPED_TRACE(rel);
    fs::path ours = dir_ / ("ours-" + std::to_string(index));
    fs::path theirs = dir_ / ("cph-" + std::to_string(index++));
    auto cph = run_command("cph x " + shell_quote(package.string()) + " --dest " +
                           shell_quote(theirs.string()));
    bool cph_fails =
        std::find(std::begin(kCphFails), std::end(kCphFails), rel) != std::end(kCphFails);
    if (cph_fails) {
      EXPECT_NE(cph.exit_code, 0) << "cph now extracts it; move it out of kCphFails";
      continue;
    }
    ASSERT_EQ(cph.exit_code, 0) << cph.output;
    auto stats = extract_package(package, ours);
    ASSERT_TRUE(stats) << stats.error().to_string();
    auto want = snapshot(theirs);
    auto got = snapshot(ours);
    for (const auto& [path, node] : want) {
      auto it = got.find(path);
      if (it == got.end()) {
        ADD_FAILURE() << "missing " << path;
        continue;
      }
      EXPECT_EQ(it->second.type, node.type) << path;
      EXPECT_EQ(it->second.content, node.content) << path;
      EXPECT_EQ(it->second.executable, node.executable) << path;
    }
    for (const auto& [path, node] : got) EXPECT_TRUE(want.count(path)) << "extra " << path;
    files += got.size();
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(packages.size()) - static_cast<int>(std::size(kCphFails)));
  EXPECT_GT(files, 1000u);
  std::cout << "compared " << compared << " packages, " << files << " paths with cph\n";
}

// The CLI does the same through `envbuild pkg extract`, and `pkg info` summarises paths.json.
TEST_F(ExtractMatchesCphTest, CliExtractAndInfo) {
  ENVB_REQUIRE_TOOL("cph");
  fs::path envbuild = testing::binary_dir() / "envbuild";
  fs::path package = testing::data_dir() /
                     "packages/channels/conda_format_repo/osx-64/zlib-1.2.11-h1de35cc_3.tar.bz2";
  auto run =
      run_command(shell_quote(envbuild.string()) + " pkg extract " + shell_quote(package.string()) +
                  " " + shell_quote((dir_ / "ours").string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  ASSERT_EQ(run_command("cph x " + shell_quote(package.string()) + " --dest " +
                        shell_quote((dir_ / "cph").string()))
                .exit_code,
            0);
  EXPECT_EQ(snapshot(dir_ / "ours"), snapshot(dir_ / "cph"));

  auto info = run_command(shell_quote(envbuild.string()) + " pkg info --json " +
                          shell_quote(package.string()));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("\"binary\": 3"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"softlink\": 2"), std::string::npos) << info.output;

  auto bad = run_command(
      shell_quote(envbuild.string()) + " pkg info " +
      shell_quote((testing::data_dir() / "packages/single/corrupt/bad_package.tar.bz2").string()) +
      " 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("error: reading package"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("Unrecognized archive format"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace envbuild::conda
