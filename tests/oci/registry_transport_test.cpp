// Blob downloads against a local flaky HTTP server: a blob download whose connection drops
// mid-body resumes with a Range request and still checks the digest. (The HTTP client's own
// retries and statuses are tested in tests/common/http_test.cpp.)

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "oci/registry/client.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci::registry {
namespace {

class RegistryTransportTest : public envbuild::testing::TempDirTest {
 protected:
  common::HttpOptions fast() {
    common::HttpOptions o;
    o.initial_backoff = std::chrono::milliseconds(10);
    return o;
  }
};

// Blobs laid out as a registry serves them, from a plain file server that drops the first body
// of each path after `drop_after` bytes.
class BlobResumeTest : public RegistryTransportTest {
 protected:
  static std::string bytes(size_t n, uint64_t seed) {
    std::string out(n, '\0');
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto& c : out) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
    return out;
  }
  // Serves `content` as the blob named `digest` of repository t/app.
  void serve(const Digest& digest, const std::string& content) {
    envbuild::testing::write_text(dir_ / "root/v2/index.json", "{}");
    envbuild::testing::write_text(dir_ / "root/v2/t/app/blobs" / digest.to_string(), content);
  }
  Result<Repository> connect(const envbuild::testing::RepoServer& server) {
    RegistryOptions o;
    o.transport = fast();
    o.transport.tls.verify = false;  // plain http after the https probe
    o.lookup_stored_credentials = false;
    ENVB_ASSIGN_OR_RETURN(auto repo,
                          Repository::connect("127.0.0.1:" + std::to_string(server.port()), "t/app",
                                              Action::Pull, o));
    ENVB_TRY(repo.ping());
    return repo;
  }
  // The log lines of GETs of `digest`.
  static std::vector<nlohmann::json> blob_gets(const envbuild::testing::RepoServer& server,
                                               const Digest& digest) {
    std::vector<nlohmann::json> out;
    for (const auto& line : server.log_lines()) {
      auto j = nlohmann::json::parse(line);
      if (j["method"] == "GET" &&
          j["path"].get<std::string>().ends_with("/blobs/" + digest.to_string()))
        out.push_back(j);
    }
    return out;
  }
};

TEST_F(BlobResumeTest, DroppedConnectionResumesWithRangeAndVerifiesTheDigest) {
  ENVB_REQUIRE_TOOL("python3");
  const std::string blob = bytes(300'000, 1);
  const Digest digest = Digest::of(blob);
  serve(digest, blob);
  envbuild::testing::RepoServer server(dir_ / "root", dir_, 0, "", "--drop-after 100000");
  ASSERT_NE(server.port(), 0);
  auto repo = connect(server);
  ASSERT_TRUE(repo) << repo.error().to_string();
  BlobStore store(dir_ / "store");
  Descriptor d;
  d.media_type = "application/octet-stream";
  d.digest = digest;
  d.size = static_cast<int64_t>(blob.size());
  auto fetched = repo->fetch_blob(d, store);
  ASSERT_TRUE(fetched) << fetched.error().to_string();
  EXPECT_TRUE(store.contains(digest, d.size));
  auto gets = blob_gets(server, digest);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0]["dropped_after"], 100'000);
  EXPECT_EQ(gets[1]["range"], "bytes=100000-");
  EXPECT_EQ(gets[1]["status"], 206);
  EXPECT_EQ(gets[1]["body_bytes"], 200'000);  // only the rest came again
}

TEST_F(BlobResumeTest, ResumedBytesThatDoNotMatchTheDigestAreRejected) {
  ENVB_REQUIRE_TOOL("python3");
  // The registry serves other bytes (same size) under the digest: the resumed download is
  // checked over all its bytes, retried from scratch, and never committed.
  const std::string blob = bytes(300'000, 2);
  const Digest digest = Digest::of(blob);
  serve(digest, bytes(300'000, 3));
  envbuild::testing::RepoServer server(dir_ / "root", dir_, 0, "", "--drop-after 100000");
  ASSERT_NE(server.port(), 0);
  auto repo = connect(server);
  ASSERT_TRUE(repo) << repo.error().to_string();
  BlobStore store(dir_ / "store");
  Descriptor d;
  d.digest = digest;
  d.size = static_cast<int64_t>(blob.size());
  auto fetched = repo->fetch_blob(d, store);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().code(), Errc::Integrity) << fetched.error().to_string();
  EXPECT_FALSE(store.contains(digest));
  auto gets = blob_gets(server, digest);
  ASSERT_GE(gets.size(), 2u);
  EXPECT_EQ(gets[1]["range"], "bytes=100000-");
  EXPECT_EQ(gets.back()["range"], nullptr);  // the last attempt started over
}

}  // namespace
}  // namespace envbuild::oci::registry
