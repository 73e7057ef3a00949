#include "common/http.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::common {
namespace {

using envbuild::testing::RepoServer;
using envbuild::testing::TempDirTest;
using envbuild::testing::write_text;

struct CurlGlobal : ::testing::Environment {
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void TearDown() override { curl_global_cleanup(); }
};
[[maybe_unused]] auto* const kCurl = ::testing::AddGlobalTestEnvironment(new CurlGlobal);

TEST(RedactUrl, HidesEverySecret) {
  struct Case {
    const char* in;
    const char* want;
  } cases[] = {
      {"https://conda.anaconda.org/conda-forge", "https://conda.anaconda.org/conda-forge"},
      {"https://user:s3cret@host/x", "https://user:***@host/x"},
      {"https://tok@host/x", "https://***@host/x"},
      {"https://conda.anaconda.org/t/abc-123/chan/noarch/repodata.json",
       "https://conda.anaconda.org/t/***/chan/noarch/repodata.json"},
      {"https://host/x?token=abc&b=1", "https://host/x?token=***&b=1"},
      {"https://host/x?a=1&password=p", "https://host/x?a=1&password=***"},
      {"file:///tmp/ch/noarch", "file:///tmp/ch/noarch"},
      {"https://u:p@host/t/tok/x?sig=zz", "https://u:***@host/t/***/x?sig=***"},
  };
  for (const auto& c : cases) EXPECT_EQ(redact_url(c.in), c.want) << c.in;
}

TEST(RetryAfter, SecondsAndDates) {
  auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  EXPECT_EQ(parse_retry_after("3", now), std::chrono::seconds(3));
  EXPECT_EQ(parse_retry_after("", now), std::chrono::milliseconds(0));
  EXPECT_EQ(parse_retry_after("garbage", now), std::chrono::milliseconds(0));
  // 1700000010 = Tue, 14 Nov 2023 22:13:30 GMT
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), std::chrono::seconds(10));
}

class HttpTest : public TempDirTest {
 protected:
  HttpOptions fast() {
    HttpOptions o;
    o.initial_backoff = std::chrono::milliseconds(5);
    o.max_backoff = std::chrono::milliseconds(50);
    o.use_netrc = false;
    return o;
  }
};

TEST_F(HttpTest, FileUrlsWithConditionalRequests) {
  write_text(dir_ / "a.json", "{\"x\": 1}");
  HttpClient client(fast());
  StringSink sink;
  auto r = client.send(http_get("file://" + (dir_ / "a.json").string()), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(sink.out, "{\"x\": 1}");
  ASSERT_FALSE(r->etag.empty());
  StringSink again;
  auto r2 = client.send(
      http_get("file://" + (dir_ / "a.json").string(), {{"If-None-Match", r->etag}}), again);
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->not_modified());
  EXPECT_TRUE(again.out.empty());
  auto missing = client.send(http_get("file://" + (dir_ / "nope.json").string()), sink);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_NE(missing.error().to_string().find("nope.json"), std::string::npos);
}

TEST_F(HttpTest, EtagThen304AndKeepAlive) {
  write_text(dir_ / "root/f.txt", std::string(100'000, 'x'));
  RepoServer server(dir_ / "root", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  HttpClient client(fast());
  StringSink sink;
  auto r = client.send(http_get(server.url() + "/f.txt"), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body_bytes, 100'000u);
  EXPECT_EQ(r->http_version, "1.1");
  ASSERT_FALSE(r->etag.empty());
  ASSERT_FALSE(r->last_modified.empty());
  StringSink empty;
  auto r2 = client.send(http_get(server.url() + "/f.txt", {{"If-None-Match", r->etag}}), empty);
  ASSERT_TRUE(r2) << r2.error().to_string();
  EXPECT_EQ(r2->status, 304);
  EXPECT_EQ(r2->body_bytes, 0u);
  EXPECT_TRUE(empty.out.empty());
  auto lines = server.log_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("\"status\": 304"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"body_bytes\": 0"), std::string::npos) << lines[1];
}

TEST_F(HttpTest, Retries503ThenSucceeds) {
  write_text(dir_ / "root/f.txt", "hello");
  RepoServer server(dir_ / "root", dir_, /*fail_first=*/2);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  HttpClient client(fast());
  StringSink sink;
  auto r = client.send(http_get(server.url() + "/f.txt"), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(sink.out, "hello");  // the 503 bodies never reach the sink
}

TEST_F(HttpTest, GivesUpAfterMaxRetriesWithAClearError) {
  write_text(dir_ / "root/f.txt", "hello");
  RepoServer server(dir_ / "root", dir_, /*fail_first=*/100);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  auto options = fast();
  options.max_retries = 2;
  HttpClient client(options);
  StringSink sink;
  auto r = client.send(http_get(server.url() + "/t/SECRET/f.txt"), sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Network);
  EXPECT_TRUE(r.error().retryable());
  std::string msg = r.error().to_string();
  EXPECT_NE(msg.find("GET http://127.0.0.1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("503 Service Unavailable"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
  EXPECT_EQ(server.log_lines().size(), 3u);
}

TEST_F(HttpTest, NotFoundAndUnauthorizedAreTyped) {
  write_text(dir_ / "root/f.txt", "hello");
  RepoServer server(dir_ / "root", dir_, 0, "alice:pw");
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  HttpClient client(fast());
  StringSink sink;
  auto denied = client.send(http_get(server.url() + "/f.txt"), sink);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), Errc::Unauthorized);
  std::string with_creds = "http://alice:pw@127.0.0.1:" + std::to_string(server.port());
  auto r = client.send(http_get(with_creds + "/f.txt"), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(sink.out, "hello");
  auto wrong = client.send(
      http_get("http://alice:WRONGPW@127.0.0.1:" + std::to_string(server.port()) + "/f.txt"), sink);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().to_string().find("WRONGPW"), std::string::npos);
  auto missing = client.send(http_get(with_creds + "/nope"), sink);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_NE(missing.error().to_string().find("404 Not Found"), std::string::npos);
}

TEST_F(HttpTest, NetrcSuppliesCredentials) {
  write_text(dir_ / "root/f.txt", "hello");
  RepoServer server(dir_ / "root", dir_, 0, "bob:pw2");
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  write_text(dir_ / "netrc", "machine 127.0.0.1 login bob password pw2\n");
  auto options = fast();
  options.use_netrc = true;
  options.netrc_file = (dir_ / "netrc").string();
  HttpClient client(options);
  StringSink sink;
  auto r = client.send(http_get(server.url() + "/f.txt"), sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(sink.out, "hello");
}

TEST_F(HttpTest, ConnectionRefusedIsARetryableNetworkError) {
  auto options = fast();
  options.max_retries = 1;
  HttpClient client(options);
  StringSink sink;
  auto r = client.send(http_get("http://127.0.0.1:1/x"), sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Network);
  EXPECT_TRUE(r.error().retryable());
}

TEST_F(HttpTest, RunParallelFetchesEveryIndex) {
  for (int i = 0; i < 12; ++i)
    write_text(dir_ / "root" / (std::to_string(i) + ".txt"), std::to_string(i));
  RepoServer server(dir_ / "root", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  std::vector<std::string> got(12);
  auto results = run_parallel(12, 4, fast(), [&](size_t i, HttpClient& client) -> Result<void> {
    StringSink sink;
    ENVB_TRY(client.send(http_get(server.url() + "/" + std::to_string(i) + ".txt"), sink));
    got[i] = sink.out;
    return ok();
  });
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_TRUE(results[i]);
    EXPECT_EQ(got[i], std::to_string(i));
  }
}

}  // namespace
}  // namespace envbuild::common
