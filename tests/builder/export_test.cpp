// `envbuild export` (issue 20): an installed prefix or a lock written back as environment.yml,
// @EXPLICIT or conda-lock.yml, and each of those read back by our own commands gives the same
// packages: environment.yml solves (`envbuild lock -f`) to them, @EXPLICIT installs them,
// conda-lock.yml round trips through `export --lock`. The channel is served over HTTP by
// tests/testing/repo_server.py.

#include <gtest/gtest.h>

#include <set>

#include "common/fs.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using envbuild::testing::write_text;
using ExportTest = envbuild::testing::TempDirTest;

std::string envbuild_bin() {
  return shell_quote((envbuild::testing::binary_dir() / "envbuild").string());
}

// The conda-meta record names of a prefix: <name>-<version>-<build>.json.
std::set<std::string> records_of(const fs::path& prefix) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(prefix / "conda-meta"))
    if (e.path().extension() == ".json" && !e.path().filename().string().starts_with("envbuild-"))
      out.insert(e.path().stem().string());
  return out;
}

std::set<std::string> records_of(const conda::CondaLockFile& lock) {
  std::set<std::string> out;
  for (const auto* p : lock.packages_for("linux-64", conda::CondaLockPackage::Manager::Conda)) {
    std::string file = p->url.substr(p->url.rfind('/') + 1);
    out.insert(file.substr(
        0, file.find(".conda") != std::string::npos ? file.find(".conda") : file.find(".tar.bz2")));
  }
  return out;
}

// Installs xz and openssl >=3 into dir/prefix from the real conda-forge subset served over HTTP
// (so the records carry http:// URLs, as from a real channel), with a variable.
void install_prefix(const fs::path& dir, const std::string& channel_url) {
  write_text(dir / "environment.yml", "name: t\nchannels:\n  - " + channel_url +
                                          "\ndependencies:\n  - xz\n  - openssl >=3\n"
                                          "variables:\n  GREETING: hello world\n");
  auto r = run_command("cd " + shell_quote(dir.string()) + " && " + envbuild_bin() +
                       " install -q -p prefix -f environment.yml --cache-dir cache");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(ExportTest, PrefixRoundTripsThroughEveryFormat) {
  envbuild::testing::RepoServer server(envbuild::testing::conda_forge_subset_channel(dir_), dir_);
  ASSERT_NE(server.port(), 0);
  ASSERT_NO_FATAL_FAILURE(install_prefix(dir_, server.url()));
  const std::string cd = "cd " + shell_quote(dir_.string()) + " && ";
  const std::set<std::string> installed = records_of(dir_ / "prefix");
  ASSERT_GE(installed.size(), 3u);

  // environment.yml solves back to the same packages.
  auto yml = run_command(cd + envbuild_bin() + " export -p prefix -o exported.yml");
  ASSERT_EQ(yml.exit_code, 0) << yml.output;
  auto text = common::read_file(dir_ / "exported.yml");
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("GREETING: hello world"), std::string::npos) << *text;
  auto lock =
      run_command(cd + envbuild_bin() + " lock -f exported.yml -o relock.yml --cache-dir cache");
  ASSERT_EQ(lock.exit_code, 0) << lock.output;
  auto relock_text = common::read_file(dir_ / "relock.yml");
  ASSERT_TRUE(relock_text);
  auto relock = conda::parse_conda_lock(*relock_text, "relock.yml");
  ASSERT_TRUE(relock) << relock.error().to_string();
  EXPECT_EQ(records_of(*relock), installed);

  // @EXPLICIT installs the same records.
  auto explicit_export =
      run_command(cd + envbuild_bin() + " export -p prefix --format explicit -o explicit.txt");
  ASSERT_EQ(explicit_export.exit_code, 0) << explicit_export.output;
  auto explicit_text = common::read_file(dir_ / "explicit.txt");
  ASSERT_TRUE(explicit_text);
  EXPECT_NE(explicit_text->find("#sha256:"), std::string::npos) << *explicit_text;
  auto install = run_command(cd + envbuild_bin() +
                             " install -q -p prefix2 --lock explicit.txt --cache-dir cache");
  ASSERT_EQ(install.exit_code, 0) << install.output;
  EXPECT_EQ(records_of(dir_ / "prefix2"), installed);

  // conda-lock.yml round trips through --lock.
  auto cl = run_command(cd + envbuild_bin() + " export -p prefix --format conda-lock -o a.yml && " +
                        envbuild_bin() + " export --lock a.yml --format conda-lock -o b.yml");
  ASSERT_EQ(cl.exit_code, 0) << cl.output;
  auto a = conda::parse_conda_lock(*common::read_file(dir_ / "a.yml"), "a.yml");
  auto b = conda::parse_conda_lock(*common::read_file(dir_ / "b.yml"), "b.yml");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(records_of(*a), installed);
}

TEST_F(ExportTest, NoBuildsAndFromHistoryContent) {
  envbuild::testing::RepoServer server(envbuild::testing::conda_forge_subset_channel(dir_), dir_);
  ASSERT_NE(server.port(), 0);
  ASSERT_NO_FATAL_FAILURE(install_prefix(dir_, server.url()));
  const std::string cd = "cd " + shell_quote(dir_.string()) + " && ";
  auto history = run_command(cd + envbuild_bin() + " export -p prefix --from-history");
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_NE(history.output.find("- xz\n"), std::string::npos) << history.output;
  EXPECT_NE(history.output.find("- openssl"), std::string::npos) << history.output;
  EXPECT_EQ(history.output.find("ca-certificates"), std::string::npos) << history.output;

  auto no_builds = run_command(cd + envbuild_bin() +
                               " export -p prefix --no-builds --override-channels -c conda-forge");
  ASSERT_EQ(no_builds.exit_code, 0) << no_builds.output;
  EXPECT_NE(no_builds.output.find("- conda-forge\n"), std::string::npos) << no_builds.output;
  EXPECT_EQ(no_builds.output.find(server.url()), std::string::npos) << no_builds.output;
  size_t xz = no_builds.output.find("- xz=");
  ASSERT_NE(xz, std::string::npos) << no_builds.output;
  std::string line = no_builds.output.substr(xz, no_builds.output.find('\n', xz) - xz);
  EXPECT_EQ(std::count(line.begin(), line.end(), '='), 1) << line;
}

TEST_F(ExportTest, BadInputIsNamedWithItsExitCode) {
  fs::create_directories(dir_ / "corrupt/conda-meta");
  write_text(dir_ / "corrupt/conda-meta/zlib-1.3-0.json", "{\"name\": ");
  const fs::path pixi =
      envbuild::testing::data_dir() / "locks/pixi-lock/conda-lockfiles__single_package__pixi.lock";
  struct Case {
    std::string args;
    int exit_code;
    std::string names;
  };
  const std::vector<Case> cases = {
      {"-p missing", 3, "missing is not a conda environment"},
      {"-p corrupt", 2, "zlib-1.3-0.json"},
      {"--lock " + shell_quote(pixi.string()) + " --environment nope", 3, "nope"},
      {"", 2, "-p PREFIX"},
      {"--lock nothing.yml", 3, "nothing.yml"},
  };
  for (const auto& c : cases) {
    auto r = run_command("cd " + shell_quote(dir_.string()) + " && " + envbuild_bin() + " export " +
                         c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace envbuild::builder
