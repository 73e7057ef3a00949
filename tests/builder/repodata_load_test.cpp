// Large repodata is parsed in pieces at once (builder/solve/repodata_load.cpp): the pieces give
// the solve every record and the answer the whole file gives in one pool (a .conda still wins
// over its .tar.bz2 twin), they are the .solv cache a later solve reads, a damaged piece (or
// meta file) is rebuilt, and a file libsolv refuses is reported as itself, not as a piece.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "builder/solve/repodata_scan.hpp"
#include "builder/solve/solve.hpp"
#include "common/parallel.hpp"
#include "tests/builder/solve_testing.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

using envbuild::testing::TempDirTest;
using envbuild::testing::write_text;
using nlohmann::json;
namespace fs = std::filesystem;

/// p0000..p<n-1>, three versions each, as .tar.bz2 and as .conda (the .conda's md5 differs); pN
/// version k depends on p(N+1) >=k. About 1 KB a record.
json big_repodata(int names) {
  json doc = {{"info", {{"subdir", "linux-64"}}}, {"packages", json::object()},
              {"packages.conda", json::object()}, {"repodata_version", 1}};
  const std::string padding(700, 'x');
  for (int i = 0; i < names; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "p%04d", i);
    char next[16];
    std::snprintf(next, sizeof next, "p%04d", i + 1);
    for (int v = 1; v <= 3; ++v) {
      json record = {{"name", name},
                     {"version", std::to_string(v) + ".0"},
                     {"build", "h0_0"},
                     {"build_number", 0},
                     {"depends", i + 1 < names ? json::array({std::string(next) + " >=" +
                                                              std::to_string(v)})
                                               : json::array()},
                     {"license", padding},
                     {"timestamp", 1700000000000 + v},
                     {"subdir", "linux-64"}};
      const std::string stem = std::string(name) + "-" + std::to_string(v) + ".0-h0_0";
      record["md5"] = std::string(32, 'a');
      doc["packages"][stem + ".tar.bz2"] = record;
      record["md5"] = std::string(32, 'c');
      doc["packages.conda"][stem + ".conda"] = record;
    }
  }
  return doc;
}

