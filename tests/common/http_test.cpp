#include "common/http.hpp"
#include "common/parallel.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "common/internal/transfer_deadlines.hpp"
#include "tests/testing/registry_server.hpp"
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

TEST(NextRetry, OnePolicyForEveryRequest) {
  HttpOptions o;
  o.max_retries = 3;
  o.initial_backoff = std::chrono::milliseconds(100);
  o.max_backoff = std::chrono::milliseconds(1'000);
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  using std::chrono::milliseconds;
  struct Case {
    int attempts;
    bool retryable;
    std::string_view retry_after;
    std::optional<milliseconds> want;
  };
  const Case cases[] = {
      {1, true, "", milliseconds(100)},
      {2, true, "", milliseconds(200)},
      {3, true, "", milliseconds(400)},
      {4, true, "", std::nullopt},          // max_retries spent
      {1, false, "", std::nullopt},         // 404, a certificate error, bytes in the sink
      {1, true, "0", milliseconds(100)},    // Retry-After never shortens the backoff
      {1, true, "0.5", milliseconds(100)},  // not a number of seconds: ignored
      {2, true, "3", milliseconds(1'000)},  // ... and never waits past max_backoff
      {1, true, "Tue, 14 Nov 2023 22:13:20.5 GMT", milliseconds(100)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.attempts) + " " + std::string(c.retry_after));
    EXPECT_EQ(next_retry(o, c.attempts, c.retryable, c.retry_after, now), c.want);
  }
  o.max_backoff = std::chrono::milliseconds(30'000);
  EXPECT_EQ(next_retry(o, 1, true, "7", now), milliseconds(7'000));
  EXPECT_EQ(next_retry(o, 3, true, "", now), milliseconds(400));
  o.max_retries = 40;  // doubling stops at max_backoff instead of overflowing
  EXPECT_EQ(next_retry(o, 40, true, "", now), milliseconds(30'000));
}

TEST(HttpStatusError, NamesCallStatusAndDetailWithoutSecrets) {
  struct Case {
    long status;
    std::string body;
    int attempts;
    Errc code;
    bool retryable;
    std::string message;
  };
  const std::string url = "https://bob:hunter2@reg.example/v2/x/manifests/1";
  const Case cases[] = {
      {400, R"({"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]})",
       1, Errc::InvalidInput, false,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 400 Bad Request (MANIFEST_INVALID: "
       "manifest invalid)"},
      {401, "", 1, Errc::Unauthorized, false,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 401 Unauthorized"},
      {403, "<html>nope</html>", 1, Errc::Unauthorized, false,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 403 Forbidden"},
      {404, "not found\nmore", 1, Errc::NotFound, false,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 404 Not Found: not found"},
      {410, "", 1, Errc::NotFound, false,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 410 Gone"},
      {503, "try again", 3, Errc::Network, true,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 503 Service Unavailable (after 3 "
       "attempts): try again"},
      {429, "", 1, Errc::Network, true,
       "PUT https://bob:***@reg.example/v2/x/manifests/1: 429 Too Many Requests"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.status);
    HttpResponse r;
    r.status = c.status;
    r.body = c.body;
    r.attempts = c.attempts;
    Error e = http_status_error("PUT", url, r);
    EXPECT_EQ(e.code(), c.code);
    EXPECT_EQ(e.retryable(), c.retryable);
    EXPECT_EQ(e.message(), c.message);
  }
}

TEST(ApplyHttpOverrides, SetsDeadlinesAndRetriesOrNamesTheBadEntry) {
  HttpOptions o;
  ASSERT_TRUE(apply_http_overrides(
      o, "connect=2,headers=3,window=4,total=5,min_bytes=100,retries=1,backoff_ms=7"));
  EXPECT_EQ(o.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(o.header_timeout, std::chrono::seconds(3));
  EXPECT_EQ(o.progress_window, std::chrono::seconds(4));
  EXPECT_EQ(o.metadata_timeout, std::chrono::seconds(5));
  EXPECT_EQ(o.progress_min_bytes, 100u);
  EXPECT_EQ(o.max_retries, 1);
  EXPECT_EQ(o.initial_backoff, std::chrono::milliseconds(7));
  for (std::string_view bad : {"window", "window=", "window=-1", "window=1s", "speed=3"}) {
    SCOPED_TRACE(bad);
    auto r = apply_http_overrides(o, bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::InvalidInput);
    EXPECT_NE(r.error().message().find(kHttpOverridesEnv), std::string::npos);
  }
}

// A transfer walked through its stages on a clock of the test's own: each deadline fires at its
// stage and only there.
class TransferDeadlinesTest : public ::testing::Test {
 protected:
  using Clock = internal::TransferDeadlines::Clock;
  TransferDeadlinesTest() {
    options_.header_timeout = std::chrono::seconds(10);
    options_.progress_window = std::chrono::seconds(60);
    options_.progress_min_bytes = 1000;
    options_.metadata_timeout = std::chrono::seconds(300);
  }
  static Clock::time_point at(int seconds) {
    return Clock::time_point(std::chrono::seconds(seconds));
  }
  HttpOptions options_;
};

TEST_F(TransferDeadlinesTest, ATrickleOfOneBytePerMinuteMissesTheProgressWindow) {
  internal::TransferDeadlines d(options_, false, 0, at(0));
  internal::TransferProgress p{.connected = true, .headers_done = true};
  EXPECT_FALSE(d.check(p, at(1)));  // the headers are in: the body's first window starts
  p.downloaded = 1;
  EXPECT_FALSE(d.check(p, at(59)));
  auto late = d.check(p, at(61));
  ASSERT_TRUE(late);
  EXPECT_NE(late->find("stalled: 1 bytes moved in the last 60 s, at least 1000 expected"),
            std::string::npos)
      << *late;
}

TEST_F(TransferDeadlinesTest, ASlowButSteadyDownloadNeverMisses) {
  internal::TransferDeadlines d(options_, false, 0, at(0));
  internal::TransferProgress p{.connected = true, .headers_done = true};
  EXPECT_FALSE(d.check(p, at(0)));
  for (int s = 1; s < 24 * 3600; s += 7) {  // 200 B/s for a day, checked every 7 s
    p.downloaded += 1400;
    ASSERT_FALSE(d.check(p, at(s))) << s;
  }
}

TEST_F(TransferDeadlinesTest, TheLastBytesOfABodyNeedOnlyWhatIsLeft) {
  internal::TransferDeadlines d(options_, false, 0, at(0));
  internal::TransferProgress p{.connected = true, .headers_done = true, .download_size = 10'100};
  EXPECT_FALSE(d.check(p, at(0)));
  p.downloaded = 10'000;
  EXPECT_FALSE(d.check(p, at(60)));
  p.downloaded = 10'100;  // 100 bytes were left: they came
  EXPECT_FALSE(d.check(p, at(120)));
}

TEST_F(TransferDeadlinesTest, HeadersMustFollowTheRequestInTime) {
  internal::TransferDeadlines d(options_, false, 0, at(0));
  internal::TransferProgress p;
  EXPECT_FALSE(d.check(p, at(25)));  // connecting: CURLOPT_CONNECTTIMEOUT's job
  p.connected = true;
  EXPECT_FALSE(d.check(p, at(26)));
  EXPECT_FALSE(d.check(p, at(36)));
  auto late = d.check(p, at(37));
  ASSERT_TRUE(late);
  EXPECT_EQ(*late, "no response headers within 10 s");
}

TEST_F(TransferDeadlinesTest, AnUploadIsWatchedThenTheWaitGrowsWithItsSize) {
  const uint64_t size = 320u << 20;  // 20 s more to wait for the headers
  internal::TransferDeadlines d(options_, false, size, at(0));
  internal::TransferProgress p{.connected = true};
  EXPECT_FALSE(d.check(p, at(0)));
  for (int s = 10; s <= 4000; s += 10) {
    p.uploaded = std::min<uint64_t>(size, p.uploaded + (1u << 20));
    ASSERT_FALSE(d.check(p, at(s))) << s;
    if (p.uploaded == size) break;
  }
  ASSERT_EQ(p.uploaded, size);
  EXPECT_FALSE(d.check(p, at(3225)));
  auto late = d.check(p, at(3231));
  ASSERT_TRUE(late);
  EXPECT_EQ(*late, "no response headers within 30 s");

  internal::TransferDeadlines stuck(options_, false, size, at(0));
  internal::TransferProgress q{.connected = true, .uploaded = 10};
  EXPECT_FALSE(stuck.check(q, at(1)));
  EXPECT_TRUE(stuck.check(q, at(62)));  // the registry stopped reading the body
}

TEST_F(TransferDeadlinesTest, AMetadataRequestHasATotalDeadline) {
  internal::TransferDeadlines d(options_, true, 0, at(0));
  internal::TransferProgress p{.connected = true, .headers_done = true};
  for (int s = 0; s <= 300; s += 5) {
    p.downloaded += 100'000;
    ASSERT_FALSE(d.check(p, at(s))) << s;
  }
  auto late = d.check(p, at(301));
  ASSERT_TRUE(late);
  EXPECT_EQ(*late, "no complete answer within 300 s (the limit of a metadata request)");
  internal::TransferDeadlines blob(options_, false, 0, at(0));
  EXPECT_FALSE(blob.check(p, at(301)));
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

TEST_F(HttpTest, PerformHandsBackEveryStatusAfterTheRetries) {
  write_text(dir_ / "root/v2/blob", "hello");
  write_text(dir_ / "root/v2/other", "x");
  RepoServer server(dir_ / "root", dir_, /*fail_first=*/2);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  HttpClient client(fast());
  HttpRequest req;
  req.url = server.url() + "/v2/blob";
  auto resp = client.perform(req);
  ASSERT_TRUE(resp) << resp.error().to_string();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->attempts, 3);
  EXPECT_EQ(resp->body, "hello");  // no sink: captured
  EXPECT_EQ(client.counters()->get, 3u);

  // With fewer retries than failures the last 503 comes back as a response.
  HttpOptions once = fast();
  once.max_retries = 1;
  HttpClient impatient(once);
  req.url = server.url() + "/v2/other";
  auto busy = impatient.perform(req);
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->attempts, 2);
  EXPECT_TRUE(http_status_error("GET", req.url, *busy).retryable());
}

TEST_F(HttpTest, ARefusedConnectionNamesTheRequestWithoutItsSecret) {
  HttpOptions o = fast();
  o.max_retries = 1;
  HttpClient client(o);
  HttpRequest req;
  req.method = "HEAD";
  req.url = "http://u:secret@127.0.0.1:" + std::to_string(envbuild::testing::free_port()) + "/v2/";
  auto resp = client.perform(req);
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error().code(), Errc::Network);
  EXPECT_TRUE(resp.error().retryable());
  EXPECT_NE(resp.error().message().find("HEAD http://u:***@127.0.0.1:"), std::string::npos)
      << resp.error().message();
  EXPECT_NE(resp.error().message().find("(after 2 attempts)"), std::string::npos);
  EXPECT_EQ(resp.error().to_string().find("secret"), std::string::npos);
  EXPECT_EQ(client.counters()->head, 2u);
}

TEST_F(HttpTest, ABadOverrideInTheEnvironmentIsTheFirstRequestsError) {
  ::setenv(kHttpOverridesEnv, "window=soon", 1);
  HttpClient client(fast());
  ::unsetenv(kHttpOverridesEnv);
  StringSink sink;
  auto r = client.send(http_get("http://127.0.0.1:1/x"), sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidInput);
  EXPECT_NE(r.error().message().find("'window=soon'"), std::string::npos) << r.error().message();
}

TEST_F(HttpTest, OneClientPerWorkerFetchesEveryIndex) {
  for (int i = 0; i < 12; ++i)
    write_text(dir_ / "root" / (std::to_string(i) + ".txt"), std::to_string(i));
  RepoServer server(dir_ / "root", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  std::vector<std::string> got(12);
  HttpClients clients(fast(), worker_count(12, 4));
  auto r = for_each_index(12, 4, [&](size_t i, size_t worker) -> Result<void> {
    StringSink sink;
    ENVB_TRY(clients.of(worker).send(http_get(server.url() + "/" + std::to_string(i) + ".txt"),
                                     sink));
    got[i] = sink.out;
    return ok();
  });
  ASSERT_TRUE(r) << r.error().to_string();
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(got[i], std::to_string(i));
}

}  // namespace
}  // namespace envbuild::common
