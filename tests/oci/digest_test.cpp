#include "oci/digest.hpp"

#include <gtest/gtest.h>

#include "oci/reference.hpp"

namespace envbuild::oci {
namespace {

constexpr std::string_view kHex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestParse, AcceptsAndRoundTrips) {
  std::string text = "sha256:" + std::string(kHex);
  auto d = Digest::parse(text);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->to_string(), text);
  EXPECT_EQ(d->hex(), kHex);
  EXPECT_EQ(d->short_string(), "sha256:e3b0c44298fc");
  EXPECT_EQ(Digest::of(""), *d);
}

TEST(DigestParse, RejectsBadInputQuotingIt) {
  struct Case {
    std::string in;
    Errc code;
  };
  const Case cases[] = {
      {"", Errc::InvalidInput},
      {"sha256", Errc::InvalidInput},
      {"sha256:", Errc::InvalidInput},
      {"sha256:" + std::string(kHex).substr(1), Errc::InvalidInput},
      {"sha256:" + std::string(kHex) + "0", Errc::InvalidInput},
      {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
       Errc::InvalidInput},
      {"sha256:" + std::string(63, 'a') + "g", Errc::InvalidInput},
      {"sha512:" + std::string(128, 'a'), Errc::Unsupported},
      {"md5:d41d8cd98f00b204e9800998ecf8427e", Errc::Unsupported},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto d = Digest::parse(c.in);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code(), c.code);
    EXPECT_NE(d.error().to_string().find("'" + c.in + "'"), std::string::npos)
        << d.error().to_string();
  }
}

TEST(DigestParse, FollowsTheImageSpecGrammarBeforeTheAlgorithm) {
  struct Case {
    std::string in;
    Errc code;
  };
  const Case cases[] = {
      {"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", Errc::Unsupported},
      {"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", Errc::Unsupported},
      {"sha384:" + std::string(96, 'a'), Errc::Unsupported},
      {"SHA256:" + std::string(kHex), Errc::InvalidInput},   // upper-case algorithm
      {"sha256+:" + std::string(kHex), Errc::InvalidInput},  // separator without a component
      {"+sha256:" + std::string(kHex), Errc::InvalidInput},
      {"sha256:../../etc/passwd", Errc::InvalidInput},
      {"sha256:" + std::string(kHex) + "/x", Errc::InvalidInput},
      {"sha256:ab:cd", Errc::InvalidInput},
      {":" + std::string(kHex), Errc::InvalidInput},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto d = Digest::parse(c.in);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code(), c.code) << d.error().to_string();
  }
}

TEST(DigestParse, SortsByHex) {
  auto a = Digest::parse("sha256:" + std::string(64, '0'));
  auto b = Digest::parse("sha256:" + std::string(64, 'f'));
  ASSERT_TRUE(a && b);
  EXPECT_LT(*a, *b);
}

TEST(ReferenceParse, ValidRoundTrip) {
  struct Case {
    std::string_view in;
    Transport transport;
    std::string path, tag, name, host, out;
  };
  const Case cases[] = {
      {"oci:/tmp/img:v1", Transport::OciLayout, "/tmp/img", "v1", "", "", "oci:/tmp/img:v1"},
      {"oci:img", Transport::OciLayout, "img", "", "", "", "oci:img"},
      {"oci-archive:x.tar:latest", Transport::OciArchive, "x.tar", "latest", "", "",
       "oci-archive:x.tar:latest"},
      {"docker-archive:x.tar:feas/busybox:v1", Transport::DockerArchive, "x.tar", "v1",
       "feas/busybox", "", "docker-archive:x.tar:feas/busybox:v1"},
      {"docker-archive:x.tar:busybox", Transport::DockerArchive, "x.tar", "latest", "busybox", "",
       "docker-archive:x.tar:busybox:latest"},
      {"docker-archive:x.tar:localhost:5000/a/b:2", Transport::DockerArchive, "x.tar", "2",
       "localhost:5000/a/b", "", "docker-archive:x.tar:localhost:5000/a/b:2"},
      {"docker-archive:x.tar", Transport::DockerArchive, "x.tar", "", "", "",
       "docker-archive:x.tar"},
      {"docker://busybox:1.36", Transport::Registry, "", "1.36", "library/busybox", "docker.io",
       "docker://docker.io/library/busybox:1.36"},
      {"docker://127.0.0.1:5000/test/img:1", Transport::Registry, "", "1", "test/img",
       "127.0.0.1:5000", "docker://127.0.0.1:5000/test/img:1"},
      {"docker://ghcr.io/org/repo", Transport::Registry, "", "", "org/repo", "ghcr.io",
       "docker://ghcr.io/org/repo"},
      {"docker://localhost/x:y", Transport::Registry, "", "y", "x", "localhost",
       "docker://localhost/x:y"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = ImageReference::parse(c.in);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->transport, c.transport);
    EXPECT_EQ(r->path, c.path);
    EXPECT_EQ(r->tag, c.tag);
    EXPECT_EQ(r->name, c.name);
    EXPECT_EQ(r->host, c.host);
    EXPECT_EQ(r->to_string(), c.out);
    auto again = ImageReference::parse(r->to_string());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *r);
  }
}

