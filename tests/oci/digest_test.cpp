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
                                    "docker-archive:x.tar::v1"};
  for (auto c : cases) {
    SCOPED_TRACE(c);
    auto r = ImageReference::parse(c);
    ASSERT_FALSE(r) << r->to_string();
    EXPECT_EQ(r.error().code(), Errc::InvalidInput);
    EXPECT_NE(r.error().to_string().find("'" + std::string(c) + "'"), std::string::npos)
        << r.error().to_string();
  }
}

}  // namespace
}  // namespace envbuild::oci
