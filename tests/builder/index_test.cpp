// `envbuild index`: repodata.json records equal info/index.json + md5/sha256/size, loose
// packages move to their subdir, and envbuild install --lock / pip: errors on top of it.

#include "builder/index.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/hash.hpp"
#include "tests/testing/channels.hpp"
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
