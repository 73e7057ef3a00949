// Hostile packages that package_archive_test.cpp does not cover: decompression bombs (bzip2 and
// zstd, by size, expansion and entry count), overlong paths, symlink chains that leave the
// package, links through symlinks, and enormous metadata. Each is rejected as an Integrity error
// before it fills the disk, and nothing is left next to the destination.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "conda/extract.hpp"
#include "conda/package_metadata.hpp"
#include "tests/testing/packages.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;
using testing::TarEntry;
using testing::TempDirTest;
using testing::write_conda;
using testing::write_tar_bz2;

const std::vector<TarEntry> kInfo = {{"info/index.json", R"({"name":"x","version":"1"})"}};

class HostileInputsTest : public TempDirTest {
 protected:
  // The extraction failed as hostile, left no destination and no temporary sibling.
  void expect_rejected(const Result<ExtractStats>& got, const fs::path& out,
                       const std::string& want) {
    ASSERT_FALSE(got) << out << " was extracted";
    EXPECT_EQ(got.error().code(), Errc::Integrity) << got.error().to_string();
    EXPECT_NE(got.error().to_string().find(want), std::string::npos) << got.error().to_string();
    EXPECT_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(dir_)) {
      auto name = e.path().filename().string();
      EXPECT_TRUE(name.ends_with(".conda") || name.ends_with(".tar.bz2"))
          << "left behind: " << name;
    }
  }
};

TEST_F(HostileInputsTest, Bzip2BombStoppedByTheSizeLimit) {
  // 32 MiB of zeros compress to a few dozen bytes.
  fs::path package = dir_ / "bomb-1-0.tar.bz2";
  auto entries = kInfo;
  entries.push_back({"lib/zeros", std::string(32u << 20, '\0')});
  write_tar_bz2(package, entries);
  EXPECT_LT(fs::file_size(package), 4096u);
  ExtractOptions options;
  options.limits.max_bytes = 1u << 20;
  expect_rejected(extract_package(package, dir_ / "out", options), dir_ / "out",
                  "entry 'lib/zeros' takes the unpacked content past the limit (limit: 1.0 MiB)");
}

// Issue 16, class 12: with the default limits, a package that expands more than 100 times past
// 64 MiB is refused before its content is written, naming the limit and how to raise it.
TEST_F(HostileInputsTest, ExpansionBombRefusedByDefault) {
  for (const std::string name : {"bomb-1-0.tar.bz2", "bomb-1-0.conda"}) {
    SCOPED_TRACE(name);
    fs::path package = dir_ / name;
    std::vector<TarEntry> pkg = {{"lib/zeros", std::string(80u << 20, '\0')}};
    if (name.ends_with(".conda")) {
      write_conda(package, kInfo, pkg);
    } else {
      pkg.insert(pkg.begin(), kInfo.begin(), kInfo.end());
      write_tar_bz2(package, pkg);
    }
    auto got = extract_package(package, dir_ / "out");
    expect_rejected(got, dir_ / "out", "a decompression bomb (limit: 100x past 64.0 MiB)");
    EXPECT_NE(got.error().hint().find("ENVBUILD_MAX_EXPANSION=N"), std::string::npos)
        << got.error().hint();
    // The limit is the caller's to raise.
    ExtractOptions options;
    options.limits.max_expansion = 0;
    auto raised = extract_package(package, dir_ / "raised", options);
    ASSERT_TRUE(raised) << raised.error().to_string();
    fs::remove_all(dir_ / "raised");
    fs::remove(package);
  }
}

TEST_F(HostileInputsTest, OverlongPathRefused) {
  fs::path package = dir_ / "long-1-0.tar.bz2";
  auto entries = kInfo;
  entries.push_back({std::string(5000, 'd') + "/x", "x"});
  write_tar_bz2(package, entries);
  expect_rejected(extract_package(package, dir_ / "out"), dir_ / "out",
                  "bytes, longer than any path can be (4096)");
}

