#include "common/root_dir.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testing/testing.hpp"

namespace envbuild::common {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::read_text;
using envbuild::testing::write_text;

/// Every test runs twice: with openat2 (where the kernel has it) and with the walk.
class RootDirTest : public envbuild::testing::TempDirTest,
                    public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    use_openat2_for_testing(GetParam());
    fs::create_directories(dir_ / "root/real/sub");
    fs::create_directories(dir_ / "outside");
    write_text(dir_ / "outside/victim", "precious");
    write_text(dir_ / "root/real/file", "inside");
    fs::create_directory_symlink(dir_ / "outside", dir_ / "root/abs");
    fs::create_directory_symlink("../outside", dir_ / "root/rel");
    fs::create_directory_symlink("real", dir_ / "root/inner");  // even pointing inside
    fs::create_symlink(dir_ / "outside/victim", dir_ / "root/real/link");
    fs::create_symlink("/dev/zero", dir_ / "root/zero");
    ASSERT_EQ(::mkfifo((dir_ / "root/real/fifo").c_str(), 0644), 0);
    auto root = RootDir::open(dir_ / "root");
    ASSERT_TRUE(root) << root.error().to_string();
    root_.emplace(std::move(*root));
  }
  void TearDown() override {
    use_openat2_for_testing(true);
    root_.reset();
    TempDirTest::TearDown();
  }
  void expect_outside_untouched() {
    EXPECT_EQ(read_text(dir_ / "outside/victim"), "precious");
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ / "outside")) ++n;
    EXPECT_EQ(n, 1u);
  }
  std::optional<RootDir> root_;
};

INSTANTIATE_TEST_SUITE_P(Resolve, RootDirTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "openat2" : "walk"; });

TEST_P(RootDirTest, RefusesEveryWayOut) {
  struct Case {
    std::string_view path;
    std::string_view why;  // in the message
  };
  const Case cases[] = {
      {"abs/victim", "symlink"},
      {"rel/victim", "symlink"},
      {"inner/file", "symlink"},
      {"real/link", "symlink"},
      {"zero", "symlink"},
      {"../outside/victim", "'..'"},
      {"real/../../outside/victim", "'..'"},
      {"/etc/passwd", "absolute"},
      {std::string_view("real/\0x", 7), "NUL"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.path));
    for (int flags : {O_RDONLY, O_RDWR | O_TRUNC}) {
      auto fd = root_->open_file(c.path, flags);
      ASSERT_FALSE(fd);
      EXPECT_EQ(fd.error().code(), Errc::Integrity) << fd.error().to_string();
      EXPECT_NE(fd.error().to_string().find(c.why), std::string::npos) << fd.error().to_string();
    }
    EXPECT_FALSE(root_->read_regular(c.path));
    EXPECT_FALSE(root_->open_file(c.path, O_WRONLY | O_CREAT | O_TRUNC));
  }
  // Creating below a symlinked directory neither follows it nor replaces it.
  EXPECT_FALSE(root_->open_dir("abs/new", CreateDirs::Yes));
  EXPECT_FALSE(root_->write_atomic("abs/victim", "owned"));
  EXPECT_FALSE(root_->make_dir("rel/new"));
  EXPECT_FALSE(root_->subdir("inner"));
  expect_outside_untouched();
}

TEST_P(RootDirTest, ReadsOnlyRegularFilesAndNeverBlocks) {
  auto fifo = root_->read_regular("real/fifo");
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().to_string().find("FIFO"), std::string::npos) << fifo.error().to_string();
  auto dir = root_->read_regular("real");
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().to_string().find("directory"), std::string::npos);
  auto absent = root_->read_regular("real/none");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->has_value());
  auto file = root_->read_regular("real/file");
  ASSERT_TRUE(file && file->has_value());
  EXPECT_EQ(**file, "inside");
  auto big = root_->read_regular("real/file", 3);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Errc::Integrity);
  // The trusted-name reader refuses the same things.
  EXPECT_FALSE(read_file(dir_ / "root/real/fifo"));
  EXPECT_FALSE(read_file(dir_ / "root/zero"));
  EXPECT_FALSE(open_regular_file("/dev/zero"));
}

TEST_P(RootDirTest, WritesReplaceSymlinksInsteadOfFollowingThem) {
  ASSERT_TRUE(root_->write_atomic("real/link", "new"));
  EXPECT_FALSE(fs::is_symlink(dir_ / "root/real/link"));
  EXPECT_EQ(read_text(dir_ / "root/real/link"), "new");
  ASSERT_TRUE(root_->write_atomic("abs", "file now"));
  EXPECT_FALSE(fs::is_symlink(dir_ / "root/abs"));
  expect_outside_untouched();
}

TEST_P(RootDirTest, RemoveAllStaysInside) {
  ASSERT_TRUE(root_->remove_all("abs"));
  ASSERT_TRUE(root_->remove_all("real"));
  ASSERT_TRUE(root_->remove_all("missing"));
  EXPECT_FALSE(fs::exists(dir_ / "root/real"));
  EXPECT_FALSE(fs::is_symlink(dir_ / "root/abs"));
  EXPECT_FALSE(root_->remove_all("rel/victim"));  // through a symlink: refused, not followed
  expect_outside_untouched();
}

TEST_P(RootDirTest, RemovesDirectoriesWithoutPermissions) {
  ASSERT_TRUE(root_->make_dir("locked"));
  write_text(dir_ / "root/locked/f", "x");
  ASSERT_EQ(::chmod((dir_ / "root/locked").c_str(), 0500), 0);
  ASSERT_TRUE(root_->remove_all("locked"));
  EXPECT_FALSE(fs::exists(dir_ / "root/locked"));
}

TEST_P(RootDirTest, StatReportsSymlinksAndRefusesToPassThem) {
  auto link = root_->stat("abs");
  ASSERT_TRUE(link && link->has_value());
  EXPECT_TRUE(S_ISLNK((*link)->st_mode));
  EXPECT_FALSE(root_->stat("abs/victim"));
  auto missing = root_->stat("real/none/deeper");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
}

TEST_P(RootDirTest, CreatesAndRenamesBeneathRoots) {
  ASSERT_TRUE(root_->open_dir("made/a/b", CreateDirs::Yes));
  EXPECT_TRUE(fs::is_directory(dir_ / "root/made/a/b"));
  fs::create_directories(dir_ / "other");
  auto other = RootDir::open(dir_ / "other");
  ASSERT_TRUE(other);
  ASSERT_TRUE(rename_beneath(*root_, "made/a", *other, "moved"));
  EXPECT_TRUE(fs::is_directory(dir_ / "other/moved/b"));
  // The source's parent is resolved without following: a symlinked parent is refused.
  EXPECT_FALSE(rename_beneath(*root_, "abs/victim", *other, "stolen"));
  auto names = root_->list("");
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"abs", "inner", "made", "real", "rel", "zero"}));
  expect_outside_untouched();
}

}  // namespace
}  // namespace envbuild::common
