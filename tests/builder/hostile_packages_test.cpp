// Issue 16, classes 6 and 12, end to end: hostile packages in a local channel, built entry by
// entry, indexed and installed by the real `envbuild install` (under a timeout). Each case
// snapshots a sentinel tree beside the prefix before and after: nothing outside the prefix may
// change, whatever the packages hold.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "builder/solve/index.hpp"
#include "tests/testing/packages.hpp"
#include "tests/testing/sentinel.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::shell_quote;
using testing::symlink_entry;
using testing::TarEntry;
using testing::write_text;

struct Package {
  std::string name;
  std::vector<TarEntry> files;
  std::vector<std::string> depends;
  std::vector<TarEntry> info;  // replaces the generated info/ when not empty
};

class HostilePackagesTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ENVB_REQUIRE_TOOL("timeout");
    victim_ = testing::snapshot_tree(testing::make_sentinel_tree(dir_ / "victim"));
  }

  // A channel of `packages` (linux-64 .tar.bz2), indexed.
  void make_channel(const std::vector<Package>& packages) {
    fs::remove_all(dir_ / "channel");
    fs::create_directories(dir_ / "channel/linux-64");
    for (const auto& p : packages) {
      nlohmann::json depends = p.depends;
      auto entries =
          p.info.empty() ? testing::package_info(p.name, p.files, {{"depends", depends}}) : p.info;
      entries.insert(entries.end(), p.files.begin(), p.files.end());
      testing::write_tar_bz2(dir_ / "channel/linux-64" / (p.name + "-1.0-0.tar.bz2"), entries);
    }
    auto indexed = index_channel(dir_ / "channel");
    ASSERT_TRUE(indexed) << indexed.error().to_string();
  }

  // `envbuild install` of `spec` from the channel into dir_/prefix, with `env` before it.
  testing::CommandResult install(const std::string& spec, const std::string& extra = "",
                                 const std::string& env = "") {
    write_text(dir_ / "env.yml",
               "channels: [" + (dir_ / "channel").string() + "]\ndependencies: [" + spec + "]\n");
    return run_command(
        env + " timeout 300 " + shell_quote((testing::binary_dir() / "envbuild").string()) +
        " install -q --no-link-scripts -p " + shell_quote((dir_ / "prefix").string()) + " -f " +
        shell_quote((dir_ / "env.yml").string()) + " --cache-dir " +
        shell_quote((dir_ / "cache").string()) + " " + extra + " 2>&1");
  }

  // The sentinel is as it was, and no file a package holds landed outside the prefix (the
  // package cache and the channel hold them too, of course).
  void expect_victim_untouched() {
    EXPECT_EQ(testing::diff_snapshots(victim_, testing::snapshot_tree(dir_ / "victim")), "");
    for (auto it = fs::recursive_directory_iterator(dir_); it != fs::recursive_directory_iterator();
         ++it) {
      const std::string name = it->path().filename().string();
      if (it.depth() == 0 && (name == "prefix" || name == "cache" || name == "channel")) {
        it.disable_recursion_pending();
        continue;
      }
      EXPECT_EQ(name.find("pwned"), std::string::npos) << it->path();
    }
  }

  testing::TreeSnapshot victim_;
};

