// Loading only the records a solve reaches (builder/solve/reach.hpp, repodata_scan.hpp): the
// scan of a whole repodata.json picks out exactly the reached records' bytes, refuses what is
// not repodata without crashing, and a solve from the subset gives what the whole file gives,
// reads nothing of the JSON when it comes again, and survives a torn subset.

#include "builder/solve/reach.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "builder/solve/solve.hpp"
#include "tests/builder/solve_testing.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

using envbuild::testing::read_text;
using envbuild::testing::TempDirTest;
using envbuild::testing::write_text;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kRepodata = R"({
  "info": {"subdir": "linux-64", "base_url": "https://x/"},
  "packages": {
    "a-1-0.tar.bz2": {"name": "a", "version": "1", "depends": ["b >=2", "__glibc >=2.17"]},
    "odd-1-0.tar.bz2": "not a record",
    "c-1-0.tar.bz2": {"name": "x", "version": "1", "depends": [], "requires": ["Zed >1"], "name": "c"},
    "nameless-1-0.tar.bz2": {"version": "1", "nested": {"x": [1, 2.5e3, true, null]}}
  },
  "packages.conda": {
    "b-2-0.conda": {"name": "b", "version": "2", "depends": ["c", "d\u0020>1"]},
    "e-1-0.conda": {"name": "\u0065", "version": "1"}
  },
  "repodata_version": 1,
  "removed": ["z-1-0.tar.bz2"]
})";

TEST(RepodataIndex, PicksOutTheRecordsOfTheNamesAskedFor) {
  auto index = RepodataIndex::build(kRepodata, "repodata.json");
  ASSERT_TRUE(index) << index.error().to_string();
  EXPECT_EQ(index->records(), 5u);  // the string is no record

  NameSet depends;
  index->add_depends_of("a", depends);
  EXPECT_EQ(depends, (NameSet{"b"}));  // virtual names left out
  index->add_depends_of("b", depends);
  EXPECT_EQ(depends, (NameSet{"b", "c", "d"}));  // an escaped dependency decoded
  index->add_depends_of("missing", depends);
  EXPECT_EQ(depends.size(), 3u);
  // The last "name" counts, "requires" is read as libsolv reads it, names in lower case.
  NameSet of_c;
  index->add_depends_of("c", of_c);
  EXPECT_EQ(of_c, (NameSet{"zed"}));

  const json whole = json::parse(kRepodata);
  const json subset = json::parse(index->subset({"a", "b", "e"}));
  EXPECT_EQ(subset["info"], whole["info"]);
  EXPECT_EQ(subset["removed"], whole["removed"]);
  EXPECT_EQ(subset["repodata_version"], 1);
  EXPECT_EQ(subset["packages"], (json{{"a-1-0.tar.bz2", whole["packages"]["a-1-0.tar.bz2"]}}));
  EXPECT_EQ(subset["packages.conda"],
            (json{{"b-2-0.conda", whole["packages.conda"]["b-2-0.conda"]},
                  {"e-1-0.conda", whole["packages.conda"]["e-1-0.conda"]}}));  // escaped name
  // The records' bytes as written, in their order.
  const std::string text = index->subset({"c", "a"});
  EXPECT_LT(text.find("\"a-1-0.tar.bz2\""), text.find("\"c-1-0.tar.bz2\""));
  EXPECT_NE(text.find(R"("depends": ["b >=2", "__glibc >=2.17"])"), std::string::npos);
  EXPECT_EQ(json::parse(index->subset({}))["packages"], json::object());
}

