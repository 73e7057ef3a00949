// `envbuild solve` against hostile channel servers on 127.0.0.1, end to end through the CLI
// (issue 16, classes 4 and 11): a channel that redirects its repodata to another host does not
// hand it the channel's user:password, and a channel that trickles its repodata ends the command
// with exit code 6 and a message naming the request and the deadline, within the deadlines that
// ENVBUILD_HTTP_TIMEOUTS sets. Each test runs under a watchdog.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/testing/hostile_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

using testing::HostileServer;
using testing::shell_quote;
using testing::Watchdog;

constexpr const char* kSentinel = "CHANNEL-SENTINEL-90e3";

class ChannelHostileTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ENVB_REQUIRE_TOOL("python3");
  }
  // `envbuild solve probe` from `channel`, with short deadlines and its own caches.
  testing::CommandResult solve(const std::string& channel) {
    return testing::run_command(
        "HOME=" + shell_quote(dir_.string()) +
        " ENVBUILD_HTTP_TIMEOUTS=headers=2,window=2,min_bytes=1024,retries=1,backoff_ms=10 " +
        shell_quote((testing::binary_dir() / "envbuild").string()) + " solve -p linux-64 -c " +
        shell_quote(channel) + " --cache-dir " + shell_quote((dir_ / "cache").string()) +
        " probe 2>&1");
  }
};

TEST_F(ChannelHostileTest, ARepodataRedirectToAnotherHostGetsNoCredentials) {
  Watchdog watchdog(std::chrono::seconds(120), "channel redirect");
  HostileServer other(dir_, "other", {}, "127.0.0.2");
  ASSERT_NE(other.port(), 0);
  HostileServer channel(dir_, "channel", {"--redirect", other.url() + "/repodata.json"});
  ASSERT_NE(channel.port(), 0);
  auto r = solve("http://alice:" + std::string(kSentinel) + "@" + channel.host() + "/chan");
  EXPECT_NE(r.exit_code, 0) << r.output;  // the other host's "{}" holds no package
  EXPECT_EQ(r.output.find(kSentinel), std::string::npos) << r.output;
  EXPECT_FALSE(other.requests().empty()) << r.output;
  EXPECT_EQ(other.authorized_requests(), 0u) << other.transcript();
  EXPECT_EQ(other.transcript().find(kSentinel), std::string::npos) << other.transcript();
}

TEST_F(ChannelHostileTest, ATricklingChannelEndsTheSolveWithExitCode6) {
  Watchdog watchdog(std::chrono::seconds(120), "trickling channel");
  HostileServer channel(dir_, "channel", {"--trickle-body", "0.3", "--missing", ".zst"});
  ASSERT_NE(channel.port(), 0);
  auto r = solve("http://alice:" + std::string(kSentinel) + "@" + channel.host() + "/chan");
  EXPECT_EQ(r.exit_code, 6) << r.output;
  EXPECT_NE(r.output.find("repodata.json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stalled"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kSentinel), std::string::npos) << r.output;
}

}  // namespace
}  // namespace envbuild::builder
