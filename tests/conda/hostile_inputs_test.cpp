// Hostile packages that package_archive_test.cpp does not cover: decompression bombs (bzip2 and
// zstd, by size and by entry count) and enormous metadata. Each is rejected as an Integrity error
// before it fills the disk, and nothing is left next to the destination.

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "conda/extract.hpp"
#include "conda/package_metadata.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;
using testing::TempDirTest;

struct Entry {
  std::string path;
  std::string data;
  unsigned mode = 0644;
};

// A tar in memory, through `filter` (ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_ZSTD).
std::string make_tar(const std::vector<Entry>& entries, int filter) {
  std::vector<char> buffer(64u << 20);
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter(a, filter);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open_memory(a, buffer.data(), buffer.size(), &used), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, e.mode);
    archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
    if (!e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buffer.data(), used);
}

void write_tar_bz2(const fs::path& path, const std::vector<Entry>& entries) {
  testing::write_text(path, make_tar(entries, ARCHIVE_FILTER_BZIP2));
}

// A .conda: a stored zip of info-<stem>.tar.zst and pkg-<stem>.tar.zst.
void write_conda(const fs::path& path, const std::vector<Entry>& info,
                 const std::vector<Entry>& pkg) {
  std::string stem = path.filename().string();
  stem = stem.substr(0, stem.size() - std::string(".conda").size());
  std::vector<Entry> members = {{"metadata.json", R"({"conda_pkg_format_version": 2})"},
                                {"info-" + stem + ".tar.zst", make_tar(info, ARCHIVE_FILTER_ZSTD)},
                                {"pkg-" + stem + ".tar.zst", make_tar(pkg, ARCHIVE_FILTER_ZSTD)}};
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_zip_set_compression_store(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, m.path.c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, static_cast<la_int64_t>(m.data.size()));
    ASSERT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
    archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

const std::vector<Entry> kInfo = {{"info/index.json", R"({"name":"x","version":"1"})"}};

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

TEST_F(HostileInputsTest, Bzip2BombStoppedByTheEntryLimit) {
  // 32 MiB of zeros compress to a few dozen bytes.
  fs::path package = dir_ / "bomb-1-0.tar.bz2";
  auto entries = kInfo;
  entries.push_back({"lib/zeros", std::string(32u << 20, '\0')});
  write_tar_bz2(package, entries);
  EXPECT_LT(fs::file_size(package), 4096u);
  ExtractOptions options;
  options.max_entry_size = 1u << 20;
  expect_rejected(extract_package(package, dir_ / "out", options), dir_ / "out",
                  "over the limit of 1048576");
}

TEST_F(HostileInputsTest, ZstdBombStoppedByTheTotalLimit) {
  fs::path package = dir_ / "bomb-1-0.conda";
  std::vector<Entry> pkg;
  for (int i = 0; i < 8; ++i)
    pkg.push_back({"lib/zeros" + std::to_string(i), std::string(1u << 20, '\0')});
  write_conda(package, kInfo, pkg);
  ExtractOptions options;
  options.max_total_size = 4u << 20;
  expect_rejected(extract_package(package, dir_ / "out", options), dir_ / "out",
                  "refusing to extract more");
  // Within the limit the same package extracts.
  options.max_total_size = 16u << 20;
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
  options.max_entries = 50;
  expect_rejected(extract_package(package, dir_ / "out", options), dir_ / "out",
                  "more than 50 entries");
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