// libsolv decodes keys: an escaped "packages", "name" or "depends" is read as libsolv reads it
// (else a file cut in pieces would repeat such a member's records in every piece, or leave out
// a record libsolv loads).
TEST(RepodataIndex, ReadsEscapedKeysAsLibsolvDoes) {
  const std::string text = R"({"info": {"subdir": "linux-64"},
    "p\u0061ckages": {"a-1-0.tar.bz2": {"n\u0061me": "a", "d\u0065pends": ["b"]},
                       "b-1-0.tar.bz2": {"name": "b"}},
    "removed": ["big"], "signatures": {"x": 1}})";
  auto index = RepodataIndex::build(text, "repodata.json");
  ASSERT_TRUE(index) << index.error().to_string();
  NameSet depends;
  index->add_depends_of("a", depends);
  EXPECT_EQ(depends, NameSet{"b"});
  const json only_a = json::parse(index->subset({"a"}));
  EXPECT_EQ(only_a["packages"].size(), 1u);  // "p\u0061ckages" decoded by the JSON parser
  EXPECT_TRUE(only_a["packages"].contains("a-1-0.tar.bz2"));
  EXPECT_TRUE(only_a.contains("removed"));
  // A later piece of a cut file keeps "info" and its records, not the other members.
  const json piece = json::parse(index->subset({"b"}, RepodataIndex::Members::InfoOnly));
  EXPECT_EQ(piece["info"], json::parse(text)["info"]);
  EXPECT_EQ(piece["packages"].size(), 1u);
  EXPECT_FALSE(piece.contains("removed"));
  EXPECT_FALSE(piece.contains("signatures"));
}

// The loader cuts a walk's subset into pieces by the index its writer kept: they must be the
// pieces a scan of the same text gives, so that a subset parsed again later (its .solv lost)
// loads exactly as it did.
TEST(RepodataIndex, AWritersIndexIsTheScansOfWhatItWrote) {
  RepodataIndex::Writer writer(16);
  writer.member("info", R"({"subdir":"linux-64","base_url":"https://x/"})");
  writer.begin_records("packages");
  writer.record(R"("a-1-0.tar.bz2")", "a", R"({"name":"a","version":"1","depends":["b"]})");
  writer.record(R"("a-2-0.tar.bz2")", "a", R"({"name":"a","version":"2","depends":[]})");
  writer.record(R"("q\"-1-0.tar.bz2")", "q\"", R"({"name":"q\"","version":"1"})");
  writer.record(R"("c-1-0.tar.bz2")", "c", R"({"name":"x","version":"1","name":"c"})");
  writer.end_records();
  writer.begin_records("packages.conda");
  writer.record(R"("b-2-0.conda")", "b", R"({"name":"b","version":"2","depends":["c"]})");
  writer.record(R"("a-3-0.conda")", "a", R"({"name":"a","version":"3"})");
  writer.record(R"("e-1-0.conda")", "e", R"({"name":"\u0065","version":"1"})");
  writer.end_records();
  const RepodataIndex written = std::move(writer).finish();
  ASSERT_TRUE(json::accept(written.text())) << written.text();

  auto scanned = RepodataIndex::build(std::string(written.text()), "subset.json");
  ASSERT_TRUE(scanned) << scanned.error().to_string();
  EXPECT_EQ(written.records(), scanned->records());
  for (size_t parts = 1; parts <= 6; ++parts) {
    const std::vector<NameSet> groups = written.split_names(parts);
    ASSERT_EQ(groups, scanned->split_names(parts)) << parts << " parts";
    for (const NameSet& group : groups)
      for (auto members : {RepodataIndex::Members::All, RepodataIndex::Members::InfoOnly})
        EXPECT_EQ(written.subset(group, members), scanned->subset(group, members));
  }
  for (const std::string name : {"a", "b", "c", "e", "q\"", "x"}) {
    NameSet from_written, from_scanned;
    written.add_depends_of(name, from_written);
    scanned->add_depends_of(name, from_scanned);
    EXPECT_EQ(from_written, from_scanned) << name;
  }
}

