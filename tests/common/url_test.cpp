// URL questions that decide where secrets may go: origins as libcurl reads them, Location
// resolution, user info, downgrades, and which hosts are this machine (TLS verification is
// skipped by envrun for those only).

#include "common/url.hpp"

#include <gtest/gtest.h>

namespace envbuild::common {
namespace {

TEST(UrlOrigin, Table) {
  struct Case {
    std::string_view url;
    Origin want;
  };
  const Case cases[] = {
      {"https://reg.example/v2/", {"https", "reg.example", 443}},
      {"http://reg.example/v2/", {"http", "reg.example", 80}},
      {"HTTPS://Reg.Example:5000/x", {"https", "reg.example", 5000}},
      {"https://user:secret@reg.example/x", {"https", "reg.example", 443}},
      {"http://127.0.0.1:8080", {"http", "127.0.0.1", 8080}},
      {"https://[::1]:5000/v2/", {"https", "[::1]", 5000}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.url);
    auto got = url_origin(c.url);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, c.want);
  }
}

TEST(UrlOrigin, RejectsWhatIsNotAnHttpUrlWithoutQuotingSecrets) {
  for (std::string_view url :
       {"", "/v2/x", "relative/path", "ftp://host/x", "file:///etc/passwd", "https://",
        "gopher://u:topsecret@host/",
        // An ambiguous authority: curl refuses it, so no reading of ours can differ from curl's.
        "http://a@topsecret@c.example/x"}) {
    SCOPED_TRACE(url);
    auto got = url_origin(url);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::InvalidInput);
    EXPECT_EQ(got.error().to_string().find("topsecret"), std::string::npos);
  }
}

TEST(SameOrigin, SchemeHostAndPortMustAllMatch) {
  struct Case {
    std::string_view a, b;
    bool want;
  };
  const Case cases[] = {
      {"https://r.example/v2/", "https://r.example:443/v2/x/blobs/uploads/1", true},
      {"https://r.example/v2/", "https://u:p@R.EXAMPLE/other", true},
      {"https://r.example/v2/", "http://r.example/v2/", false},
      {"https://r.example/v2/", "https://r.example:5000/v2/", false},
      {"https://r.example/v2/", "https://s3.example/bucket", false},
      {"http://127.0.0.1:5000/", "http://127.0.0.1:5001/", false},
      {"http://127.0.0.1:5000/", "http://localhost:5000/", false},
      {"https://r.example/", "/relative", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.a) + " vs " + std::string(c.b));
    EXPECT_EQ(same_origin(c.a, c.b), c.want);
  }
}

TEST(IsDowngrade, OnlyHttpsToHttp) {
  EXPECT_TRUE(is_downgrade("https://a/x", "http://a/x"));
  EXPECT_TRUE(is_downgrade("https://a/x", "http://b:8080/y"));
  EXPECT_FALSE(is_downgrade("http://a/x", "https://b/x"));
  EXPECT_FALSE(is_downgrade("http://a/x", "http://b/x"));
  EXPECT_FALSE(is_downgrade("https://a/x", "https://b/x"));
}

TEST(ResolveUrl, LocationsAsCurlResolvesThem) {
  struct Case {
    std::string_view base, location, want;
  };
  const Case cases[] = {
      {"https://r.example/v2/a/blobs/uploads/", "abc?state=1",
       "https://r.example/v2/a/blobs/uploads/abc?state=1"},
      {"https://r.example/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u1",
       "https://r.example/v2/a/blobs/uploads/u1"},
      {"https://r.example/v2/a/blobs/uploads/", "https://s3.example/b?x=1",
       "https://s3.example/b?x=1"},
      {"https://r.example/v2/x", "//cdn.example/blob", "https://cdn.example/blob"},
      {"https://r.example/v2/a/b", "../../c", "https://r.example/c"},
      {"https://r.example/v2/a/b", "../../../../../c", "https://r.example/c"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.location);
    auto got = resolve_url(c.base, c.location);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, c.want);
  }
}

TEST(StripUserinfo, DropsUserAndPasswordOnly) {
  EXPECT_EQ(strip_userinfo("https://u:p@h.example:8443/a?b=1"), "https://h.example:8443/a?b=1");
  EXPECT_EQ(strip_userinfo("https://h.example/t/tok/x"), "https://h.example/t/tok/x");
}

// Class 5 of issue 16: only numeric loopback addresses and the exact name localhost skip TLS
// verification in envrun; a name that merely looks local is verified like any other.
TEST(IsLoopbackHost, Table) {
  struct Case {
    std::string_view host;
    bool want;
  };
  const Case cases[] = {
      {"localhost", true},
      {"LocalHost:5000", true},
      {"127.0.0.1", true},
      {"127.0.0.1:5000", true},
      {"127.255.3.4:80", true},
      {"[::1]", true},
      {"[::1]:5000", true},
      {"::1", true},
      {"[0:0:0:0:0:0:0:1]:443", true},
      {"127.evil.com", false},
      {"127.0.0.1.evil.com", false},
      {"127.0.0.1.nip.io:5000", false},
      {"localhost.evil.com", false},
      {"localhost.", false},
      {"evil.localhost", false},
      {"127.1", false},       // inet_aton would read it as 127.0.0.1; a resolver may not
      {"0177.0.0.1", false},  // octal for inet_aton
      {"0x7f.0.0.1", false},
      {"127.0.0.256", false},
      {"128.0.0.1", false},
      {"10.0.0.1", false},
      {"[::2]:5000", false},
      {"[::ffff:127.0.0.1]", false},
      {"[::1]x", false},
      {"[::1", false},
      {"127.0.0.1:50x0", false},
      {"", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.host);
    EXPECT_EQ(is_loopback_host(c.host), c.want);
  }
}

}  // namespace
}  // namespace envbuild::common
