// SquashFS images written by squashfs/writer: checked with the real squashfs-tools (unsquashfs
// lists and extracts them), byte for byte reproducible whatever the input order and thread count.

#include "squashfs/writer.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <random>

#include "common/hash.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::squashfs {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

using testing::q;

/// `unsquashfs -lln` of the image with runs of spaces squeezed to one (its columns vary).
std::string listing_of(const fs::path& image) {
  auto r = run_command("TZ=UTC unsquashfs -lln -d '' " + q(image) + " | tr -s ' '");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

class SquashfsWriteTest : public testing::TempDirTest {
 protected:
  /// Files on disk for the entries: a multi-block file, an executable, an empty file.
  std::vector<Entry> sample_entries() {
    std::string big;
    std::mt19937 rng(7);
    for (int i = 0; i < 400000; ++i) big += static_cast<char>('a' + rng() % 4);
    write_text(dir_ / "src/big.bin", big);
    write_text(dir_ / "src/tool", "#!/bin/sh\necho tool\n");
    ::chmod((dir_ / "src/tool").c_str(), 0750);
    write_text(dir_ / "src/empty", "");
    std::vector<Entry> entries = {
        Entry::file("lib/big.bin", dir_ / "src/big.bin"),
        Entry::file("bin/tool", dir_ / "src/tool"),
        Entry::file("share/empty", dir_ / "src/empty"),
        Entry::file_with_content(".envbuild/image.json", "{\"format\":1}\n"),
        Entry::symlink("bin/alias", "tool"),
        Entry::symlink("lib/outside", "/etc/passwd"),
        Entry::directory("var/empty-dir"),
        Entry::file_with_content("a-b", "dash sorts before slash\n"),
    };
    Entry tmp = Entry::directory("tmp");
    tmp.mode = 01777;
    entries.push_back(tmp);
    return entries;
  }

  fs::path write(std::vector<Entry> entries, const WriteOptions& options, const std::string& name) {
    fs::path out = dir_ / name;
    auto info = write_image(std::move(entries), options, out);
    EXPECT_TRUE(info) << info.error().to_string();
    return out;
  }
};

TEST_F(SquashfsWriteTest, UnsquashfsListsEveryEntryOwnedByRootWithOneMtime) {
  ENVB_REQUIRE_TOOL("unsquashfs");
  WriteOptions options;
  options.mtime = 1700000000;
  fs::path image = write(sample_entries(), options, "a.sqfs");
  const std::string listing = listing_of(image);
  // Every parent explicit, modes normalised, owner 0/0, the fixed mtime (2023-11-14 22:13).
  for (std::string want : {"drwxr-xr-x 0/0 40 2023-11-14 22:13 /bin\n",
                           "-rwxr-xr-x 0/0 20 2023-11-14 22:13 /bin/tool\n",
                           "lrwxrwxrwx 0/0 4 2023-11-14 22:13 /bin/alias -> tool\n",
                           "-rw-r--r-- 0/0 400000 2023-11-14 22:13 /lib/big.bin\n",
                           "lrwxrwxrwx 0/0 11 2023-11-14 22:13 /lib/outside -> /etc/passwd\n",
                           "drwxrwxrwt 0/0 3 2023-11-14 22:13 /tmp\n",
                           "-rw-r--r-- 0/0 0 2023-11-14 22:13 /share/empty\n",
                           "drwxr-xr-x 0/0 3 2023-11-14 22:13 /var/empty-dir\n",
                           "-rw-r--r-- 0/0 13 2023-11-14 22:13 /.envbuild/image.json\n",
                           "-rw-r--r-- 0/0 24 2023-11-14 22:13 /a-b\n"}) {
    SCOPED_TRACE(want);
    EXPECT_NE(listing.find(want), std::string::npos) << listing;
  }
  auto stat = run_command("unsquashfs -s " + q(image));
  EXPECT_NE(stat.output.find("Compression zstd"), std::string::npos) << stat.output;
  EXPECT_NE(stat.output.find("Number of inodes 15"), std::string::npos) << stat.output;
}

TEST_F(SquashfsWriteTest, UnsquashfsExtractsTheSameContent) {
  ENVB_REQUIRE_TOOL("unsquashfs");
  for (Compression c : {Compression::Gzip, Compression::Zstd}) {
    SCOPED_TRACE(std::string(to_string(c)));
    WriteOptions options;
    options.compression = c;
    fs::path image = write(sample_entries(), options, std::string(to_string(c)) + ".sqfs");
    fs::path out = dir_ / ("out-" + std::string(to_string(c)));
    auto r = run_command("unsquashfs -no-xattrs -d " + q(out) + " " + q(image));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(read_text(out / "lib/big.bin"), read_text(dir_ / "src/big.bin"));
    EXPECT_EQ(read_text(out / "bin/tool"), "#!/bin/sh\necho tool\n");
    EXPECT_EQ(read_text(out / ".envbuild/image.json"), "{\"format\":1}\n");
    EXPECT_EQ(fs::read_symlink(out / "bin/alias"), "tool");
    EXPECT_TRUE(fs::is_directory(out / "var/empty-dir"));
  }
}

TEST_F(SquashfsWriteTest, SameEntriesGiveSameBytesWhateverOrderAndThreads) {
  // Given the same entries in two orders, written with 1 and with 4 compression threads, expect
  // one image, byte for byte, for each compressor.
  for (Compression c : {Compression::Gzip, Compression::Zstd}) {
    SCOPED_TRACE(std::string(to_string(c)));
    WriteOptions one;
    one.compression = c;
    one.jobs = 1;
    WriteOptions four = one;
    four.jobs = 4;
    auto entries = sample_entries();
    auto reversed = entries;
    std::reverse(reversed.begin(), reversed.end());
    fs::path a = write(entries, one, "one.sqfs");
    fs::path b = write(reversed, four, "four.sqfs");
    auto ha = common::sha256_file(a.string());
    auto hb = common::sha256_file(b.string());
    ASSERT_TRUE(ha && hb);
    EXPECT_EQ(*ha, *hb);
    EXPECT_EQ(fs::file_size(a) % 4096, 0u);  // padded like mksquashfs's
  }
}

TEST_F(SquashfsWriteTest, TreeEntriesKeepTheirPermissions) {
  ENVB_REQUIRE_TOOL("unsquashfs");
  write_text(dir_ / "tree/bin/x", "x");
  ::chmod((dir_ / "tree/bin/x").c_str(), 04555);  // setuid: dropped
  write_text(dir_ / "tree/share/ro", "ro");
  ::chmod((dir_ / "tree/share/ro").c_str(), 0444);
  fs::create_symlink("x", dir_ / "tree/bin/y");
  auto entries = entries_from_tree(dir_ / "tree");
  ASSERT_TRUE(entries) << entries.error().to_string();
  EXPECT_EQ(entries->size(), 5u);
  fs::path image = write(*entries, {}, "tree.sqfs");
  const std::string listing = listing_of(image);
  EXPECT_NE(listing.find("-r-xr-xr-x 0/0 1 1970-01-01 00:00 /bin/x\n"), std::string::npos)
      << listing;
  EXPECT_NE(listing.find("-r--r--r-- 0/0 2 1970-01-01 00:00 /share/ro\n"), std::string::npos)
      << listing;
  EXPECT_NE(listing.find("/bin/y -> x\n"), std::string::npos) << listing;
}

TEST_F(SquashfsWriteTest, RefusesUnsafeAndConflictingEntries) {
  write_text(dir_ / "f", "f");
  fs::create_directories(dir_ / "d");
  struct Case {
    std::string name;
    std::vector<Entry> entries;
    std::string want;  // in the message
  } cases[] = {
      {"dotdot", {Entry::file_with_content("a/../../etc/x", "")}, "'..'"},
      {"long name", {Entry::file_with_content(std::string(256, 'n'), "")}, "over 255 bytes"},
      {"duplicate",
       {Entry::file_with_content("a", ""), Entry::file_with_content("a", "")},
       "duplicate image path 'a'"},
      {"below a file",
       {Entry::file_with_content("a", ""), Entry::file_with_content("a/b", "")},
       "lies below 'a'"},
      {"below a symlink",
       {Entry::symlink("l", "/etc"), Entry::file_with_content("l/passwd", "")},
       "lies below 'l'"},
      {"empty target", {Entry::symlink("l", "")}, "target"},
      {"root as file", {Entry::file_with_content("./", "")}, "names the image root"},
      {"directory source", {Entry::file("x", dir_ / "d")}, "not a regular file"},
      {"missing source", {Entry::file("x", dir_ / "missing")}, "lstat"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = write_image(c.entries, {}, dir_ / "bad.sqfs");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().to_string().find(c.want), std::string::npos) << r.error().to_string();
    EXPECT_FALSE(fs::exists(dir_ / "bad.sqfs"));
  }
}

}  // namespace
}  // namespace envbuild::squashfs