TEST(RepodataIndex, RefusesWhatIsNotRepodataWithoutCrashing) {
  struct Case {
    const char* label;
    std::string text;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"empty", "", "expected '{'"},
      {"a list", "[]", "expected '{'"},
      {"truncated", R"({"packages": {"a": {"name": "a")", "expected '}'"},
      {"unterminated string", R"({"packages": {"a": {"name": "a)", "unterminated string"},
      {"missing colon", R"({"packages" {}})", "expected ':'"},
      {"trailing text", R"({} x)", "text after the top-level object"},
      {"no value", R"({"a": })", "a value expected"},
      {"deep nesting", "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}",
       "nesting deeper than"},
      {"control character", "{\"a\": \"x\ny\"}", "control character"},
      {"old list form", R"({"packages": [{"name": "a"}]})", "is a list"},
      {"bad literal", R"({"packages": {"x.tar.bz2": bogus}})", "an invalid literal"},
      {"bad number", R"({"a": 0x10})", "an invalid number"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    auto got = RepodataIndex::build(c.text, "ch/linux-64/repodata.json");
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().to_string().find(c.want), std::string::npos) << got.error().to_string();
    EXPECT_NE(got.error().to_string().find("ch/linux-64/repodata.json"), std::string::npos);
  }
}

TEST(RootNames, PlainNamesOrNothing) {
  // Each spec's name as we read it and as libsolv does (a superset: a name no record has
  // reaches nothing).
  EXPECT_EQ(root_names({"python 3.11.*", "conda-forge::numpy=1.26", "__cuda>=12", "pkg[version='>1']"}),
            (NameSet{"python", "numpy", "pkg", "pkg[version"}));
  EXPECT_EQ(root_names({"__glibc"}), NameSet{});
  // libsolv compares names in lower case and reads a name after the last ':'.
  EXPECT_EQ(root_names({"NumPy", "ch:scipy", "a::b:zlib >1"}),
            (NameSet{"NumPy", "numpy", "ch:scipy", "scipy", "b:zlib", "zlib"}));
  for (const char* pattern :
       {"py*", "conda-forge::py* 3", "*", "^py.*$", " *[name=numpy]", "foo|bar*", "ch:py*"})
    EXPECT_EQ(root_names({"numpy", pattern}), std::nullopt) << pattern;
}

class ReachTest : public TempDirTest {
 protected:
  fs::path make_channel() { return testing::write_index4_channel(dir_ / "channel", 1); }
  SolveRequest request(const fs::path& channel, std::vector<std::string> specs, bool reach) {
    SolveRequest r;
    r.channels = {channel.string()};
    r.specs = std::move(specs);
    r.platforms = {"linux-64"};
    r.virtual_packages = {{"__glibc", "2.36", "0"}};
    r.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    r.repodata.cache_dir = dir_ / (reach ? "cache" : "cache-whole");
    r.repodata.shards = reach;
    return r;
  }
  static std::vector<std::string> identities(const std::vector<solv::SolvedRecord>& records) {
    return testing::identities(records, /*with_url=*/true);
  }
  std::vector<fs::path> subsets() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_ / "cache"))
      if (e.path().filename().string().find(".subset.") != std::string::npos)
        out.push_back(e.path());
    return out;
  }
};