class RepodataLoadTest : public TempDirTest {
 protected:
  fs::path make_channel(const json& linux) {
    const fs::path ch = dir_ / "channel";
    write_text(ch / "linux-64" / "repodata.json", linux.dump());
    write_text(ch / "noarch" / "repodata.json", R"({"info":{"subdir":"noarch"},"packages":{}})");
    return ch;
  }
  SolveRequest request(const fs::path& channel, bool cache) {
    SolveRequest r;
    r.channels = {channel.string()};
    r.specs = {"p1490"};
    r.platforms = {"linux-64"};
    r.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    r.repodata.cache_dir = dir_ / "cache";
    r.repodata.shards = false;  // every record: the whole file is what is cut
    r.use_solv_cache = cache;
    return r;
  }
  /// The linux-64 and noarch repodata of a 1500-name channel, fetched into the cache.
  Result<std::vector<SubdirRepodata>> big_channel_entries() {
    const SolveRequest r = request(make_channel(big_repodata(1500)), true);
    ENVB_ASSIGN_OR_RETURN(auto channels, resolve_channels(r.channels));
    return fetch_repodata(channels, {"linux-64", "noarch"}, r.repodata);
  }
  std::vector<fs::path> pieces() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_ / "cache"))
      if (e.path().filename().string().ends_with(".solv")) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(RepodataLoadTest, PiecesGiveTheWholeFilesAnswerAndAreTheCache) {
  const json linux = big_repodata(1500);
  const fs::path ch = make_channel(linux);
  ASSERT_GT(fs::file_size(ch / "linux-64" / "repodata.json"), size_t{6} << 20);  // 3+ pieces

  auto whole = solve_environment(request(ch, false));  // one pool, no cache: parsed whole
  ASSERT_TRUE(whole) << whole.error().to_string();
  const auto want = testing::identities((*whole)[0].records, /*with_url=*/true);
  ASSERT_EQ(want.size(), 10u);  // p1490..p1499, 3.0 each
  for (const auto& r : (*whole)[0].records) {
    EXPECT_EQ(r.version, "3.0");
    EXPECT_TRUE(r.fn.ends_with(".conda")) << r.fn;
  }
  // libsolv keeps one of each twin: 1500 names x 3 versions.
  EXPECT_EQ((*whole)[0].stats.records_loaded, 4500u);

  auto cold = solve_environment(request(ch, true));
  ASSERT_TRUE(cold) << cold.error().to_string();
  EXPECT_EQ(testing::identities((*cold)[0].records, true), want);
  EXPECT_EQ((*cold)[0].stats.records_loaded, 4500u);
  EXPECT_GE((*cold)[0].stats.solv_writes, 4u);  // linux-64 in pieces, noarch whole
  const auto written = pieces();
  EXPECT_GE(written.size(), 4u);

  auto warm = solve_environment(request(ch, true));
  ASSERT_TRUE(warm) << warm.error().to_string();
  EXPECT_EQ(testing::identities((*warm)[0].records, true), want);
  EXPECT_EQ((*warm)[0].stats.solv_hits, 2u);
  EXPECT_EQ((*warm)[0].stats.json_bytes, 0u);
  EXPECT_EQ((*warm)[0].stats.records_loaded, 4500u);

  // A damaged piece: the set is parsed again (nothing of the damaged set is kept twice).
  const auto second = std::find_if(written.begin(), written.end(), [](const fs::path& p) {
    return p.filename().string().ends_with(".1.solv");
  });
  ASSERT_NE(second, written.end());
  fs::resize_file(*second, fs::file_size(*second) / 2);
  auto mended = solve_environment(request(ch, true));
  ASSERT_TRUE(mended) << mended.error().to_string();
  EXPECT_EQ(testing::identities((*mended)[0].records, true), want);
  EXPECT_EQ((*mended)[0].stats.records_loaded, 4500u);
  EXPECT_EQ((*mended)[0].stats.solv_hits, 1u);  // noarch
  EXPECT_EQ(pieces(), written);

  // A piece cut short (an empty piece, a short meta file: a full disk, a copy cut short) is
  // found on loading and parsed again, not an error at the end of the solve.
  for (auto [suffix, cut] : {std::pair{".0.solv", false}, std::pair{".2.solv.meta", true}}) {
    SCOPED_TRACE(suffix);
    const std::string linux_stem = second->string().substr(0, second->string().size() - 7);
    const fs::path victim = linux_stem + suffix;
    ASSERT_TRUE(fs::exists(victim));
    fs::resize_file(victim, cut ? fs::file_size(victim) - 1 : 0);
    auto again = solve_environment(request(ch, true));
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(testing::identities((*again)[0].records, true), want);
    EXPECT_EQ((*again)[0].stats.records_loaded, 4500u);
    EXPECT_EQ((*again)[0].stats.solv_hits, 1u);  // noarch only: linux-64 parsed again
  }
}