TEST_F(HostilePackagesTest, SymlinkTricksAreRefusedAndTouchNothingOutside) {
  struct Case {
    std::string name;
    std::vector<Package> packages;
    std::string want;
  };
  const std::string victim = (dir_ / "victim").string();
  const std::vector<TarEntry> paths_as_symlink = {
      {"info/index.json", R"({"name":"c","version":"1.0","build":"0","subdir":"linux-64"})"},
      {"share/paths.json", R"({"paths":[{"_path":"share/x","path_type":"hardlink"}]})"},
      symlink_entry("info/paths.json", "../share/paths.json")};
  const Case cases[] = {
      {"chain across packages",
       {{"a", {symlink_entry("a/b/c/l3", "../../..")}, {}, {}},
        {"b", {symlink_entry("share/esc", "../a/b/c/l3/../victim")}, {"a"}, {}},
        {"c", {{"share/esc/pwned.txt", "pwned"}}, {"b"}, {}}},
       "c-1.0-0 installs share/esc/pwned.txt below share/esc, which b-1.0-0 installs as a "
       "symlink (-> ../a/b/c/l3/../victim)"},
      {"chain inside one package",
       {{"c",
         {symlink_entry("a/b/c/l3", "../../.."),
          symlink_entry("share/esc", "../a/b/c/l3/../victim")},
         {},
         {}}},
       "symlink 'share/esc' -> '../a/b/c/l3/../victim' leaves the package through symlink "
       "'a/b/c/l3'"},
      {"absolute target",
       {{"c", {symlink_entry("share/esc", victim)}, {}, {}}},
       "points outside the package"},
      {"symlink over another package's directory",
       {{"a", {{"share/d/x", "x"}}, {}, {}},
        {"c", {symlink_entry("share/d", "../victim")}, {"a"}, {}}},
       "a-1.0-0 installs share/d/x below share/d, which c-1.0-0 installs as a symlink"},
      {"hard link through a symlink",
       {{"c",
         {{"real/f", "f"},
          symlink_entry("s", "real"),
          {"h", "s/f", 0644, TarEntry::Kind::Hardlink}},
         {},
         {}}},
       "is a symlink or file in the package"},
      {"symlink in info/",
       {{"c", {{"share/x", "x"}}, {}, paths_as_symlink}},
       "info/paths.json: is a symlink"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(dir_ / "prefix");
    fs::remove_all(dir_ / "cache");
    make_channel(c.packages);
    auto r = install("c");
    EXPECT_EQ(r.exit_code, 5) << r.output;  // Integrity
    EXPECT_NE(r.output.find(c.want), std::string::npos) << r.output;
    expect_victim_untouched();
  }
}

// --force removes the old prefix without following the symlinks in it.
TEST_F(HostilePackagesTest, ForceRemovesThePrefixNotWhatItsSymlinksPointTo) {
  make_channel({{"c", {{"share/x", "x"}}, {}, {}}});
  fs::create_directories(dir_ / "prefix/share");
  fs::create_directory_symlink(dir_ / "victim", dir_ / "prefix/share/link");
  fs::create_symlink(dir_ / "victim/home/secret.json", dir_ / "prefix/secret");
  auto r = install("c", "--force");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "prefix/share/x"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "prefix/share/link")));
  expect_victim_untouched();
}

// Issue 16, class 12: a package that expands more than 100 times past 64 MiB is refused by
// default, with the limit and the variable that raises it; raised, it installs.
TEST_F(HostilePackagesTest, ExpansionBombIsRefusedUntilTheLimitIsRaised) {
  make_channel({{"c", {{"share/zeros", std::string(80u << 20, '\0')}}, {}, {}}});
  auto r = install("c");
  EXPECT_EQ(r.exit_code, 5) << r.output;
  EXPECT_NE(r.output.find("a decompression bomb (limit: 100x past 64.0 MiB)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ENVBUILD_MAX_EXPANSION=N"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "prefix/share/zeros"));
  fs::remove_all(dir_ / "prefix");
  r = install("c", "", "ENVBUILD_MAX_EXPANSION=0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(fs::file_size(dir_ / "prefix/share/zeros"), 80u << 20);
  fs::remove_all(dir_ / "cache");  // a package extracted once is not extracted again
  r = install("c", "--force", "ENVBUILD_MAX_EXPANSION=lots");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("ENVBUILD_MAX_EXPANSION='lots': expected a number"), std::string::npos)
      << r.output;
  expect_victim_untouched();
}

}  // namespace
}  // namespace envbuild::builder
