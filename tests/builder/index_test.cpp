// `envbuild index`: repodata.json records equal info/index.json + md5/sha256/size, loose
// packages move to their subdir, and envbuild install --lock / pip: errors on top of it.

#include "builder/solve/index.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/hash.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/packages.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::TempDirTest;
using testing::write_text;

fs::path subset() {
  return testing::data_dir() / "packages/channels/conda-forge-subset/linux-64";
}

class IndexTest : public TempDirTest {};

TEST_F(IndexTest, RecordsCarryHashesAndLoosePackagesMoveToTheirSubdir) {
  fs::create_directories(dir_ / "ch/linux-64");
  fs::copy_file(subset() / "xz-5.2.6-h166bdaf_0.tar.bz2", dir_ / "ch/linux-64/xz-5.2.6-h166bdaf_0.tar.bz2");
  fs::copy_file(subset() / "pip-25.3-pyh8b19718_0.conda", dir_ / "ch/pip-25.3-pyh8b19718_0.conda");
  auto r = run_command(shell_quote((testing::binary_dir() / "envbuild").string()) + " index " +
                       shell_quote((dir_ / "ch").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(dir_ / "ch/noarch/pip-25.3-pyh8b19718_0.conda"));
  EXPECT_TRUE(fs::exists(dir_ / "ch/linux-64/repodata.json.zst"));
  auto linux = nlohmann::json::parse(read_text(dir_ / "ch/linux-64/repodata.json"));
  auto xz = linux["packages"]["xz-5.2.6-h166bdaf_0.tar.bz2"];
  auto upstream = nlohmann::json::parse(read_text(subset() / "repodata.json"));
  auto want = upstream["packages"]["xz-5.2.6-h166bdaf_0.tar.bz2"];
  for (const char* key : {"name", "version", "build", "sha256", "md5", "size", "depends"})
    EXPECT_EQ(xz[key], want[key]) << key;
  auto noarch = nlohmann::json::parse(read_text(dir_ / "ch/noarch/repodata.json"));
  EXPECT_EQ(noarch["packages.conda"]["pip-25.3-pyh8b19718_0.conda"]["noarch"], "python");
  // Same input, same bytes.
  std::string before = read_text(dir_ / "ch/linux-64/repodata.json");
  ASSERT_TRUE(index_channel(dir_ / "ch"));
  EXPECT_EQ(read_text(dir_ / "ch/linux-64/repodata.json"), before);
}

// The names of the entries in `dir` (not following symlinks), sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.push_back(fs::relative(e.path(), dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

// Issue 16, class 7: a loose package's own `subdir` decided where `envbuild index` moved it
// ("../x", absolute paths), replacing what was there. Only platforms conda knows are subdirs,
// the move stays beneath the channel and replaces nothing.
TEST_F(IndexTest, LoosePackagesMoveOnlyIntoKnownSubdirsBeneathTheChannel) {
  fs::create_directories(dir_ / "outside");
  write_text(dir_ / "outside/keep.txt", "keep");
  const auto before = listing(dir_ / "outside");
  for (const std::string& subdir :
       std::vector<std::string>{"../outside", "/tmp", dir_.string() + "/outside", "linux-64/../..",
                                "linux-65", ".", ""}) {
    SCOPED_TRACE(subdir);
    fs::remove_all(dir_ / "ch");
    fs::create_directories(dir_ / "ch");
    const fs::path loose = dir_ / "ch/evil-1.0-0.tar.bz2";
    testing::write_tar_bz2(loose, testing::package_info("evil", {}, {{"subdir", subdir}}));
    auto indexed = index_channel(dir_ / "ch");
    if (subdir.empty()) {  // no subdir: noarch, as before
      ASSERT_TRUE(indexed) << indexed.error().to_string();
      EXPECT_TRUE(fs::exists(dir_ / "ch/noarch/evil-1.0-0.tar.bz2"));
      continue;
    }
    ASSERT_FALSE(indexed);
    EXPECT_EQ(indexed.error().code(), Errc::Integrity);
    EXPECT_NE(indexed.error().message().find("names subdir '" + subdir +
                                             "', which is not a platform conda knows"),
              std::string::npos)
        << indexed.error().to_string();
    EXPECT_EQ(listing(dir_ / "ch"), std::vector<std::string>{"evil-1.0-0.tar.bz2"});
  }
  EXPECT_EQ(listing(dir_ / "outside"), before);
  EXPECT_EQ(read_text(dir_ / "outside/keep.txt"), "keep");
}

TEST_F(IndexTest, LoosePackagesReplaceNothingAndFollowNoSymlink) {
  const std::vector<testing::TarEntry> info = testing::package_info("p", {});
  // A package of the same name already in its subdir stays as it is.
  fs::create_directories(dir_ / "ch/linux-64");
  write_text(dir_ / "ch/linux-64/p-1.0-0.tar.bz2", "the indexed one");
  testing::write_tar_bz2(dir_ / "ch/p-1.0-0.tar.bz2", info);
  auto indexed = index_channel(dir_ / "ch");
  ASSERT_FALSE(indexed);
  EXPECT_NE(indexed.error().message().find("exists: not replacing it"), std::string::npos)
      << indexed.error().to_string();
  EXPECT_EQ(read_text(dir_ / "ch/linux-64/p-1.0-0.tar.bz2"), "the indexed one");
  EXPECT_TRUE(fs::exists(dir_ / "ch/p-1.0-0.tar.bz2"));
  // A subdir that is a symlink (here to a directory outside) is not moved into.
  fs::remove_all(dir_ / "ch");
  fs::create_directories(dir_ / "ch");
  fs::create_directories(dir_ / "elsewhere");
  fs::create_directory_symlink(dir_ / "elsewhere", dir_ / "ch/linux-64");
  testing::write_tar_bz2(dir_ / "ch/p-1.0-0.tar.bz2", info);
  EXPECT_FALSE(index_channel(dir_ / "ch"));
  EXPECT_TRUE(fs::is_empty(dir_ / "elsewhere"));
  // A loose package that is a symlink is not a loose package: it stays.
  fs::remove_all(dir_ / "ch");
  fs::create_directories(dir_ / "ch");
  testing::write_tar_bz2(dir_ / "elsewhere/q-1.0-0.tar.bz2", testing::package_info("q", {}));
  fs::create_symlink(dir_ / "elsewhere/q-1.0-0.tar.bz2", dir_ / "ch/q-1.0-0.tar.bz2");
  ASSERT_TRUE(index_channel(dir_ / "ch"));
  EXPECT_TRUE(fs::is_symlink(dir_ / "ch/q-1.0-0.tar.bz2"));
  EXPECT_FALSE(fs::exists(dir_ / "ch/linux-64/q-1.0-0.tar.bz2"));
}

// Given an @EXPLICIT lock of xz and its dependencies (file:// URLs with sha256), expect a
// prefix where xz runs; a second install --offline from the same cache downloads nothing.
TEST_F(IndexTest, InstallFromExplicitLockThenOfflineFromCache) {
  std::string lock = "# platform: linux-64\n@EXPLICIT\n";
  for (std::string fn : {"_libgcc_mutex-0.1-conda_forge.tar.bz2", "libgomp-14.2.0-h77fa898_1.conda",
                         "_openmp_mutex-4.5-2_gnu.tar.bz2", "libgcc-14.2.0-h77fa898_1.conda",
                         "libgcc-ng-14.2.0-h69a702a_1.conda", "xz-5.2.6-h166bdaf_0.tar.bz2"})
    lock += "file://" + (subset() / fn).string() + "#sha256:" +
            *common::sha256_file((subset() / fn).string()) + "\n";
  write_text(dir_ / "explicit.txt", lock);
  std::string envbuild = shell_quote((testing::binary_dir() / "envbuild").string());
  for (std::string extra : {"", " --offline"}) {
    SCOPED_TRACE(extra);
    fs::path prefix = dir_ / ("p" + std::to_string(extra.size()));
    auto r = run_command(envbuild + " install --json -q --no-link-scripts --lock " +
                         shell_quote((dir_ / "explicit.txt").string()) + " --prefix " +
                         shell_quote(prefix.string()) + " --cache-dir " +
                         shell_quote((dir_ / "cache").string()) + extra + " 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto summary = nlohmann::json::parse(r.output);
    EXPECT_EQ(summary["packages"].size(), 6u);
    EXPECT_EQ(summary["downloaded"], extra.empty() ? 6 : 0);
    auto xz = run_command(shell_quote((prefix / "bin/xz").string()) + " --version");
    EXPECT_EQ(xz.exit_code, 0) << xz.output;
    EXPECT_TRUE(fs::exists(prefix / "conda-meta/xz-5.2.6-h166bdaf_0.json"));
  }
}

TEST_F(IndexTest, PipSectionWithoutPythonIsAClearErrorBeforeAnyIndex) {
  // Given a pip: section in an environment without python, expect the error to say so before
  // any index is asked (the default index would be pypi.org) and before anything is installed.
  write_text(dir_ / "environment.yml",
             "channels:\n  - " + testing::conda_forge_subset_channel(dir_).string() +
                 "\ndependencies:\n  - xz\n  - pip:\n    - requests==2.31.0\n    - rich\n");
  auto r = run_command(shell_quote((testing::binary_dir() / "envbuild").string()) +
                       " install --prefix " + shell_quote((dir_ / "p").string()) + " -f " +
                       shell_quote((dir_ / "environment.yml").string()) + " --cache-dir " +
                       shell_quote((dir_ / "cache").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the pip: section needs python among the conda dependencies"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "p/conda-meta"));
}

}  // namespace
}  // namespace envbuild::builder
