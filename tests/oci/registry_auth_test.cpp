// Unit tests of the registry client's pieces that need no registry: WWW-Authenticate parsing,
// base64, --creds, stored-credential lookup and error texts.

#include <gtest/gtest.h>

#include <string>

#include "oci/registry/auth.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci::registry {
namespace {

using envbuild::testing::TempDirTest;
using envbuild::testing::write_text;

TEST(ParseChallenge, Table) {
  struct Case {
    std::string_view in;
    std::string scheme;
    std::map<std::string, std::string> params;
  };
  const Case cases[] = {
      {R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push")",
       "bearer",
       {{"realm", "https://auth.docker.io/token"},
        {"service", "registry.docker.io"},
        {"scope", "repository:samalba/my-app:pull,push"}}},
      {R"(Basic realm="Registry Realm")", "basic", {{"realm", "Registry Realm"}}},
      {R"(Bearer realm="https://ghcr.io/token", service="ghcr.io",scope="repository:a/b:pull")",
       "bearer",
       {{"realm", "https://ghcr.io/token"},
        {"service", "ghcr.io"},
        {"scope", "repository:a/b:pull"}}},
      {R"(BEARER Realm=https://q.example/v2/auth,Service=quay.io)",
       "bearer",
       {{"realm", "https://q.example/v2/auth"}, {"service", "quay.io"}}},
      {R"(Bearer realm="a\"b",error="insufficient_scope")",
       "bearer",
       {{"realm", "a\"b"}, {"error", "insufficient_scope"}}},
      {"Basic", "basic", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto got = parse_challenge(c.in);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(got->scheme, c.scheme);
    EXPECT_EQ(got->params, c.params);
  }
}

TEST(ParseChallenge, RejectsBrokenHeaders) {
  for (std::string_view in : {"", R"(Bearer realm="unterminated)", "Bearer realm"}) {
    SCOPED_TRACE(in);
    auto got = parse_challenge(in);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::InvalidInput);
    EXPECT_NE(got.error().message().find("WWW-Authenticate"), std::string::npos);
  }
}

TEST(Base64, RoundTripsAndMatchesKnownValues) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"user:pa:ss", "dXNlcjpwYTpzcw=="}};
  for (auto [plain, encoded] : cases) {
    SCOPED_TRACE(plain);
    EXPECT_EQ(base64_encode(plain), encoded);
    auto back = base64_decode(encoded);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, plain);
  }
  EXPECT_FALSE(base64_decode("a*b"));
}

TEST(ParseCreds, SplitsAtTheFirstColon) {
  auto c = parse_creds("alice:s3:cret");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "s3:cret");
  for (std::string_view bad : {"alice", ":pw", ""}) {
    auto r = parse_creds(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::InvalidInput);
  }
}

class CredentialLookupTest : public TempDirTest {};

TEST_F(CredentialLookupTest, FindsDockerAndPodmanEntries) {
  auto docker = dir_ / "docker" / "config.json";
  auto podman = dir_ / "auth.json";
  write_text(docker, R"({"auths": {
      "https://index.docker.io/v1/": {"auth": ")" +
                         base64_encode("hubuser:hubpw") + R"("},
      "registry.example.com:5000": {"username": "u2", "password": "p2"},
      "empty.example.com": {}
  }, "credsStore": "desktop"})");
  write_text(podman, R"({"auths": {"quay.io": {"auth": ")" + base64_encode("q:qpw") + R"("}}})");
  const std::vector<std::string> files = {podman.string(), (dir_ / "missing.json").string(),
                                          docker.string()};
  struct Case {
    std::string host;
    std::string user, password, source;
  };
  const Case cases[] = {
      {"docker.io", "hubuser", "hubpw", docker.string()},
      {"registry.example.com:5000", "u2", "p2", docker.string()},
      {"quay.io", "q", "qpw", podman.string()},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.host);
    auto got = lookup_credentials_in(files, c.host);
    ASSERT_TRUE(got) << got.error().to_string();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->username, c.user);
    EXPECT_EQ((*got)->password, c.password);
    EXPECT_EQ((*got)->source, c.source);
  }
  for (std::string host : {"empty.example.com", "ghcr.io", "registry.example.com"}) {
    auto got = lookup_credentials_in(files, host);
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value()) << host;
  }
}

TEST_F(CredentialLookupTest, BadAuthFieldNamesFileButNotSecret) {
  auto file = dir_ / "config.json";
  write_text(file,
             R"({"auths": {"h.example": {"auth": ")" + base64_encode("nocolonsecret") + R"("}}})");
  auto got = lookup_credentials_in({file.string()}, "h.example");
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().to_string().find(file.string()), std::string::npos);
  EXPECT_EQ(got.error().to_string().find("nocolonsecret"), std::string::npos);
}

TEST(RealmMayReceiveCredentials, SameHostOrSameDomainOnly) {
  struct Case {
    std::string_view realm, registry;
    bool want;
  };
  const Case cases[] = {
      {"https://auth.docker.io/token", "https://registry-1.docker.io", true},
      {"https://gitlab.com/jwt/auth", "https://registry.gitlab.com", true},
      {"https://ghcr.io/token", "https://ghcr.io", true},
      {"http://127.0.0.1:5001/token", "http://127.0.0.1:5000", true},  // same host, other port
      {"https://[::1]:9/t", "https://[::1]:8", true},
      {"https://auth.evil.example/token", "https://registry.example.com", false},
      {"https://127.0.0.2/token", "https://127.0.0.1", false},
      {"https://10.0.0.1/token", "https://10.0.0.2", false},  // IPs: no "domain"
      {"https://example.com.evil.io/token", "https://registry.example.com", false},
      {"https://localhost/token", "https://127.0.0.1", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.realm) + " for " + std::string(c.registry));
    auto realm = common::url_origin(c.realm);
    auto registry = common::url_origin(c.registry);
    ASSERT_TRUE(realm && registry);
    EXPECT_EQ(realm_may_receive_credentials(*realm, *registry), c.want);
  }
}

}  // namespace
}  // namespace envbuild::oci::registry
