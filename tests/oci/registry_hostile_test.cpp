// Push and pull against hostile registries on 127.0.0.1 (tests/testing/hostile_server.py), the
// registry side of issue 16 (classes 4 and 11): the registry's Basic credentials and Bearer token
// reach neither an upload Location nor a blob redirect on another origin, a token realm on
// another host gets no credentials, nothing leaves https for plain http, and a registry that
// trickles bytes fails the pull within its deadlines (also through `envrun pull` and
// ENVBUILD_HTTP_TIMEOUTS). Every test runs under a watchdog and checks that the sentinel secrets
// appear in no request to the other server.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "oci/layer_writer.hpp"
#include "oci/layout.hpp"
#include "oci/mutate.hpp"
#include "oci/registry/client.hpp"
#include "tests/testing/hostile_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci::registry {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::HostileServer;
using envbuild::testing::Watchdog;

constexpr const char* kPassword = "PASSWORD-SENTINEL-41d2";
constexpr const char* kToken = "TOKEN-SENTINEL-77ab";

class RegistryHostileTest : public envbuild::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ENVB_REQUIRE_TOOL("python3");
  }
  RegistryOptions options() const {
    RegistryOptions o;
    o.transport.tls.verify = false;
    o.lookup_stored_credentials = false;
    o.credentials = Credentials{"alice", kPassword, "--creds"};
    o.transport.initial_backoff = std::chrono::milliseconds(10);
    o.transport.max_retries = 1;
    o.transport.header_timeout = std::chrono::seconds(2);
    o.transport.progress_window = std::chrono::seconds(2);
    o.transport.progress_min_bytes = 1024;
    o.blob_attempts = 1;
    o.jobs = 1;
    return o;
  }
  std::unique_ptr<Image> image() {
    auto layout = Layout::create(dir_ / "layout");
    EXPECT_TRUE(layout) << layout.error().to_string();
    envbuild::testing::write_text(dir_ / "tree/data.txt", "layer data\n");
    auto entries = entries_from_tree(dir_ / "tree");
    EXPECT_TRUE(entries);
    auto info = write_layer(*entries, LayerOptions{}, layout->blobs());
    EXPECT_TRUE(info) << info.error().to_string();
    AppendedLayer layer;
    layer.layer = *info;
    Platform platform;
    platform.os = "linux";
    platform.architecture = "amd64";
    auto desc = build_image(platform, {layer}, ConfigChanges{}, layout->blobs());
    EXPECT_TRUE(desc) << desc.error().to_string();
    EXPECT_TRUE(layout->add(*desc, "v1"));
    auto opened = layout->image("v1");
    EXPECT_TRUE(opened) << opened.error().to_string();
    return std::move(*opened);
  }
  static ImageReference ref(const HostileServer& registry, const std::string& repo_tag) {
    auto r = ImageReference::parse("docker://" + registry.host() + "/" + repo_tag);
    EXPECT_TRUE(r) << r.error().to_string();
    return *r;
  }
  // The other server must have seen neither the password nor the token, in any form.
  static void expect_clean(const HostileServer& other) {
    EXPECT_EQ(other.authorized_requests(), 0u) << other.transcript();
    EXPECT_EQ(other.transcript().find(kPassword), std::string::npos) << other.transcript();
    EXPECT_EQ(other.transcript().find(kToken), std::string::npos) << other.transcript();
  }
  // Pulls from a registry started with `args`: it must fail with a Network error that says
  // `why`.
  void expect_pull_fails(const std::string& name, std::vector<std::string> args,
                         const std::string& why) {
    HostileServer registry(dir_, name, std::move(args));
    ASSERT_NE(registry.port(), 0);
    BlobStore store(dir_ / "pulled");
    auto pulled = pull(ref(registry, "team/app:1"), std::nullopt, store, options());
    ASSERT_FALSE(pulled);
    EXPECT_EQ(pulled.error().code(), Errc::Network);
    EXPECT_NE(pulled.error().to_string().find(why), std::string::npos)
        << pulled.error().to_string();
  }
};

