// squashfs/reader on images from our writer and from mksquashfs, and on hostile ones: truncated,
// with a damaged superblock, with names that try to leave the tree, with a symlink where a
// directory of the same name follows, nested too deep. Extraction never writes outside its root.

#include "squashfs/reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "squashfs/writer.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::squashfs {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

using testing::q;

std::string bytes_of(const fs::path& p) {
  return read_text(p);
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  write_text(p, bytes);
}

/// Replaces every occurrence of `from` with `to` (same length) in the file.
size_t patch(const fs::path& p, const std::string& from, const std::string& to) {
  std::string data = bytes_of(p);
  size_t n = 0;
  for (size_t pos = 0; (pos = data.find(from, pos)) != std::string::npos; pos += from.size(), ++n)
    data.replace(pos, from.size(), to);
  write_bytes(p, data);
  return n;
}

class SquashfsReadTest : public testing::TempDirTest {
 protected:
  fs::path our_image() {
    write_text(dir_ / "src/big", std::string(300000, 'b') + "end");
    std::vector<Entry> entries = {
        Entry::file("lib/big", dir_ / "src/big"),
        Entry::file_with_content("bin/tool", "#!/bin/sh\n"),
        Entry::file_with_content(".envbuild/image.json", "{}"),
        Entry::symlink("bin/alias", "tool"),
        Entry::symlink("escape", "/etc"),
        Entry::directory("empty"),
    };
    entries[1].mode = 0755;
    fs::path image = dir_ / "ours.sqfs";
    auto r = write_image(entries, {}, image);
    EXPECT_TRUE(r) << r.error().to_string();
    return image;
  }

  /// An image made by mksquashfs with uncompressed metadata, so names can be patched in place.
  fs::path mksquashfs_image(const fs::path& tree, const std::string& name,
                            const std::string& extra = "-noI -noD -noF") {
    fs::path image = dir_ / name;
    auto r = run_command("mksquashfs " + q(tree) + " " + q(image) +
                         " -quiet -no-progress -noappend -no-xattrs -all-root " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return image;
  }

  Result<ExtractStats> extract(const fs::path& image, const fs::path& dest,
                               const ReadLimits& limits = {}) {
    fs::create_directories(dest);
    ENVB_ASSIGN_OR_RETURN(Reader reader, Reader::open(image, limits));
    ENVB_ASSIGN_OR_RETURN(common::RootDir root, common::RootDir::open(dest));
    return reader.extract(root);
  }
};

TEST_F(SquashfsReadTest, ExtractsWhatTheWriterWrote) {
  fs::path image = our_image();
  auto stats = extract(image, dir_ / "out");
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(stats->files, 3u);
  EXPECT_EQ(stats->symlinks, 2u);
  EXPECT_EQ(stats->directories, 4u);  // lib bin .envbuild empty
  EXPECT_EQ(read_text(dir_ / "out/lib/big"), read_text(dir_ / "src/big"));
  EXPECT_EQ(fs::read_symlink(dir_ / "out/escape"), "/etc");  // made as data, never followed
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "out/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(SquashfsReadTest, WalksAndReadsFilesByPath) {
  auto reader = Reader::open(our_image());
  ASSERT_TRUE(reader) << reader.error().to_string();
  EXPECT_EQ(reader->summary().compression, "zstd");
  std::vector<std::string> paths;
  auto walked = reader->walk([&](const EntryInfo& e) -> Result<void> {
    paths.push_back(e.path + (e.kind == EntryInfo::Kind::Symlink ? " -> " + e.target : ""));
    return ok();
  });
  ASSERT_TRUE(walked) << walked.error().to_string();
  EXPECT_EQ(paths, (std::vector<std::string>{".envbuild", "bin", "empty", "escape -> /etc", "lib",
                                             ".envbuild/image.json", "bin/alias -> tool",
                                             "bin/tool", "lib/big"}));
  auto json = reader->read_file(".envbuild/image.json", 1024);
  ASSERT_TRUE(json) << json.error().to_string();
  EXPECT_EQ(json->value_or("?"), "{}");
  EXPECT_EQ(reader->read_file("missing", 10).value(), std::nullopt);
  EXPECT_EQ(reader->read_file("escape/passwd", 10).value(), std::nullopt);  // not followed
  EXPECT_EQ(reader->read_file("bin", 10).value(), std::nullopt);            // a directory
  auto too_big = reader->read_file("lib/big", 1000);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), Errc::Integrity);
}