TEST(ReferenceParse, DigestReference) {
  auto r = ImageReference::parse("docker://quay.io/a/b@sha256:" + std::string(kHex));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->digest.hex(), kHex);
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->to_string(), "docker://quay.io/a/b@sha256:" + std::string(kHex));
}

TEST(ReferenceParse, RejectsInvalid) {
  const std::string_view cases[] = {"",
                                    "img",
                                    "oci:",
                                    "oci::tag",
                                    "oci:dir:",
                                    "ftp:x",
                                    "docker:busybox",
                                    "docker://Busybox:1",
                                    "docker://busybox:1:2",
                                    "docker://a//b:1",
                                    "docker://busybox@sha256:abc",
                                    "docker-archive:x.tar::v1",
                                    "docker://host.example/a/../../x:1",
                                    "docker://host.example/../x",
                                    "docker://../x/y",
                                    "docker://host.example/a/./b",
                                    "docker://host.example/.a",
                                    "docker://host.example/a./b",
                                    "docker://user@host.example/a",
                                    "docker://host.example:99999/a",
                                    "docker://-host.example/a",
                                    "docker://host.example/a:.tag",
                                    "docker://host.example/a@sha256:../../../v2"};
  for (auto c : cases) {
    SCOPED_TRACE(c);
    auto r = ImageReference::parse(c);
    ASSERT_FALSE(r) << r->to_string();
    EXPECT_EQ(r.error().code(), Errc::InvalidInput);
    EXPECT_NE(r.error().to_string().find("'" + std::string(c) + "'"), std::string::npos)
        << r.error().to_string();
  }
}

// Class 10 of issue 16: names follow the distribution spec exactly, so none reaches a path
// outside /v2/<name>/.
TEST(RepositoryName, DistributionGrammarTable) {
  struct Case {
    std::string name;
    bool valid;
  };
  const Case cases[] = {
      {"a", true},
      {"library/busybox", true},
      {"a/b/c/d", true},
      {"my-app", true},
      {"my--app", true},
      {"my_app", true},
      {"my__app", true},
      {"my.app", true},
      {"a1.b2-c3_d4__e5", true},
      {"0", true},
      {"", false},
      {"..", false},
      {".", false},
      {"a/..", false},
      {"a/../b", false},
      {"../a", false},
      {"a/./b", false},
      {"a//b", false},
      {"/a", false},
      {"a/", false},
      {"a..b", false},
      {"a._b", false},
      {"a___b", false},
      {"_a", false},
      {"a-", false},
      {"-a", false},
      {"A", false},
      {"a b", false},
      {"a%2e%2e", false},
      {"a\\b", false},
      {std::string("a\0b", 3), false},
      {std::string(255, 'a'), true},
      {std::string(256, 'a'), false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(is_valid_repository_name(c.name), c.valid);
  }
}

TEST(Tag, GrammarTable) {
  struct Case {
    std::string tag;
    bool valid;
  };
  const Case cases[] = {
      {"latest", true},
      {"v1.2.3", true},
      {"_x", true},
      {"A-b_C.d", true},
      {std::string(128, 'a'), true},
      {std::string(129, 'a'), false},
      {"", false},
      {".hidden", false},
      {"-x", false},
      {"a/b", false},
      {"a:b", false},
      {"..", false},
      {"a b", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.tag);
    EXPECT_EQ(is_valid_tag(c.tag), c.valid);
  }
}

TEST(RegistryHost, GrammarTable) {
  struct Case {
    std::string host;
    bool valid;
  };
  const Case cases[] = {
      {"docker.io", true},
      {"localhost", true},
      {"localhost:5000", true},
      {"127.0.0.1:5000", true},
      {"Registry.Example.COM", true},
      {"a-b.example", true},
      {"[::1]", true},
      {"[::1]:5000", true},
      {"[fe80::1]:443", true},
      {"", false},
      {"host:", false},
      {"host:0", false},
      {"host:65536", false},
      {"host:5x", false},
      {"-a.example", false},
      {"a-.example", false},
      {"a..example", false},
      {".example", false},
      {"user@host", false},
      {"host/x", false},
      {"host\\x", false},
      {"[::1", false},
      {"[::g]", false},
      {"[]:5000", false},
      {"[::1]x", false},
      {"ho st", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.host);
    EXPECT_EQ(is_valid_registry_host(c.host), c.valid);
  }
}

TEST(ReferenceParse, RejectsAHostAndNameOver255Characters) {
  const std::string host = std::string(60, 'h') + ".example";
  auto fits =
      ImageReference::parse("docker://" + host + "/" + std::string(255 - host.size() - 1, 'a'));
  EXPECT_TRUE(fits) << fits.error().to_string();
  auto over = ImageReference::parse("docker://" + host + "/" + std::string(255 - host.size(), 'a'));
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message().find("longer than 255"), std::string::npos);
}

}  // namespace
}  // namespace envbuild::oci
