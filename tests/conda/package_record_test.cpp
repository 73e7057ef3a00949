#include "conda/package_record.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "conda/match_spec.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

TEST(PackageRecordJson, RoundTrip) {
  auto record = parse_package_record(R"({
    "name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0", "build_number": 0,
    "subdir": "linux-64", "depends": ["libgcc-ng >=12", "python_abi 3.11.* *_cp311"],
    "constrains": ["numpy-base <0a0"], "license": "BSD-3-Clause", "md5": "a0",
    "sha256": "b1", "size": 8065890, "timestamp": 1707225376, "track_features": "a b",
    "noarch": null, "arch": null, "unknown": {"x": 1}})",
                                     "numpy.json");
  ASSERT_TRUE(record) << record.error().to_string();
  EXPECT_EQ(record->track_features, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(record->depends.size(), 2u);
  auto again = parse_package_record(to_json_string(*record), "again");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(*again, *record);
  EXPECT_EQ(to_json_string(*again), to_json_string(*record));
}

TEST(PackageRecordJson, Errors) {
  for (std::string_view bad : {R"({"version": "1"})", R"({"name": "x"})",
                               R"({"name": "x", "version": "1", "depends": "a"})",
                               R"({"name": "x", "version": "1", "size": -1})",
                               R"({"name": "x", "version": "1..2"})", R"([1])", "{"}) {
    SCOPED_TRACE(bad);
    auto record = parse_package_record(bad, "r.json");
    ASSERT_FALSE(record);
    EXPECT_EQ(record.error().code(), Errc::InvalidInput);
    EXPECT_NE(record.error().to_string().find("r.json"), std::string::npos)
        << record.error().to_string();
  }
}

// The installed records rattler ships as test data (conda-meta/*.json, CEP 32).
TEST(PrefixRecordTestData, ParsesAndRoundTripsWithoutMachinePaths) {
  auto dir = testing::data_dir() / "envs/conda-meta/rattler-tests";
  size_t count = 0, pyc = 0, placeholders = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().filename().string());
    auto text = testing::read_text(entry.path());
    auto record = parse_prefix_record(text, entry.path().filename().string());
    ASSERT_TRUE(record) << record.error().to_string();
    ++count;
    EXPECT_EQ(record->file_name(), entry.path().filename().string());
    auto raw = nlohmann::json::parse(text);
    EXPECT_EQ(record->files.size(), raw["files"].size());
    EXPECT_EQ(record->paths.size(), raw["paths_data"]["paths"].size());
    for (const auto& p : record->paths) {
      pyc += p.path_type == PrefixPathType::PycFile;
      placeholders += !p.prefix_placeholder.empty();
    }
    for (const auto& dep : record->record.depends) {
      EXPECT_TRUE(MatchSpec::parse(dep)) << dep;
    }
    std::string out = to_json_string(*record);
    EXPECT_EQ(out.find("extracted_package_dir"), std::string::npos);
    EXPECT_EQ(out.find("package_tarball_full_path"), std::string::npos);
    EXPECT_EQ(out.find("\"source\""), std::string::npos);
    auto again = parse_prefix_record(out, "again");
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(*again, *record);
    EXPECT_EQ(to_json_string(*again), out);
  }
  EXPECT_EQ(count, 12u);
  EXPECT_EQ(pyc, 20u);  // pysocks 2 + requests 18 (MANIFEST.tsv)
  EXPECT_GE(placeholders, 8u);
}

TEST(PrefixRecordTestData, Fields) {
  auto path = testing::data_dir() / "envs/conda-meta/rattler-tests/libffi-3.4.2-h3422bc3_5.json";
  auto record = parse_prefix_record(testing::read_text(path), "libffi");
  ASSERT_TRUE(record) << record.error().to_string();
  EXPECT_EQ(record->record.name, "libffi");
  EXPECT_EQ(record->record.build_number, 5u);
  EXPECT_EQ(record->record.subdir, "osx-arm64");
  EXPECT_EQ(record->link_type, 1);
  bool saw_binary = false;
  for (const auto& p : record->paths) {
    if (p.path == "lib/libffi.8.dylib") {
      saw_binary = true;
      EXPECT_EQ(p.file_mode, FileMode::Binary);
      EXPECT_NE(p.sha256, p.sha256_in_prefix);
      EXPECT_EQ(p.size_in_bytes, 137728u);
    }
  }
  EXPECT_TRUE(saw_binary);
}

}  // namespace
}  // namespace envbuild::conda