TEST_F(SquashfsReadTest, ReadsMksquashfsImagesOfEveryCompressorWeSupport) {
  ENVB_REQUIRE_TOOL("mksquashfs");
  write_text(dir_ / "tree/a/b/c.txt", "nested\n");
  write_text(dir_ / "tree/big", std::string(1 << 20, 'z'));
  for (std::string comp : {"gzip", "xz", "zstd", "lz4"}) {
    SCOPED_TRACE(comp);
    fs::path image = mksquashfs_image(dir_ / "tree", comp + ".sqfs", "-comp " + comp);
    auto stats = extract(image, dir_ / ("out-" + comp));
    ASSERT_TRUE(stats) << stats.error().to_string();
    EXPECT_EQ(read_text(dir_ / ("out-" + comp) / "a/b/c.txt"), "nested\n");
    EXPECT_EQ(fs::file_size(dir_ / ("out-" + comp) / "big"), 1u << 20);
  }
}

TEST_F(SquashfsReadTest, TruncatedImagesAreIntegrityErrors) {
  fs::path image = our_image();
  const std::string data = bytes_of(image);
  auto reader = Reader::open(image);
  ASSERT_TRUE(reader) << reader.error().to_string();
  const size_t used = reader->summary().bytes_used;  // the rest is padding
  for (size_t size : {size_t{0}, size_t{4}, size_t{95}, size_t{96}, used / 3, used / 2, used - 1}) {
    SCOPED_TRACE(size);
    fs::path cut = dir_ / "cut.sqfs";
    write_bytes(cut, data.substr(0, size));
    fs::remove_all(dir_ / "out");
    auto r = extract(cut, dir_ / "out");
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().code() == Errc::Integrity) << r.error().to_string();
  }
}

TEST_F(SquashfsReadTest, DamagedSuperblocksAreRefusedBeforeAnyTableIsRead) {
  fs::path image = our_image();
  const std::string good = bytes_of(image);
  struct Case {
    std::string name;
    size_t offset;
    std::string bytes;  // little endian
  } cases[] = {
      {"magic", 0, "hsqt"},
      {"version", 28, std::string("\x05\x00", 2)},
      {"inode count zero", 4, std::string(4, '\0')},
      {"inode count huge", 4, "\xff\xff\xff\x7f"},
      {"fragments huge", 16, "\xff\xff\xff\x7f"},
      {"block size", 12, std::string("\x00\x10\x00\x01", 4)},
      {"block log", 22, std::string("\x0c\x00", 2)},
      {"bytes used beyond the file", 40, std::string("\x00\x00\x00\x00\x01\x00\x00\x00", 8)},
      {"inode table after directories", 64, std::string("\xff\xff\xff\x00\x00\x00\x00\x00", 8)},
      {"id table at the start", 48, std::string("\x10\x00\x00\x00\x00\x00\x00\x00", 8)},
      {"root inode outside", 32, std::string("\x00\x00\xff\xff\x00\x00\x00\x00", 8)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string data = good;
    data.replace(c.offset, c.bytes.size(), c.bytes);
    fs::path bad = dir_ / "bad.sqfs";
    write_bytes(bad, data);
    auto r = Reader::open(bad);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().code() == Errc::Integrity || r.error().code() == Errc::Unsupported)
        << r.error().to_string();
  }
}