TEST_F(RegistryHostileTest, UploadLocationOnAnotherOriginGetsNoCredentials) {
  Watchdog watchdog(std::chrono::seconds(120), "upload Location test");
  auto img = image();
  HostileServer other_host(dir_, "other-host", {}, "127.0.0.2");
  HostileServer other_port(dir_, "other-port", {});
  ASSERT_NE(other_host.port(), 0);
  ASSERT_NE(other_port.port(), 0);
  for (const HostileServer* other : {&other_host, &other_port}) {
    HostileServer registry(
        dir_, "registry",
        {"--role", "registry", "--auth", "basic", "--user", "alice", "--password", kPassword,
         "--upload-location", other->url() + "/upload/session?state=x"});
    ASSERT_NE(registry.port(), 0);
    auto pushed = push(*img, ref(registry, "team/app:1"), options());
    ASSERT_TRUE(pushed) << pushed.error().to_string();  // the other server took the blobs
    EXPECT_EQ(pushed->uploaded, 2u);
    EXPECT_GT(registry.authorized_requests(), 0u);  // the registry itself got them
  }
  for (const HostileServer* other : {&other_host, &other_port}) {
    auto requests = other->requests();
    ASSERT_EQ(requests.size(), 2u) << other->transcript();
    EXPECT_EQ(requests[0]["method"], "PUT");
    expect_clean(*other);
  }
}

TEST_F(RegistryHostileTest, BearerTokenNeverFollowsABlobRedirect) {
  Watchdog watchdog(std::chrono::seconds(120), "blob redirect test");
  HostileServer other(dir_, "other", {}, "127.0.0.2");
  ASSERT_NE(other.port(), 0);
  HostileServer registry(
      dir_, "registry",
      {"--role", "registry", "--auth", "bearer", "--realm", "self", "--user", "alice", "--password",
       kPassword, "--token", kToken, "--blob-redirect", other.url()});
  ASSERT_NE(registry.port(), 0);
  BlobStore store(dir_ / "pulled");
  auto pulled = pull(ref(registry, "team/app:1"), std::nullopt, store, options());
  ASSERT_FALSE(pulled);  // the collector has no such blob
  EXPECT_NE(registry.transcript().find(kToken), std::string::npos);  // it had the token
  auto requests = other.requests();
  ASSERT_FALSE(requests.empty()) << pulled.error().to_string();
  EXPECT_NE(requests[0]["path"].get<std::string>().find("/blobs/sha256:"), std::string::npos);
  expect_clean(other);
}

TEST_F(RegistryHostileTest, ATokenRealmOnAnotherHostGetsNoCredentials) {
  Watchdog watchdog(std::chrono::seconds(120), "token realm test");
  HostileServer other(dir_, "other", {}, "127.0.0.2");
  ASSERT_NE(other.port(), 0);
  HostileServer registry(dir_, "registry",
                         {"--role", "registry", "--auth", "bearer", "--realm",
                          other.url() + "/token", "--token", kToken});
  ASSERT_NE(registry.port(), 0);
  BlobStore store(dir_ / "pulled");
  auto pulled = pull(ref(registry, "team/app:1"), std::nullopt, store, options());
  ASSERT_FALSE(pulled);
  EXPECT_EQ(pulled.error().code(), Errc::Unauthorized) << pulled.error().to_string();
  EXPECT_NE(pulled.error().to_string().find("neither its host nor in its domain"),
            std::string::npos)
      << pulled.error().to_string();
  EXPECT_EQ(pulled.error().to_string().find(kPassword), std::string::npos);
  EXPECT_TRUE(other.requests().empty()) << other.transcript();

  // Without credentials there is nothing to withhold: the anonymous token request goes there.
  RegistryOptions anonymous = options();
  anonymous.credentials.reset();
  auto anon = pull(ref(registry, "team/app:1"), std::nullopt, store, anonymous);
  ASSERT_FALSE(anon);  // the collector's token is not the registry's
  ASSERT_EQ(other.requests().size(), 1u);
  expect_clean(other);
}