// Pieces are written without a sync, so that no parse waits on the disk; they are synced when
// listed, by the work a solve does on its idle core (common::LaterWork): a list never names a
// piece a crash could tear, and a piece not listed yet is a miss, parsed again.
TEST_F(RepodataLoadTest, PiecesAreListedOnlyOnceSyncedByTheLaterWork) {
  auto entries = big_channel_entries();
  ASSERT_TRUE(entries) << entries.error().to_string();
  auto lists = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "cache"))
      n += e.path().filename().string().ends_with(".pieces");
    return n;
  };
  {
    common::LaterWork later;  // not started: runs what it holds when it goes
    PieceSealing sealing{&later, {}};
    solv::Pool pool;
    SolveStats stats;
    ASSERT_TRUE(load_repodata(pool, *entries, true, stats, &sealing));
    EXPECT_EQ(stats.records_loaded, 4500u);
    const auto written = pieces();
    EXPECT_GE(written.size(), 4u);
    EXPECT_EQ(lists(), 0u);  // written, not yet synced: not named as whole
    // Another load of the same solve (a second platform's noarch) reads them as they are,
    // and removes none.
    solv::Pool second;
    SolveStats again;
    ASSERT_TRUE(load_repodata(second, *entries, true, again, &sealing));
    EXPECT_EQ(again.solv_hits, 2u);
    EXPECT_EQ(again.json_bytes, 0u);
    EXPECT_EQ(pieces(), written);
    EXPECT_EQ(lists(), 0u);
  }
  EXPECT_EQ(lists(), 2u);
  solv::Pool pool;
  SolveStats stats;
  ASSERT_TRUE(load_repodata(pool, *entries, true, stats));
  EXPECT_EQ(stats.solv_hits, 2u);
  EXPECT_EQ(stats.json_bytes, 0u);
  EXPECT_EQ(stats.records_loaded, 4500u);
}

// A piece another solve put in the place of ours before ours was synced (it removed ours to
// parse the file again) is not synced by us, and we list nothing: that solve lists its own.
TEST_F(RepodataLoadTest, APieceReplacedBeforeItsSealIsNotListed) {
  auto entries = big_channel_entries();
  ASSERT_TRUE(entries) << entries.error().to_string();
  {
    common::LaterWork later;
    PieceSealing sealing{&later, {}};
    solv::Pool pool;
    SolveStats stats;
    ASSERT_TRUE(load_repodata(pool, *entries, true, stats, &sealing));
    const auto written = pieces();
    const auto second = std::find_if(written.begin(), written.end(), [](const fs::path& p) {
      return p.filename().string().ends_with(".1.solv");  // linux-64's: noarch is one piece
    });
    ASSERT_NE(second, written.end());
    const fs::path other = second->string() + ".other";
    fs::copy_file(*second, other);
    fs::rename(other, *second);  // the same bytes, another file
  }
  size_t lists = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "cache"))
    lists += e.path().filename().string().ends_with(".pieces");
  EXPECT_EQ(lists, 1u);  // noarch's only
}

TEST_F(RepodataLoadTest, AFileLibsolvRefusesIsReportedAsItself) {
  json linux = big_repodata(1200);
  linux["info"]["subdir"] = json::array({"linux-64"});  // libsolv 0.7.23 crashed on this
  const fs::path ch = make_channel(linux);
  auto solved = solve_environment(request(ch, true));
  ASSERT_FALSE(solved);
  const std::string text = solved.error().to_string();
  EXPECT_NE(text.find("\"info\" holds an array"), std::string::npos) << text;
  EXPECT_NE(text.find((ch / "linux-64" / "repodata.json").string()), std::string::npos) << text;
  EXPECT_EQ(text.find("piece"), std::string::npos) << text;
}

TEST(RepodataIndexSplit, NamesInOrderOfFirstRecordAboutEqualBytes) {
  const std::string text = big_repodata(100).dump();
  auto index = RepodataIndex::build(text, "doc");
  ASSERT_TRUE(index) << index.error().to_string();
  const auto groups = index->split_names(4);
  ASSERT_EQ(groups.size(), 4u);
  NameSet all;
  for (const NameSet& g : groups) {
    EXPECT_GE(g.size(), 20u);
    EXPECT_LE(g.size(), 30u);
    all.insert(g.begin(), g.end());
  }
  EXPECT_EQ(all.size(), 100u);
  EXPECT_TRUE(groups[0].contains("p0000"));
  EXPECT_TRUE(groups[3].contains("p0099"));
  EXPECT_EQ(index->split_names(1).size(), 1u);
  EXPECT_EQ(index->split_names(500).size(), 100u);  // never more groups than names
}

}  // namespace
}  // namespace envbuild::builder