TEST_F(SquashfsReadTest, NamesThatLeaveTheTreeAreRefused) {
  ENVB_REQUIRE_TOOL("mksquashfs");
  // Given entries named "zq" and "zzzz" patched (in the uncompressed directory table) into ".."
  // and "x/zz", expect an Integrity error and nothing written outside the extraction root.
  write_text(dir_ / "tree/zq", "dotdot\n");
  write_text(dir_ / "tree/zzzz", "slash\n");
  fs::path image = mksquashfs_image(dir_ / "tree", "names.sqfs");
  struct Case {
    std::string from, to;
  } cases[] = {{"zq", ".."}, {"zzzz", "x/zz"}, {"zzzz", "./zz"}, {"zq", "/z"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.to);
    fs::path bad = dir_ / "bad.sqfs";
    fs::copy_file(image, bad, fs::copy_options::overwrite_existing);
    ASSERT_GE(patch(bad, c.from, c.to), 1u);
    fs::remove_all(dir_ / "root");
    auto r = extract(bad, dir_ / "root/out");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::Integrity) << r.error().to_string();
    EXPECT_FALSE(fs::exists(dir_ / "root/zz"));
    EXPECT_FALSE(fs::exists(dir_ / "root/x"));
  }
}

TEST_F(SquashfsReadTest, ASymlinkFollowedByADirectoryOfTheSameNameIsNeverWrittenThrough) {
  ENVB_REQUIRE_TOOL("mksquashfs");
  // Given "aaaa -> <sentinel>" and a directory "aaab/" holding a file, with "aaab" patched into
  // "aaaa" (the listing then names aaaa twice), expect an error and the sentinel untouched.
  fs::path sentinel = dir_ / "sentinel";
  fs::create_directories(sentinel);
  fs::create_directories(dir_ / "tree");
  fs::create_symlink(sentinel, dir_ / "tree/aaaa");
  write_text(dir_ / "tree/aaab/planted", "planted\n");
  fs::path image = mksquashfs_image(dir_ / "tree", "symlink.sqfs");
  ASSERT_GE(patch(image, "aaab", "aaaa"), 1u);
  auto r = extract(image, dir_ / "out");
  ASSERT_FALSE(r);
  EXPECT_TRUE(fs::is_empty(sentinel));
  EXPECT_TRUE(fs::is_symlink(dir_ / "out/aaaa"));
}

TEST_F(SquashfsReadTest, DepthEntriesAndSizesAreBounded) {
  fs::path deep = dir_ / "deep";
  std::string path;
  for (int i = 0; i < 20; ++i) path += "d/";
  std::vector<Entry> entries = {Entry::file_with_content(path + "leaf", "leaf"),
                                Entry::file_with_content("big", std::string(5000, 'x'))};
  fs::path image = dir_ / "deep.sqfs";
  ASSERT_TRUE(write_image(entries, {}, image));
  struct Case {
    std::string name;
    ReadLimits limits;
  } cases[] = {
      {"depth", {.max_depth = 10}},
      {"entries", {.max_entries = 5}},
      {"file size", {.max_file_size = 4096}},
      {"total size", {.max_total_size = 4096}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(dir_ / "out");
    auto r = extract(image, dir_ / "out", c.limits);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::Integrity) << r.error().to_string();
  }
  fs::remove_all(dir_ / "out");
  EXPECT_TRUE(extract(image, dir_ / "out"));
}

TEST_F(SquashfsReadTest, FifosAndSymlinksToDevicesAreNotFollowedOrOpened) {
  // A regular file is what Reader::open wants: a FIFO is refused at once, not waited on.
  fs::path fifo = dir_ / "fifo.sqfs";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = Reader::open(fifo);
  ASSERT_FALSE(r);
  EXPECT_FALSE(has_squashfs_magic(fifo));
  EXPECT_FALSE(has_squashfs_magic("/dev/zero"));
  EXPECT_TRUE(has_squashfs_magic(our_image()));
}

}  // namespace
}  // namespace envbuild::squashfs