// Issue 16, class 6: symlinks are judged by where they resolve through the package's other
// symlinks, not by their text alone; links never carry an entry out of the package.
TEST_F(HostileInputsTest, SymlinkChainsAndLinksThroughSymlinksRefused) {
  using testing::symlink_entry;
  struct Case {
    std::string name;
    std::vector<TarEntry> entries;
    std::string_view want;  // "" when the package extracts
  };
  const TarEntry dir_file{"real/f", "f"};
  const Case cases[] = {
      {"chain",
       {symlink_entry("a/b/c/l3", "../../.."), symlink_entry("share/esc", "../a/b/c/l3/../victim")},
       "symlink 'share/esc' -> '../a/b/c/l3/../victim' leaves the package through symlink "
       "'a/b/c/l3'"},
      {"chain-in-order-reversed",
       {symlink_entry("share/esc", "../a/b/c/l3/../victim"), symlink_entry("a/b/c/l3", "../../..")},
       "leaves the package through symlink 'a/b/c/l3'"},
      {"repeated",
       {symlink_entry("x/l", ".."), symlink_entry("y", "x/l/x/l/x/l/../..")},
       "symlink 'y' -> 'x/l/x/l/x/l/../..' leaves the package"},
      {"loop", {symlink_entry("a", "b"), symlink_entry("b", "a")}, "(or a loop of them)"},
      {"absolute", {symlink_entry("etc", "/etc")}, "points outside the package"},
      {"file-below-symlink",
       {dir_file, symlink_entry("s", "real"), {"s/new", "x"}},
       "is a symlink or file in the package"},
      {"hardlink-through-symlink",
       {dir_file, symlink_entry("s", "real"), {"h", "s/f", 0644, TarEntry::Kind::Hardlink}},
       "is a symlink or file in the package"},
      {"library-chain",
       {{"lib/libz.so.1.3", "elf"},
        symlink_entry("lib/libz.so.1", "libz.so.1.3"),
        symlink_entry("lib/libz.so", "libz.so.1"),
        symlink_entry("lib64", "lib"),
        symlink_entry("bin/z", "../lib64/libz.so")},
       ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::path package = dir_ / "links-1-0.tar.bz2";
    auto entries = kInfo;
    entries.insert(entries.end(), c.entries.begin(), c.entries.end());
    write_tar_bz2(package, entries);
    auto got = extract_package(package, dir_ / "out");
    if (c.want.empty()) {
      EXPECT_TRUE(got) << got.error().to_string();
    } else {
      expect_rejected(got, dir_ / "out", std::string(c.want));
    }
    fs::remove_all(dir_ / "out");
    fs::remove(package);
  }
}

TEST_F(HostileInputsTest, ZstdBombStoppedByTheTotalLimit) {
  fs::path package = dir_ / "bomb-1-0.conda";
  std::vector<TarEntry> pkg;
  for (int i = 0; i < 8; ++i)
    pkg.push_back({"lib/zeros" + std::to_string(i), std::string(1u << 20, '\0')});
  write_conda(package, kInfo, pkg);
  ExtractOptions options;
  options.limits.max_bytes = 4u << 20;
  expect_rejected(extract_package(package, dir_ / "out", options), dir_ / "out",
                  "past the limit (limit: 4.0 MiB)");
  // Within the limit the same package extracts.
  options.limits.max_bytes = 16u << 20;
  auto stats = extract_package(package, dir_ / "ok", options);
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(stats->bytes, (8u << 20) + kInfo[0].data.size());
}

// Extracted trees are shared caches hard-linked into prefixes: a package cannot make a file
// world-writable, setuid, setgid or sticky (group write stays, as conda keeps it).
TEST_F(HostileInputsTest, WritableAndSetuidModesAreDropped) {
  fs::path package = dir_ / "modes-1-0.tar.bz2";
  auto entries = kInfo;
  entries.push_back({"lib/world-writable", "x", 0666});
  entries.push_back({"bin/tool", "#!/bin/sh\n", 0777});
  entries.push_back({"bin/suid", "x", 06755});
  entries.push_back({"share/sticky", "x", 01777});
  write_tar_bz2(package, entries);
  auto stats = extract_package(package, dir_ / "out");
  ASSERT_TRUE(stats) << stats.error().to_string();
  for (auto [path, want] : {std::pair<std::string, unsigned>{"lib/world-writable", 0664},
                            {"bin/tool", 0775},
                            {"bin/suid", 0755},
                            {"share/sticky", 0775}}) {
    struct stat st {};
    ASSERT_EQ(::lstat((dir_ / "out" / path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 07777, want) << path << ": " << std::oct << (st.st_mode & 07777);
  }
}

TEST_F(HostileInputsTest, EntryCountBombStopped) {
  fs::path package = dir_ / "many-1-0.tar.bz2";
  auto entries = kInfo;
  for (int i = 0; i < 100; ++i) entries.push_back({"f/" + std::to_string(i), ""});
  write_tar_bz2(package, entries);
  ExtractOptions options;
  options.limits.max_entries = 50;
  expect_rejected(extract_package(package, dir_ / "out", options), dir_ / "out",
                  "more entries than an archive may have (limit: 50 entries)");
}

TEST_F(HostileInputsTest, EnormousMetadataRefused) {
  // 100 MiB of JSON whitespace: valid JSON once the object ends, tiny once compressed.
  for (const std::string file : {"info/index.json", "info/paths.json"}) {
    SCOPED_TRACE(file);
    fs::path package = dir_ / "meta-1-0.tar.bz2";
    std::string huge = "{\"name\":\"x\",\"version\":\"1\"" + std::string(100u << 20, ' ') + "}";
    auto entries = kInfo;
    if (file == "info/index.json") entries.clear();
    entries.push_back({file, huge});
    write_tar_bz2(package, entries);
    auto got = read_package_metadata(package);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::Integrity) << got.error().to_string();
    EXPECT_NE(got.error().to_string().find("refusing to read it"), std::string::npos)
        << got.error().to_string();
    fs::remove(package);
  }
}

}  // namespace
}  // namespace envbuild::conda
