#include "common/fs.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string_view>

#include "common/format.hpp"
#include "common/hash.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::common {
namespace {

namespace fs = std::filesystem;
using FsTest = envbuild::testing::TempDirTest;

TEST_F(FsTest, AtomicFileInvisibleUntilCommit) {
  fs::path target = dir_ / "out.txt";
  auto file = AtomicFile::create(target);
  ASSERT_TRUE(file);
  ASSERT_TRUE(file->write("hello"));
  EXPECT_FALSE(fs::exists(target));
  ASSERT_TRUE(file->commit());
  EXPECT_EQ(*read_file(target), "hello");
}

// What --force and staging clean-ups remove: the tree, never what its symlinks point to.
TEST_F(FsTest, RemoveAllNeverFollowsSymlinksBelowThePath) {
  fs::create_directories(dir_ / "victim/sub");
  testing::write_text(dir_ / "victim/sub/keep.txt", "keep");
  fs::create_directories(dir_ / "tree/a/b");
  testing::write_text(dir_ / "tree/a/b/file", "x");
  fs::create_directory_symlink("../../victim", dir_ / "tree/a/link");
  fs::create_directory_symlink(dir_ / "victim/sub", dir_ / "tree/absolute");
  fs::create_directory_symlink(dir_ / "victim", dir_ / "named");
  ASSERT_TRUE(common::remove_all(dir_ / "tree/"));
  ASSERT_TRUE(common::remove_all(dir_ / "named"));  // the symlink named itself goes, not its target
  ASSERT_TRUE(common::remove_all(dir_ / "absent/x"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "tree")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "named")));
  EXPECT_EQ(*read_file(dir_ / "victim/sub/keep.txt"), "keep");
}

TEST_F(FsTest, AtomicFileDiscardedLeavesNothing) {
  {
    auto file = AtomicFile::create(dir_ / "x");
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->write("partial"));
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(FsTest, CommitNoReplaceKeepsFirstWriter) {
  fs::path target = dir_ / "blob";
  auto a = AtomicFile::create(target);
  auto b = AtomicFile::create(target);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->write("same"));
  ASSERT_TRUE(b->write("same"));
  EXPECT_TRUE(*a->commit_no_replace());
  EXPECT_FALSE(*b->commit_no_replace());
  EXPECT_EQ(*read_file(target), "same");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FsTest, ReadMissingFileNamesPath) {
  auto r = read_file(dir_ / "nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::NotFound);
  EXPECT_NE(r.error().to_string().find("nope"), std::string::npos);
}

TEST_F(FsTest, ExclusiveLockExcludesOtherProcess) {
  fs::path lock = dir_ / "lock";
  auto held = FileLock::acquire(lock, LockMode::Exclusive);
  ASSERT_TRUE(held);
  pid_t pid = fork();
  if (pid == 0) {
    auto attempt = FileLock::try_acquire(lock, LockMode::Exclusive);
    _exit(attempt && !attempt->has_value() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(SafeRelativePath, Table) {
  struct Case {
    const char* path;
    bool safe;
  } cases[] = {{"bin/python", true}, {"a/../b", false}, {"..", false},   {"/etc/passwd", false},
               {"", false},          {"a/b/..", false}, {"..a/b", true}, {"lib/..x", true}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    EXPECT_EQ(is_safe_relative_path(c.path), c.safe);
  }
}

TEST(NormalizeEntryPath, Table) {
  struct Case {
    std::string_view path;
    std::optional<std::string> want;  // nullopt: refused
  } cases[] = {{"./a//b/", "a/b"},
               {"bin/python", "bin/python"},
               {".", ""},
               {"", ""},
               {"/etc/x", "etc/x"},
               {"a/./b", "a/b"},
               {"a/../b", std::nullopt},
               {"..", std::nullopt},
               {"..a/b", "..a/b"},
               {std::string_view("a\0b", 3), std::nullopt}};
  for (const auto& c : cases) {
    SCOPED_TRACE(printable(c.path));
    auto got = normalize_entry_path(c.path, "layer");
    if (!c.want) {
      ASSERT_FALSE(got);
      EXPECT_EQ(got.error().code(), Errc::InvalidInput);
      EXPECT_EQ(got.error().message().rfind("layer path", 0), 0u) << got.error().to_string();
      continue;
    }
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, *c.want);
  }
}

TEST(Hash, KnownSha256AndMd5) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Hasher md5(HashAlgorithm::Md5);
  md5.update("abc");
  EXPECT_EQ(md5.hex_digest(), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_TRUE(is_lower_hex("00ff", 4));
  EXPECT_FALSE(is_lower_hex("00FF", 4));
}

}  // namespace
}  // namespace envbuild::common
