// The HTTP client against hostile servers on 127.0.0.1 (tests/testing/hostile_server.py), the
// channel side of issue 16: credentials in the URL (user:pass@, a conda /t/<token>/) and from
// ~/.netrc go to their own host only when a server redirects elsewhere; no redirect leaves
// https for plain http; a server that trickles headers or body bytes fails the request within
// its deadlines instead of stalling it. Each test runs under a watchdog, and a second server
// (127.0.0.2, "another host") records every request so the test can check a sentinel secret
// never reached it.

#include <gtest/gtest.h>

#include <chrono>

#include "common/http.hpp"
#include "tests/testing/hostile_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::common {
namespace {

using envbuild::testing::HostileServer;
using envbuild::testing::Watchdog;

constexpr const char* kSentinel = "SENTINEL-c6f1d0";

class HttpHostileTest : public envbuild::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ENVB_REQUIRE_TOOL("python3");
  }
  // Fast retries; deadlines short enough for a test, long enough for a busy machine.
  static HttpOptions quick() {
    HttpOptions o;
    o.initial_backoff = std::chrono::milliseconds(10);
    o.max_retries = 1;
    o.use_netrc = false;
    o.header_timeout = std::chrono::seconds(2);
    o.progress_window = std::chrono::seconds(2);
    o.progress_min_bytes = 1024;
    o.metadata_timeout = std::chrono::seconds(4);
    return o;
  }
  // The collector stands for another host: it must never see the sentinel.
  void expect_clean(const HostileServer& other) {
    EXPECT_EQ(other.authorized_requests(), 0u) << other.transcript();
    EXPECT_EQ(other.transcript().find(kSentinel), std::string::npos) << other.transcript();
  }
};

TEST_F(HttpHostileTest, UrlCredentialsStayWithTheirOriginAcrossRedirects) {
  Watchdog watchdog(std::chrono::seconds(60), "redirect test");
  HostileServer other(dir_, "other", {}, "127.0.0.2");
  ASSERT_NE(other.port(), 0);
  // Another port of the same host is another origin too.
  HostileServer other_port(dir_, "other-port", {});
  ASSERT_NE(other_port.port(), 0);
  for (const HostileServer* target : {&other, &other_port}) {
    HostileServer channel(dir_, "channel", {"--redirect", target->url() + "/elsewhere.json"});
    ASSERT_NE(channel.port(), 0);
    HttpClient client(quick());
    StringSink sink;
    const std::string base = "http://alice:" + std::string(kSentinel) + "@" + channel.host();
    for (const std::string& url : {base + "/chan/noarch/repodata.json",
                                   channel.url() + "/t/" + kSentinel + "/chan/noarch/x.conda"}) {
      auto r = client.send(http_get(url), sink);
      ASSERT_TRUE(r) << r.error().to_string();
      EXPECT_EQ(r->effective_url, target->url() + "/elsewhere.json");
    }
    ASSERT_GE(channel.requests().size(), 2u);
    EXPECT_NE(channel.transcript().find(kSentinel), std::string::npos);  // its own: fine
  }
  expect_clean(other);
  expect_clean(other_port);
  EXPECT_EQ(other.requests().size(), 2u);
}

TEST_F(HttpHostileTest, ARedirectToTheSameOriginKeepsTheCredentials) {
  Watchdog watchdog(std::chrono::seconds(60), "same-origin redirect test");
  HostileServer channel(dir_, "channel", {"--redirect", "/final", "--redirect-match", "/start"});
  ASSERT_NE(channel.port(), 0);
  HttpClient client(quick());
  StringSink sink;
  auto r = client.send(
      http_get("http://alice:" + std::string(kSentinel) + "@" + channel.host() + "/start"), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  auto requests = channel.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1]["path"], "/final");
  EXPECT_EQ(requests[1]["basic"], "alice:" + std::string(kSentinel));
}

