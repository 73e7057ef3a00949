#include "conda/package_metadata.hpp"

#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;

TEST(ParseHasPrefix, Table) {
  auto got = parse_has_prefix(
      "bin/foo\n"
      "/opt/build_placehold_placehold text etc/a.conf\n"
      "\"/opt/with space\" binary \"lib/lib x.so\"\n"
      "\n",
      "has_prefix");
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].placeholder, kDefaultPlaceholder);
  EXPECT_EQ((*got)[0].file_mode, FileMode::Text);
  EXPECT_EQ((*got)[0].path, "bin/foo");
  EXPECT_EQ((*got)[1].placeholder, "/opt/build_placehold_placehold");
  EXPECT_EQ((*got)[1].path, "etc/a.conf");
  EXPECT_EQ((*got)[2].placeholder, "/opt/with space");
  EXPECT_EQ((*got)[2].file_mode, FileMode::Binary);
  EXPECT_EQ((*got)[2].path, "lib/lib x.so");
}

TEST(ParseHasPrefix, Errors) {
  for (std::string_view bad : {"a b\n", "/p weird path\n", "\"/p text x\n"}) {
    SCOPED_TRACE(bad);
    auto got = parse_has_prefix(bad, "pkg/info/has_prefix");
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().to_string().find("pkg/info/has_prefix:1"), std::string::npos)
        << got.error().to_string();
  }
}

TEST(ParsePathsJson, DefaultsAndFields) {
  auto got = parse_paths_json(R"({"paths_version": 1, "paths": [
      {"_path": "bin/x", "sha256": "ab", "size_in_bytes": 3},
      {"_path": "lib/l.so", "path_type": "softlink"},
      {"_path": "lib/b.so", "file_mode": "binary", "prefix_placeholder": "/p", "no_link": true}
    ]})",
                              "paths.json");
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].path_type, PathType::HardLink);
  EXPECT_EQ((*got)[0].file_mode, FileMode::Text);
  EXPECT_EQ((*got)[0].size_in_bytes, 3u);
  EXPECT_EQ((*got)[1].path_type, PathType::SoftLink);
  EXPECT_EQ((*got)[2].file_mode, FileMode::Binary);
  EXPECT_EQ((*got)[2].prefix_placeholder, "/p");
  EXPECT_TRUE((*got)[2].no_link);
}

TEST(ParsePathsJson, Errors) {
  struct Case {
    std::string_view in, want;
  };
  const Case cases[] = {
      {"{", "invalid JSON"},
      {R"({"paths": 3})", "no 'paths' array"},
      {R"({"paths": [{"_path": "../x"}]})", "paths[0]: unsafe or missing _path '../x'"},
      {R"({"paths": [{"_path": "x", "path_type": "fifo"}]})", "unknown path_type 'fifo'"},
      {R"({"paths_version": 2, "paths": []})", "paths_version 2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto got = parse_paths_json(c.in, "p.json");
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().to_string().find(c.want), std::string::npos) << got.error().to_string();
  }
}

TEST(ParseIndexJson, LegacyFields) {
  auto got = parse_index_json(
      R"({"name": "nano", "version": "2.4.1", "build": "0", "build_number": 0,
          "requires": ["ncurses"], "noarch_python": true})",
      "index.json");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->depends, std::vector<std::string>{"ncurses"});
  EXPECT_EQ(got->noarch, "python");
  EXPECT_FALSE(parse_index_json(R"({"version": "1"})", "index.json"));
}

TEST(PathsFromLegacy, MergesHasPrefixNoLinkAndSymlinks) {
  auto paths = paths_from_legacy("bin/a\nlib/l.so\nlib/b\n", {{"/ph", FileMode::Binary, "lib/b"}},
                                 "bin/a\n", {"lib/l.so"});
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_TRUE(paths[0].no_link);
  EXPECT_EQ(paths[1].path_type, PathType::SoftLink);
  EXPECT_EQ(paths[2].prefix_placeholder, "/ph");
  EXPECT_EQ(paths[2].file_mode, FileMode::Binary);
}

fs::path package(const std::string& rel) {
  return testing::data_dir() / "packages" / rel;
}

TEST(ReadPackageMetadata, RealPackages) {
  struct Case {
    std::string rel;
    std::string name;
    size_t paths;
    int text_placeholders, binary_placeholders, softlinks, entry_points;
    bool legacy;
    std::string noarch;
  };
  const Case cases[] = {
      {"channels/conda_format_repo/osx-64/zlib-1.2.11-h1de35cc_3.tar.bz2", "zlib", 7, 1, 3, 2, 0,
       false, ""},
      {"channels/conda_format_repo/linux-64/zlib-1.2.11-h7b6447c_3.conda", "zlib", 7, 1, 0, 2, 0,
       false, ""},
      {"single/snappy-1.1.3-0.tar.bz2", "snappy", 0, 1, 0, 2, 0, true, ""},
      {"single/conda-index-pkg-a-1.0-pyhed9eced_1.tar.bz2", "conda-index-pkg-a", 8, 0, 0, 0, 2,
       false, "python"},
      {"single/flask-0.11.1-py_0.tar.bz2", "flask", 0, 0, 0, 0, 0, true, "python"},
      {"single/cph_test_data-0.0.1-0.tar.bz2", "cph_test_data", 11, 0, 0, 7, 0, false, "generic"},
      {"single/rattler-sparse/dotslash-test-1.0.0-0.conda", "dotslash-test", 0, 0, 0, 0, 0, true,
       ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.rel);
    auto meta = read_package_metadata(package(c.rel));
    ASSERT_TRUE(meta) << meta.error().to_string();
    EXPECT_EQ(meta->index.name, c.name);
    EXPECT_EQ(meta->index.noarch, c.noarch);
    EXPECT_EQ(meta->paths_from_legacy, c.legacy);
    if (c.paths) {
      EXPECT_EQ(meta->paths.size(), c.paths);
    }
    int text = 0, binary = 0, softlinks = 0;
    for (const auto& p : meta->paths) {
      if (!p.prefix_placeholder.empty()) ++(p.file_mode == FileMode::Binary ? binary : text);
      if (p.path_type == PathType::SoftLink) ++softlinks;
    }
    EXPECT_EQ(text, c.text_placeholders);
    EXPECT_EQ(binary, c.binary_placeholders);
    EXPECT_EQ(softlinks, c.softlinks);
    EXPECT_EQ(meta->link ? static_cast<int>(meta->link->entry_points.size()) : 0, c.entry_points);
  }
}

}  // namespace
}  // namespace envbuild::conda
