// The registry transport against a local flaky HTTP server: retries on 503 with Retry-After,
// every status handed back, transport errors named and retryable.

#include <gtest/gtest.h>

#include "oci/registry/transport.hpp"
#include "tests/oci/registry_server.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci::registry {
namespace {

class RegistryTransportTest : public envbuild::testing::TempDirTest {
 protected:
  TransportOptions fast() {
    TransportOptions o;
    o.initial_backoff = std::chrono::milliseconds(10);
    return o;
  }
};

TEST_F(RegistryTransportTest, RetriesServiceUnavailableThenSucceeds) {
  ENVB_REQUIRE_TOOL("python3");
  envbuild::testing::write_text(dir_ / "root" / "v2" / "blob", "hello");
  envbuild::testing::RepoServer server(dir_ / "root", dir_, /*fail_first=*/2);
  ASSERT_NE(server.port(), 0);
  HttpTransport transport(fast());
  Request req;
  req.url = server.url() + "/v2/blob";
  auto resp = transport.send(req);
  ASSERT_TRUE(resp) << resp.error().to_string();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->attempts, 3);
  EXPECT_EQ(resp->body, "hello");
  EXPECT_EQ(transport.counters()->get, 3u);

  // With fewer retries than failures the last 503 comes back as a response.
  envbuild::testing::write_text(dir_ / "root" / "v2" / "other", "x");
  TransportOptions once = fast();
  once.max_retries = 1;
  HttpTransport impatient(once);
  req.url = server.url() + "/v2/other";
  auto busy = impatient.send(req);
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  Error e = status_error("GET", req.url, *busy);
  EXPECT_TRUE(e.retryable());
  EXPECT_EQ(e.code(), Errc::Network);
}

TEST_F(RegistryTransportTest, ConnectionRefusedIsARetryableNetworkError) {
  int port = envbuild::testing::free_port();
  TransportOptions o = fast();
  o.max_retries = 1;
  HttpTransport transport(o);
  Request req;
  req.method = "HEAD";
  req.url = "http://u:secret@127.0.0.1:" + std::to_string(port) + "/v2/";
  auto resp = transport.send(req);
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error().code(), Errc::Network);
  EXPECT_TRUE(resp.error().retryable());
  EXPECT_NE(resp.error().message().find("HEAD http://u:***@127.0.0.1:"), std::string::npos)
      << resp.error().message();
  EXPECT_EQ(resp.error().to_string().find("secret"), std::string::npos);
  EXPECT_EQ(transport.counters()->head, 2u);
}

}  // namespace
}  // namespace envbuild::oci::registry