TEST_F(HttpHostileTest, NetrcCredentialsGoOnlyToTheirHost) {
  Watchdog watchdog(std::chrono::seconds(60), "netrc test");
  HostileServer other(dir_, "other", {}, "127.0.0.2");
  ASSERT_NE(other.port(), 0);
  HostileServer channel(dir_, "channel", {"--redirect", other.url() + "/x.conda"});
  ASSERT_NE(channel.port(), 0);
  envbuild::testing::write_text(
      dir_ / "netrc", "machine 127.0.0.1 login alice password " + std::string(kSentinel) + "\n");
  HttpOptions o = quick();
  o.use_netrc = true;
  o.netrc_file = (dir_ / "netrc").string();
  HttpClient client(o);
  StringSink sink;
  auto r = client.send(http_get(channel.url() + "/chan/linux-64/x.conda"), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(channel.requests().at(0)["basic"], "alice:" + std::string(kSentinel));
  expect_clean(other);
  EXPECT_EQ(other.requests().size(), 1u);
}

TEST_F(HttpHostileTest, NoRedirectLeavesHttpsForPlainHttp) {
  ENVB_REQUIRE_TOOL("openssl");
  Watchdog watchdog(std::chrono::seconds(60), "downgrade test");
  ASSERT_EQ(envbuild::testing::make_localhost_certificate(dir_), "");
  HostileServer plain(dir_, "plain", {});
  ASSERT_NE(plain.port(), 0);
  HostileServer channel(dir_, "channel",
                        {"--redirect", plain.url() + "/repodata.json", "--tls",
                         (dir_ / "cert.pem").string(), (dir_ / "key.pem").string()},
                        "127.0.0.1", /*tls=*/true);
  ASSERT_NE(channel.port(), 0);
  HttpOptions o = quick();
  o.tls.ca_file = (dir_ / "cert.pem").string();
  HttpClient client(o);
  StringSink sink;
  auto r = client.send(
      http_get("https://alice:" + std::string(kSentinel) + "@" + channel.host() + "/repodata.json"),
      sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Network);
  EXPECT_FALSE(r.error().retryable());
  EXPECT_NE(r.error().message().find("refusing to leave https for plain http"), std::string::npos)
      << r.error().to_string();
  EXPECT_EQ(r.error().to_string().find(kSentinel), std::string::npos);
  EXPECT_TRUE(plain.requests().empty()) << plain.transcript();
}

TEST_F(HttpHostileTest, TricklingHeadersMissTheirDeadline) {
  Watchdog watchdog(std::chrono::seconds(60), "trickling headers");
  HostileServer channel(dir_, "channel", {"--trickle-headers", "0.3"});
  ASSERT_NE(channel.port(), 0);
  HttpClient client(quick());
  StringSink sink;
  auto r = client.send(http_get(channel.url() + "/chan/noarch/repodata.json"), sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Network);
  EXPECT_TRUE(r.error().retryable());
  EXPECT_NE(r.error().message().find("no response headers within 2 s (after 2 attempts)"),
            std::string::npos)
      << r.error().to_string();
  EXPECT_EQ(channel.requests().size(), 2u);  // the retry policy counted the miss
}

TEST_F(HttpHostileTest, ATricklingBodyMissesTheProgressWindow) {
  Watchdog watchdog(std::chrono::seconds(60), "trickling body");
  // Three bytes a second: far more than curl's old low-speed limit of one byte a second over a
  // minute needed, far less than the 1 KiB per window asked here.
  HostileServer channel(dir_, "channel", {"--trickle-body", "0.3"});
  ASSERT_NE(channel.port(), 0);
  HttpOptions o = quick();
  o.metadata_timeout = std::chrono::seconds(3600);
  HttpClient client(o);
  StringSink sink;
  auto r = client.send(http_get(channel.url() + "/chan/linux-64/big.conda"), sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Network);
  EXPECT_NE(r.error().message().find("stalled: "), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message().find("at least 1024 expected"), std::string::npos);
}

TEST_F(HttpHostileTest, AMetadataRequestEndsWithinItsTotalDeadline) {
  Watchdog watchdog(std::chrono::seconds(60), "endless metadata");
  // Fast enough for every progress window, but the document never ends.
  HostileServer channel(dir_, "channel", {"--trickle-body", "0.0005"});
  ASSERT_NE(channel.port(), 0);
  HttpOptions o = quick();
  o.progress_min_bytes = 16;
  o.max_retries = 0;
  HttpClient client(o);
  HttpRequest request = http_get(channel.url() + "/chan/noarch/repodata.json");
  request.metadata = true;
  StringSink sink;
  auto r = client.send(request, sink);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("no complete answer within 4 s"), std::string::npos)
      << r.error().to_string();
  EXPECT_GT(sink.out.size(), 16u);
}

}  // namespace
}  // namespace envbuild::common
