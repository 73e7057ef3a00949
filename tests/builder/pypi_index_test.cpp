// Index access without pip against a real index on 127.0.0.1 (tests/testing/pypi_server.py):
// PEP 691 and PEP 503 pages, find-links, PEP 658 metadata or the wheel itself, credentials that
// stay on their host.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "builder/pypi/index.hpp"
#include "builder/pypi/simple_index.hpp"
#include "common/fs.hpp"
#include "tests/testing/pypi.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder::pypi {
namespace {

namespace fs = std::filesystem;
using testing::PypiServer;

TEST(SimpleIndexHtml, ReadsLinksHashesAndAttributes) {
  const std::string html = R"(<!DOCTYPE html><html><head><base href="https://files.example/pkgs/"></head>
<body><!-- <a href="commented.whl">no</a> -->
<a href="a-1.0-py3-none-any.whl#sha256=ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
   data-requires-python="&gt;=3.8" data-core-metadata="sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef">a</a>
<A HREF='../up/a-0.9.tar.gz' data-yanked>a</A>
<a href="https://u:pw@other.example/a-2.0-py3-none-any.whl">other host</a>
<a href="a%2Bb-1.0-py3-none-any.whl" data-dist-info-metadata="true">encoded</a>
<a>no href</a></body></html>)";
  auto files = parse_simple_html(html, "https://index.example/simple/a/");
  ASSERT_TRUE(files) << files.error().to_string();
  ASSERT_EQ(files->size(), 4u);
  const auto& f = (*files)[0];
  EXPECT_EQ(f.url, "https://files.example/pkgs/a-1.0-py3-none-any.whl");
  EXPECT_EQ(f.sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(f.requires_python, ">=3.8");
  EXPECT_TRUE(f.has_metadata);
  EXPECT_EQ(f.metadata_sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_EQ((*files)[1].url, "https://files.example/up/a-0.9.tar.gz");
  EXPECT_TRUE((*files)[1].yanked);
  // Credentials in a link are dropped.
  EXPECT_EQ((*files)[2].url, "https://other.example/a-2.0-py3-none-any.whl");
  EXPECT_EQ((*files)[3].filename, "a+b-1.0-py3-none-any.whl");
  EXPECT_TRUE((*files)[3].has_metadata);
}

// Found by pypi_index_fuzz: a malformed <base href> gave "https:/host/..." (no "//"), which reads
// as a local path. A remote page's links are kept only as http(s) URLs; file:// only on a local page.
TEST(SimpleIndexHtml, LinksThatWouldReadLocalFilesAreDropped) {
  const std::string wheel = "a-1.0-py3-none-any.whl";
  struct Case {
    std::string page, html;
    size_t kept;
  };
  const std::vector<Case> cases = {
      {"https://index.example/simple/a/", "<base href=\"https:/l.i/x/\"><a href=\"" + wheel + "\">a</a>", 0},
      {"https://index.example/simple/a/", "<a href=\"file:///etc/" + wheel + "\">a</a>", 0},
      {"https://index.example/simple/a/", "<a href=\"ftp://h/" + wheel + "\">a</a>", 0},
      {"https://index.example/simple/a/", "<a href=\"https://files.example/" + wheel + "\">a</a>", 1},
      {"file:///srv/wheels/", "<a href=\"" + wheel + "\">a</a>", 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.html);
    auto files = parse_simple_html(c.html, c.page);
    ASSERT_TRUE(files) << files.error().to_string();
    EXPECT_EQ(files->size(), c.kept);
  }
}

TEST(SimpleIndexJson, ReadsFilesAndKeepsCredentialsOnTheirHost) {
  const std::string json = R"({"meta": {"api-version": "1.0"}, "name": "a", "files": [
    {"filename": "a-1.0-py3-none-any.whl", "url": "../../files/a-1.0-py3-none-any.whl",
     "hashes": {"sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
     "requires-python": ">=3.9", "core-metadata": {"sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
     "yanked": "broken"},
    {"filename": "a-2.0-py3-none-any.whl", "url": "https://cdn.example/a-2.0-py3-none-any.whl", "hashes": {}}]})";
  auto files = parse_simple_json(json, "https://user:secret@index.example/simple/a/");
  ASSERT_TRUE(files) << files.error().to_string();
  ASSERT_EQ(files->size(), 2u);
  // Same host: the password comes back redacted (downloads put it back); another host: none.
  EXPECT_EQ((*files)[0].url, "https://user:***@index.example/files/a-1.0-py3-none-any.whl");
  EXPECT_TRUE((*files)[0].yanked);
  EXPECT_TRUE((*files)[0].has_metadata);
  EXPECT_EQ((*files)[0].requires_python, ">=3.9");
  EXPECT_EQ((*files)[1].url, "https://cdn.example/a-2.0-py3-none-any.whl");
  EXPECT_TRUE((*files)[1].sha256.empty());
  // Hostile pages are errors, not crashes.
  EXPECT_FALSE(parse_simple_json(std::string(100000, '['), "https://i/"));
  EXPECT_FALSE(parse_simple_json(R"({"files": [{"url": 1}]})", "https://i/"));
  EXPECT_FALSE(parse_simple_json("not json", "https://i/"));
}

class PypiIndexTest : public testing::TempDirTest {
 protected:
  IndexOptions options(const std::vector<std::string>& index_urls,
                       const std::vector<std::string>& find_links = {}) {
    IndexOptions o;
    o.index_urls = index_urls;
    o.find_links = find_links;
    o.cache.root = dir_ / "cache";
    return o;
  }
  static std::vector<std::string> names(const std::vector<DistributionFile>& files) {
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back(f.filename);
    std::sort(out.begin(), out.end());
    return out;
  }
  size_t requests_for(const PypiServer& server, const std::string& part) {
    size_t n = 0;
    for (const auto& line : server.log_lines()) n += line.find(part) != std::string::npos;
    return n;
  }
};

TEST_F(PypiIndexTest, JsonHtmlAndFindLinksListTheSameFiles) {
  const fs::path& wheels = testing::pypi_test_wheels();
  PypiServer json(wheels, dir_ / "json.log", "--format json");
  PypiServer html(wheels, dir_ / "html.log", "--format html");
  ASSERT_NE(json.port(), 0);
  ASSERT_NE(html.port(), 0);
  PackageIndex from_json(options({json.simple_url()}));
  PackageIndex from_html(options({html.simple_url()}));
  PackageIndex from_dir(options({}, {wheels.string()}));
  PackageIndex from_page(options({}, {html.url() + "/links/"}));
  auto a = from_json.files("delta");
  auto b = from_html.files("delta");
  auto c = from_dir.files("delta");
  auto d = from_page.files("delta");
  ASSERT_TRUE(a && b && c && d) << (a ? b ? c ? d.error().to_string() : c.error().to_string()
                                          : b.error().to_string()
                                      : a.error().to_string());
  EXPECT_EQ(names(*a).size(), 4u);
  EXPECT_EQ(names(*a), names(*b));
  EXPECT_EQ(names(*a), names(*c));
  EXPECT_EQ(names(*a), names(*d));
  for (const auto& f : *a) EXPECT_EQ(f.sha256.size(), 64u) << f.filename;
  EXPECT_EQ(requests_for(json, "\"path\": \"/simple/delta/\""), 1u);
  // Asked again in the same run: no second request.
  ASSERT_TRUE(from_json.files("delta"));
  EXPECT_EQ(requests_for(json, "\"path\": \"/simple/delta/\""), 1u);
  auto none = from_json.files("no-such-project");
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_TRUE(none->empty());
}

TEST_F(PypiIndexTest, MetadataFromPep658OrFromTheWheel) {
  const fs::path& wheels = testing::pypi_test_wheels();
  PypiServer with(wheels, dir_ / "with.log", "--metadata");
  PypiServer without(wheels, dir_ / "without.log");
  PackageIndex pep658(options({with.simple_url()}));
  auto files = pep658.files("alpha");
  ASSERT_TRUE(files) << files.error().to_string();
  auto wheel = std::find_if(files->begin(), files->end(), [](const DistributionFile& f) {
    return f.filename == "alpha-2.0-py3-none-any.whl";
  });
  ASSERT_NE(wheel, files->end());
  ASSERT_TRUE(wheel->has_metadata);
  auto meta = pep658.metadata(*wheel);
  ASSERT_TRUE(meta) << meta.error().to_string();
  EXPECT_EQ(meta->name, "alpha");
  EXPECT_EQ(meta->version.to_string(), "2.0");
  EXPECT_EQ(meta->requires_dist.size(), 3u);
  EXPECT_EQ(requests_for(with, "alpha-2.0-py3-none-any.whl.metadata"), 1u);
  EXPECT_EQ(requests_for(with, "alpha-2.0-py3-none-any.whl\""), 0u);  // the wheel was not fetched

  // A cache of its own: the first index already keeps alpha 2.0's metadata.
  IndexOptions plain_options = options({without.simple_url()});
  plain_options.cache.root = dir_ / "cache2";
  PackageIndex plain(plain_options);
  auto plain_files = plain.files("alpha");
  ASSERT_TRUE(plain_files);
  auto plain_wheel = std::find_if(plain_files->begin(), plain_files->end(),
                                  [](const DistributionFile& f) { return f.filename == "alpha-2.0-py3-none-any.whl"; });
  ASSERT_FALSE(plain_wheel->has_metadata);
  auto from_wheel = plain.metadata(*plain_wheel);
  ASSERT_TRUE(from_wheel) << from_wheel.error().to_string();
  EXPECT_EQ(from_wheel->requires_dist.size(), 3u);
  // The wheel is now in the package cache, verified, for the install to use.
  EXPECT_TRUE(fs::exists(dir_ / "cache2" / "pkgs" / plain_wheel->sha256 / plain_wheel->filename));
  // And the metadata is kept: a second index object asks the server nothing.
  PackageIndex again(plain_options);
  ASSERT_TRUE(again.metadata(*plain_wheel));
  EXPECT_EQ(again.stats().metadata_cached, 1u);
}

TEST_F(PypiIndexTest, CredentialsGoToTheirHostOnly) {
  // Given an index behind basic auth whose links point at another host, expect the index to
  // get the credentials and the other host never.
  const fs::path& wheels = testing::pypi_test_wheels();
  PypiServer files(wheels, dir_ / "files.log");
  PypiServer index(wheels, dir_ / "index.log", "--auth user:s3cret --files-host " + files.url());
  const std::string url = "http://user:s3cret@127.0.0.1:" + std::to_string(index.port()) + "/simple";
  PackageIndex private_index(options({url}));
  auto listed = private_index.files("beta");
  ASSERT_TRUE(listed) << listed.error().to_string();
  ASSERT_FALSE(listed->empty());
  for (const auto& f : *listed) {
    EXPECT_EQ(f.url.find("s3cret"), std::string::npos) << f.url;
    EXPECT_TRUE(f.url.starts_with(files.url())) << f.url;
  }
  auto meta = private_index.metadata(listed->front());
  ASSERT_TRUE(meta) << meta.error().to_string();
  for (const auto& line : files.log_lines())
    EXPECT_NE(line.find("\"authorization\": false"), std::string::npos) << line;
  // Without credentials the index says 401, named without a secret.
  PackageIndex anonymous(options({index.simple_url()}));
  auto refused = anonymous.files("beta");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Unauthorized);
  // Links on the index's own host carry the password redacted, which downloads put back.
  PypiServer same(wheels, dir_ / "same.log", "--auth user:s3cret");
  PackageIndex same_host(options({"http://user:s3cret@127.0.0.1:" + std::to_string(same.port()) + "/simple"}));
  auto own = same_host.files("beta");
  ASSERT_TRUE(own) << own.error().to_string();
  EXPECT_NE(own->front().url.find("user:***@"), std::string::npos) << own->front().url;
  auto own_meta = same_host.metadata(own->front());
  ASSERT_TRUE(own_meta) << own_meta.error().to_string();
}

}  // namespace
}  // namespace envbuild::builder::pypi