TEST_F(ReachTest, SolvesFromTheReachedRecordsAsFromTheWholeFile) {
  const fs::path ch = make_channel();
  const std::vector<std::string> specs = {"python 3.6.*", "scipy", "requests"};
  auto whole = solve_environment(request(ch, specs, false));
  ASSERT_TRUE(whole) << whole.error().to_string();
  auto reached = solve_environment(request(ch, specs, true));
  ASSERT_TRUE(reached) << reached.error().to_string();
  EXPECT_EQ(identities((*reached)[0].records), identities((*whole)[0].records));
  EXPECT_LT((*reached)[0].stats.records_loaded * 2, (*whole)[0].stats.records_loaded);
  EXPECT_EQ((*reached)[0].stats.solv_writes, 2u);
  ASSERT_EQ(subsets().size(), 2u);  // linux-64 and noarch, in the cache, not in the channel
  EXPECT_FALSE(fs::exists(ch / "linux-64" / "repodata.json.subset"));

  // Again, 40 days on: the reach is remembered, the subsets' .solv read, no JSON parsed; the
  // reach file and the subsets are marked used (`cache prune --older-than` goes by that).
  const auto forty_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(24 * 40);
  std::vector<fs::path> remembered = subsets();
  for (const auto& e : fs::directory_iterator(dir_ / "cache"))
    if (e.path().filename().string().starts_with("reach-")) remembered.push_back(e.path());
  ASSERT_EQ(remembered.size(), 3u);
  for (const fs::path& p : remembered) fs::last_write_time(p, forty_days_ago);
  auto again = solve_environment(request(ch, specs, true));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(identities((*again)[0].records), identities((*whole)[0].records));
  EXPECT_EQ((*again)[0].stats.solv_hits, 2u);
  EXPECT_EQ((*again)[0].stats.json_bytes, 0u);
  for (const fs::path& p : remembered)
    EXPECT_GT(fs::last_write_time(p), forty_days_ago + std::chrono::hours(24 * 39)) << p;

  // A torn subset (written without fsync; a crash) is not used: written again, same answer.
  std::map<fs::path, uintmax_t> sizes;
  for (const fs::path& p : subsets()) {
    sizes[p] = fs::file_size(p);
    fs::resize_file(p, sizes[p] / 2);
  }
  auto after_tear = solve_environment(request(ch, specs, true));
  ASSERT_TRUE(after_tear) << after_tear.error().to_string();
  EXPECT_EQ(identities((*after_tear)[0].records), identities((*whole)[0].records));
  for (const auto& [path, size] : sizes) EXPECT_EQ(fs::file_size(path), size) << path;

  // The channel changes: a new reach (the record added is found).
  json linux = json::parse(read_text(ch / "linux-64" / "repodata.json"));
  json extra = {{"name", "requests-extra"}, {"version", "1.0"}, {"build", "0"},
                {"build_number", 0}, {"depends", json::array({"requests"})}, {"subdir", "linux-64"}};
  linux["packages"]["requests-extra-1.0-0.tar.bz2"] = extra;
  write_text(ch / "linux-64" / "repodata.json", linux.dump());
  auto changed = solve_environment(request(ch, {"requests-extra"}, true));
  ASSERT_TRUE(changed) << changed.error().to_string();
  EXPECT_TRUE(testing::holds_package((*changed)[0].records, "requests-extra"));
}

// A dependency that libsolv reads as a pattern ("lib*", "^zlib(ng)?$") or behind a channel
// ("somechannel:dep3") reaches what libsolv would match: the answer of the whole file.
TEST_F(ReachTest, PatternAndChannelDependenciesReachWhatLibsolvMatches) {
  const fs::path ch = testing::write_patterned_dependency_channel(dir_ / "patterned");
  for (const auto& [spec, brought] : testing::patterned_dependencies()) {
    SCOPED_TRACE(spec);
    auto whole = solve_environment(request(ch, {spec}, false));
    ASSERT_TRUE(whole) << whole.error().to_string();
    auto reached = solve_environment(request(ch, {spec}, true));
    ASSERT_TRUE(reached) << reached.error().to_string();
    EXPECT_EQ(identities((*reached)[0].records), identities((*whole)[0].records));
    EXPECT_TRUE(testing::holds_package((*reached)[0].records, brought)) << brought;
    EXPECT_LT((*reached)[0].stats.records_loaded, (*whole)[0].stats.records_loaded);
  }
}

TEST_F(ReachTest, AnUnscannableFileIsLoadedWhole) {
  const fs::path ch = make_channel();
  auto whole = solve_environment(request(ch, {"python 3.6.*"}, false));
  ASSERT_TRUE(whole) << whole.error().to_string();

  // The old list form of "packages": not scanned, loaded whole, same answer.
  json linux = json::parse(read_text(ch / "linux-64" / "repodata.json"));
  linux["packages.conda"] = json::array();
  write_text(ch / "linux-64" / "repodata.json", linux.dump());
  auto listed = solve_environment(request(ch, {"python 3.6.*"}, true));
  ASSERT_TRUE(listed) << listed.error().to_string();
  EXPECT_EQ(identities((*listed)[0].records), identities((*whole)[0].records));
  // linux-64 read whole, its depends not walked: noarch is not subset either (it could lack one).
  EXPECT_TRUE(subsets().empty());
}

}  // namespace
}  // namespace envbuild::builder
