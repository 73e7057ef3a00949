// `envbuild lock`: conda-lock.yml and @EXPLICIT files that parse with our readers, list every
// solved package once per platform with its hashes, and that `envbuild install --lock` installs.

#include <gtest/gtest.h>

#include <set>

#include "builder/image/image_build.hpp"
#include "common/fs.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"
#include "conda/lockfile_pixi.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using LockTest = envbuild::testing::TempDirTest;

// A copy of the real conda-forge subset with the empty noarch subdir conda channels need.
fs::path make_channel(const fs::path& dir) {
  fs::path channel = dir / "chan";
  fs::create_directories(channel);
  fs::copy(envbuild::testing::data_dir() / "packages/channels/conda-forge-subset/linux-64",
           channel / "linux-64", fs::copy_options::recursive);
  envbuild::testing::write_text(
      channel / "noarch/repodata.json",
      R"({"info":{"subdir":"noarch"},"packages":{},"packages.conda":{}})");
  return channel;
}

TEST_F(LockTest, WritesBothFormatsAndInstallsFromThem) {
  fs::path channel = make_channel(dir_);
  envbuild::testing::write_text(
      dir_ / "environment.yml",
      "name: t\nchannels:\n  - " + channel.string() + "\ndependencies:\n  - xz\n  - openssl >=3\n");
  std::string envbuild = shell_quote((envbuild::testing::binary_dir() / "envbuild").string());
  auto r = run_command("cd " + shell_quote(dir_.string()) + " && " + envbuild +
                       " lock -f environment.yml --explicit locks --cache-dir cache");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  auto lock_text = common::read_file(dir_ / "conda-lock.yml");
  ASSERT_TRUE(lock_text);
  auto lock = conda::parse_conda_lock(*lock_text, "conda-lock.yml");
  ASSERT_TRUE(lock) << lock.error().to_string();
  EXPECT_EQ(lock->metadata.platforms, std::vector<std::string>{"linux-64"});
  auto packages = lock->packages_for("linux-64", conda::CondaLockPackage::Manager::Conda);
  std::set<std::string> names;
  for (const auto* p : packages) {
    names.insert(p->name);
    EXPECT_EQ(p->sha256.size(), 64u) << p->name;
    EXPECT_FALSE(p->md5.empty()) << p->name;
  }
  EXPECT_TRUE(names.count("xz") && names.count("openssl") && names.count("ca-certificates"));
  EXPECT_EQ(names.size(), packages.size());

  auto explicit_text = common::read_file(dir_ / "locks/conda-linux-64.lock");
  ASSERT_TRUE(explicit_text);
  auto explicit_file = conda::parse_explicit_file(*explicit_text, "conda-linux-64.lock");
  ASSERT_TRUE(explicit_file) << explicit_file.error().to_string();
  EXPECT_EQ(explicit_file->platform().value_or(""), "linux-64");
  ASSERT_EQ(explicit_file->entries.size(), packages.size());
  // Dependencies come first: libgcc's mutex before libgcc, libgcc before openssl.
  std::vector<std::string> order;
  for (const auto& e : explicit_file->entries) order.emplace_back(e.file_name());
  auto pos = [&](std::string_view prefix) {
    for (size_t i = 0; i < order.size(); ++i)
      if (order[i].rfind(prefix, 0) == 0) return i;
    return order.size();
  };
  EXPECT_LT(pos("_libgcc_mutex-"), pos("libgcc-14"));
  EXPECT_LT(pos("libgcc-14"), pos("openssl-"));

  auto install =
      run_command(envbuild + " install -q -p " + shell_quote((dir_ / "prefix").string()) +
                  " --lock " + shell_quote((dir_ / "locks/conda-linux-64.lock").string()) +
                  " --cache-dir " + shell_quote((dir_ / "cache").string()));
  ASSERT_EQ(install.exit_code, 0) << install.output;
  auto version = run_command(shell_quote((dir_ / "prefix/bin/xz").string()) + " --version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
}

TEST_F(LockTest, UnsatisfiableSpecIsExplained) {
  fs::path channel = make_channel(dir_);
  envbuild::testing::write_text(dir_ / "environment.yml", "channels: [" + channel.string() +
                                                              "]\ndependencies: [openssl >=99]\n");
  auto r = run_command("cd " + shell_quote(dir_.string()) + " && " +
                       shell_quote((envbuild::testing::binary_dir() / "envbuild").string()) +
                       " lock -f environment.yml --cache-dir cache");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("openssl"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "conda-lock.yml"));
}

// Issue 20: every environment and platform of the real pixi.lock files becomes an environment
// to install: its pypi packages as wheels with URL and sha256 (`direct+` and paths resolved),
// or, for source packages and editables, an Unsupported error naming the package (and for a
// download without a sha256, an InvalidInput one).
TEST(PixiLockEnvironments, EveryRealFileGivesItsWheelsOrNamesWhatIsNotAWheel) {
  size_t wheels = 0, refused = 0;
  for (const auto& e : fs::directory_iterator(envbuild::testing::data_dir() / "locks/pixi-lock")) {
    SCOPED_TRACE(e.path().filename().string());
    auto text = common::read_file(e.path());
    ASSERT_TRUE(text);
    auto lock = conda::parse_pixi_lock(*text, e.path().string());
    ASSERT_TRUE(lock) << lock.error().to_string();
    for (const auto& env : lock->environments) {
      for (const auto& platform : env.platforms) {
        auto packages = lock->packages_for(env, platform.name);
        ASSERT_TRUE(packages) << packages.error().to_string();
        size_t pypi = 0;
        for (const auto* p : *packages) pypi += p->kind == conda::PixiLockPackage::Kind::Pypi;
        auto got = environment_from_lock(e.path(), platform.name, env.name);
        if (!got) {
          const std::string why = got.error().to_string();
          // A download without a sha256 (a direct URL in the v4 file) is not installed unverified.
          const bool unverifiable = why.find("no sha256 to verify its download") != std::string::npos;
          EXPECT_EQ(got.error().code(), unverifiable ? Errc::InvalidInput : Errc::Unsupported) << why;
          EXPECT_TRUE(unverifiable || why.find("not a wheel") != std::string::npos ||
                      why.find("editable") != std::string::npos ||
                      why.find("source package") != std::string::npos)
              << why;
          ++refused;
          continue;
        }
        ASSERT_EQ(got->wheels.size(), pypi);
        for (const auto& w : got->wheels) {
          EXPECT_TRUE(w.filename.ends_with(".whl")) << w.filename;
          if (!w.url.starts_with("file://")) {
            EXPECT_EQ(w.sha256.size(), 64u) << w.name;
          }
          EXPECT_FALSE(w.url.starts_with("direct+")) << w.url;
          EXPECT_NE(w.url.find("://"), std::string::npos) << w.url;
        }
        wheels += pypi;
      }
    }
  }
  EXPECT_GT(wheels, 10u);
  EXPECT_GT(refused, 0u);
}

}  // namespace
}  // namespace envbuild::builder
