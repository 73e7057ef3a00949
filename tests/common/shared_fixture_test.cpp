// shared_fixture() (tests/testing): the fixture the test processes of a run share is made once
// however many processes ask at once, made again for other inputs, and never marked done when
// making it failed.

#include "tests/testing/shared_fixture.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {
namespace {

namespace fs = std::filesystem;

class SharedFixtureTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    name_ = "shared-fixture-test-" + std::to_string(::getpid());
    makes_ = dir_ / "makes";
  }
  void TearDown() override {
    fs::remove_all(fixtures_dir() / name_);
    TempDirTest::TearDown();
  }
  // A fixture that records each time it is made in makes_ (one line per make).
  Result<fs::path> fixture(const std::string& inputs, bool fails = false) {
    return shared_fixture(name_, inputs, [&](const fs::path& dir) -> Result<void> {
      write_text(dir / "made-from", inputs);
      run_command("echo made >> " + shell_quote(makes_.string()));
      if (fails) return fail(Errc::Internal, "the recipe failed");
      return ok();
    });
  }
  size_t makes() const {
    const std::string text = read_text(makes_);
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }

  std::string name_;
  fs::path makes_;
};

TEST_F(SharedFixtureTest, ProcessesAskingAtOnceShareOneMake) {
  std::vector<pid_t> children;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(fixture("v1") ? 0 : 1);
    children.push_back(pid);
  }
  auto dir = fixture("v1");
  ASSERT_TRUE(dir) << dir.error().to_string();
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(makes(), 1u);
  EXPECT_EQ(read_text(*dir / "made-from"), "v1");
}

TEST_F(SharedFixtureTest, OtherInputsMakeItAgainAndRemoveTheOldOne) {
  auto v1 = fixture("v1");
  ASSERT_TRUE(v1) << v1.error().to_string();
  auto v2 = fixture("v2");
  ASSERT_TRUE(v2) << v2.error().to_string();
  EXPECT_NE(*v1, *v2);
  EXPECT_FALSE(fs::exists(*v1));
  EXPECT_EQ(read_text(*v2 / "made-from"), "v2");
  EXPECT_EQ(makes(), 2u);
}

TEST_F(SharedFixtureTest, AFailedMakeIsTriedAgainByTheNextCaller) {
  auto failed = fixture("v1", /*fails=*/true);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().to_string().find("the recipe failed"), std::string::npos)
      << failed.error().to_string();
  auto made = fixture("v1");
  ASSERT_TRUE(made) << made.error().to_string();
  EXPECT_EQ(makes(), 2u);
}

}  // namespace
}  // namespace envbuild::testing