TEST_F(RegistryHostileTest, NothingLeavesHttpsForPlainHttp) {
  ENVB_REQUIRE_TOOL("openssl");
  Watchdog watchdog(std::chrono::seconds(120), "downgrade test");
  ASSERT_EQ(envbuild::testing::make_localhost_certificate(dir_), "");
  HostileServer plain(dir_, "plain", {});
  ASSERT_NE(plain.port(), 0);
  const std::vector<std::string> tls = {"--tls", (dir_ / "cert.pem").string(),
                                        (dir_ / "key.pem").string()};
  auto with_tls = [&](std::vector<std::string> args) {
    args.insert(args.end(), tls.begin(), tls.end());
    return args;
  };
  auto img = image();
  {
    // An upload Location over plain http.
    HostileServer registry(
        dir_, "registry",
        with_tls({"--role", "registry", "--auth", "basic", "--user", "alice", "--password",
                  kPassword, "--upload-location", plain.url() + "/upload"}),
        "127.0.0.1", true);
    ASSERT_NE(registry.port(), 0);
    auto pushed = push(*img, ref(registry, "team/app:1"), options());
    ASSERT_FALSE(pushed);
    EXPECT_NE(pushed.error().to_string().find("refusing to leave https for plain http"),
              std::string::npos)
        << pushed.error().to_string();
  }
  {
    // A blob redirect to plain http.
    HostileServer registry(dir_, "registry-2",
                           with_tls({"--role", "registry", "--auth", "basic", "--user", "alice",
                                     "--password", kPassword, "--blob-redirect", plain.url()}),
                           "127.0.0.1", true);
    ASSERT_NE(registry.port(), 0);
    BlobStore store(dir_ / "pulled");
    auto pulled = pull(ref(registry, "team/app:1"), std::nullopt, store, options());
    ASSERT_FALSE(pulled);
    EXPECT_NE(pulled.error().to_string().find("refusing to leave https for plain http"),
              std::string::npos)
        << pulled.error().to_string();
  }
  {
    // A plain-http token realm for an https registry.
    HostileServer registry(
        dir_, "registry-3",
        with_tls({"--role", "registry", "--auth", "bearer", "--realm",
                  "http://127.0.0.1:" + std::to_string(plain.port()) + "/token"}),
        "127.0.0.1", true);
    ASSERT_NE(registry.port(), 0);
    BlobStore store(dir_ / "pulled");
    auto pulled = pull(ref(registry, "team/app:1"), std::nullopt, store, options());
    ASSERT_FALSE(pulled);
    EXPECT_NE(pulled.error().to_string().find("plain-http realm"), std::string::npos)
        << pulled.error().to_string();
  }
  EXPECT_TRUE(plain.requests().empty()) << plain.transcript();
}

TEST_F(RegistryHostileTest, ATricklingRegistryFailsThePullInBoundedTime) {
  Watchdog watchdog(std::chrono::seconds(120), "trickling registry");
  expect_pull_fails(
      "registry",
      {"--role", "registry", "--trickle-headers", "0.3", "--trickle-match", "/manifests/"},
      "no response headers within 2 s");
  expect_pull_fails("registry-2",
                    {"--role", "registry", "--trickle-body", "0.3", "--trickle-match", "/blobs/"},
                    "stalled");
}

TEST_F(RegistryHostileTest, EnvrunPullFromATricklingRegistryEndsWithExitCode6) {
  Watchdog watchdog(std::chrono::seconds(120), "envrun pull from a trickling registry");
  HostileServer registry(
      dir_, "registry",
      {"--role", "registry", "--trickle-body", "0.3", "--trickle-match", "/blobs/"});
  ASSERT_NE(registry.port(), 0);
  auto r = envbuild::testing::run_command(
      "HOME=" + envbuild::testing::shell_quote(dir_.string()) +
      " ENVRUN_CACHE=" + envbuild::testing::shell_quote((dir_ / "cache").string()) +
      " ENVBUILD_HTTP_TIMEOUTS=headers=2,window=2,min_bytes=1024,retries=1,backoff_ms=10 " +
      envbuild::testing::shell_quote((envbuild::testing::binary_dir() / "envrun").string()) +
      " pull docker://" + registry.host() + "/team/app:1");
  EXPECT_EQ(r.exit_code, 6) << r.output;
  EXPECT_NE(r.output.find("stalled"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace envbuild::oci::registry
