// Sharded repodata (CEP 16): a channel's sharded twin (tests/testing/make_shards.py) served by
// tests/testing/repo_server.py solves to exactly what its repodata.json gives, fetching only
// the shards its specs reach; a corrupt, oversize or mismatched shard is a clear error; a
// transfer cut mid-body resumes.

#include "builder/solve/shards.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <map>
#include <set>

#include "builder/solve/solve.hpp"
#include "tests/builder/solve_testing.hpp"
#include "common/hash.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

using envbuild::testing::read_text;
using envbuild::testing::RepoServer;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using envbuild::testing::TempDirTest;
using envbuild::testing::write_text;
using nlohmann::json;
namespace fs = std::filesystem;

std::string packed(const json& doc) {
  const std::vector<uint8_t> bytes = json::to_msgpack(doc);
  return std::string(bytes.begin(), bytes.end());
}

// The index is read streaming (no DOM); what it accepts and refuses, and the message, are a
// DOM reader's: the shard index of conda-forge names a few hundred thousand packages.
TEST(ShardIndexTest, ReadsWhatAnIndexSaysAndRefusesWhatItCannotTrust) {
  const std::vector<uint8_t> a(32, 0xab), b(32, 0x01);
  auto index = parse_shard_index_msgpack(
      packed({{"version", 1},
              {"info",
               {{"base_url", "https://x/"}, {"shards_base_url", "s/"}, {"subdir", "noarch"}}},
              {"shards", {{"b", json::binary(b)}, {"a", json::binary(a)}}}}),
      "idx");
  ASSERT_TRUE(index) << index.error().to_string();
  EXPECT_EQ(index->base_url, "https://x/");
  EXPECT_EQ(index->shards_base_url, std::optional<std::string>("s/"));
  ASSERT_EQ(index->shard_of.size(), 2u);
  auto repeat = [](const char* two) {
    std::string hex;
    for (int i = 0; i < 32; ++i) hex += two;
    return hex;
  };
  EXPECT_EQ(index->shard_of.at("a"), repeat("ab"));
  EXPECT_EQ(index->shard_of.at("b"), repeat("01"));
  // No info, no version: defaults.
  auto bare = parse_shard_index_msgpack(packed({{"shards", json::object()}}), "idx");
  ASSERT_TRUE(bare) << bare.error().to_string();
  EXPECT_FALSE(bare->shards_base_url);
  // An empty one is given (the host's root, as a DOM reader had it), not absent.
  auto empty = parse_shard_index_msgpack(
      packed({{"info", {{"shards_base_url", ""}}}, {"shards", json::object()}}), "idx");
  ASSERT_TRUE(empty) << empty.error().to_string();
  EXPECT_EQ(empty->shards_base_url, std::optional<std::string>(""));
  EXPECT_TRUE(bare->shard_of.empty());

  struct Case {
    const char* label;
    std::string raw;
    Errc code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"an array", packed(json::array({1, 2})), Errc::Integrity, "not a shard index"},
      {"no shards", packed({{"info", json::object()}}), Errc::Integrity, "not a shard index"},
      {"shards not a map", packed({{"shards", json::array()}}), Errc::Integrity,
       "not a shard index"},
      {"version 2", packed({{"version", 2}, {"shards", json::object()}}), Errc::Unsupported,
       "shard index version 2 (envbuild reads version 1)"},
      {"version as text", packed({{"version", "1"}, {"shards", json::object()}}),
       Errc::Unsupported, "shard index version \"1\""},
      {"a short hash", packed({{"shards", {{"numpy", json::binary(std::vector<uint8_t>(31))}}}}),
       Errc::Integrity, "the shard hash of 'numpy' is not 32 bytes"},
      {"a hash as text", packed({{"shards", {{"numpy", std::string(32, 'x')}}}}),
       Errc::Integrity, "the shard hash of 'numpy' is not 32 bytes"},
      {"a hash as a map", packed({{"shards", {{"numpy", {{"x", json::binary(a)}}}}}}),
       Errc::Integrity, "the shard hash of 'numpy' is not 32 bytes"},
      {"not msgpack", std::string("\xc1"), Errc::Integrity, "invalid msgpack"},
      {"cut short", packed({{"shards", {{"numpy", json::binary(a)}}}}).substr(0, 20),
       Errc::Integrity, "invalid msgpack"},
  };
  for (const Case& c : cases) {
    auto got = parse_shard_index_msgpack(c.raw, "https://ch/linux-64/repodata_shards.msgpack.zst");
    ASSERT_FALSE(got) << c.label;
    EXPECT_EQ(got.error().code(), c.code) << c.label;
    EXPECT_NE(got.error().to_string().find(c.says), std::string::npos)
        << c.label << ": " << got.error().to_string();
    EXPECT_NE(got.error().to_string().find("https://ch/linux-64/"), std::string::npos) << c.label;
  }

  // A key given twice counts as given last: a later "shards" replaces an earlier one, a later
  // hash of a name its earlier one (msgpack written by hand: a DOM cannot hold the twins).
  std::string twice = "\x83";  // a map of 3
  twice += "\xa6" "shards" "\x81" "\xa1" "z" "\xc4\x02" "zz";  // {"z": 2 bytes}: replaced
  twice += "\xa6" "shards" "\x82" "\xa1" "a" "\xc4\x01" "x" "\xa1" "a" "\xc4\x20";
  twice += std::string(32, '\x01');
  twice += "\xa7" "version" "\x01";
  auto last = parse_shard_index_msgpack(twice, "idx");
  ASSERT_TRUE(last) << last.error().to_string();
  ASSERT_EQ(last->shard_of.size(), 1u);
  EXPECT_EQ(last->shard_of.begin()->first, "a");
}

struct CurlGlobal : ::testing::Environment {
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void TearDown() override { curl_global_cleanup(); }
};
[[maybe_unused]] auto* const kCurl = ::testing::AddGlobalTestEnvironment(new CurlGlobal);

TEST(SpecPackageName, Table) {
  struct Case {
    std::string_view in, want;
  } cases[] = {
      {"python", "python"},
      {"python >=3.11,<3.12.0a0", "python"},
      {"numpy=1.26", "numpy"},
      {"conda-forge::numpy 1.26.*", "numpy"},
      {"https://h/c::libgcc-ng>=12", "libgcc-ng"},
      {"pkg[version='>1']", "pkg"},
      {"  __glibc >=2.17", "__glibc"},
      {"", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(spec_package_name(c.in), c.want);
  }
}

TEST(ParseShard, RecordsBecomeTheJsonTheyWere) {
  json rec = {{"name", "a"},
              {"version", "1"},
              {"build_number", 3},
              {"offset", -7},
              {"ratio", 1.5},
              {"timestamp", 1.7e12},  // written 1700000000000: libsolv reads it with strtoull
              {"noarch", nullptr},
              {"flag", true},
              {"license", "q\"\\\n\x01 \u00e9"},
              {"depends", {"b >=1", "c", "__glibc"}},
              {"run_exports", {{"weak", {"x"}}}},
              {"constrains", json::array()}};
  json with_bytes = rec;
  with_bytes["md5"] = json::binary(std::vector<std::uint8_t>{0x01, 0xfe});
  auto bytes = json::to_msgpack(json{{"packages.conda", {{"a-1-0.conda", with_bytes}}},
                                     {"removed", {"z-1-0.conda"}}});
  auto got = parse_shard_msgpack(std::string(bytes.begin(), bytes.end()), "a", "shard of 'a'");
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_EQ(got->packages_conda.size(), 1u);
  EXPECT_TRUE(got->packages.empty());
  rec["md5"] = "01fe";
  EXPECT_EQ(json::parse(got->packages_conda["a-1-0.conda"]), rec);
  EXPECT_NE(got->packages_conda["a-1-0.conda"].find("\"timestamp\":1700000000000"),
            std::string::npos);
  EXPECT_EQ(got->depends, (std::set<std::string, std::less<>>{"b", "c"}));

  // Bytes that are not UTF-8 pass through for libsolv (nlohmann's writer threw on them).
  std::string raw = "\x81\xa8packages\x81\xa1" "f\x82\xa4name\xa1" "a\xa7license\xa2\xff\xfe";
  auto odd = parse_shard_msgpack(raw, "a", "shard of 'a'");
  ASSERT_TRUE(odd) << odd.error().to_string();
  EXPECT_EQ(odd->packages["f"], "{\"name\":\"a\",\"license\":\"\xff\xfe\"}");
}

TEST(ParseShard, RejectsWhatIsNotAShard) {
  const std::string fine = [] {
    json rec = {{"name", "a"}, {"version", "1"}, {"depends", {"b >=1", "__glibc"}}};
    rec["sha256"] = json::binary(std::vector<std::uint8_t>(32, 0xab));
    auto bytes = json::to_msgpack(json{{"packages", {{"a-1-0.tar.bz2", rec}}}});
    return std::string(bytes.begin(), bytes.end());
  }();
  auto ok = parse_shard_msgpack(fine, "a", "shard of 'a'");
  ASSERT_TRUE(ok) << ok.error().to_string();
  std::string ab;
  for (int i = 0; i < 32; ++i) ab += "ab";
  EXPECT_EQ(json::parse(ok->packages["a-1-0.tar.bz2"])["sha256"], ab);
  EXPECT_EQ(ok->depends, (std::set<std::string, std::less<>>{"b"}));

  struct Case {
    const char* label;
    std::string raw;
    std::string_view want;
  } cases[] = {
      {"another name", fine, "not a package named 'z'"},
      {"not a map", std::string("\x93\x01\x02\x03", 4), "a shard is a msgpack map"},
      {"truncated", fine.substr(0, fine.size() / 2), "invalid msgpack"},
      {"never-used byte", std::string("\xc1", 1), "invalid msgpack"},
      {"deep",
       [] {  // maps of one key, "a", 100000 deep
         std::string raw;
         for (int i = 0; i < 100000; ++i) raw += "\x81\xa1" "a";
         return raw;
       }(),
       "nested more than"},
      // A map that claims 2^32-1 entries in 5 bytes: refused at the end of the input, with
      // nothing allocated ahead.
      {"huge count", std::string("\xdf\xff\xff\xff\xff", 5), "invalid msgpack"},
      {"huge string", std::string("\xdb\xff\xff\xff\xff" "abc", 8), "invalid msgpack"},
      // "na\0me" would be written as a second "name" (NUL bytes are dropped from JSON text).
      {"NUL in a key",
       std::string("\x81\xa8packages\x81\xa1" "f\x82\xa4name\xa1" "a\xa5na\0me\xa1z", 29),
       "a key with a NUL byte"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    auto got = parse_shard_msgpack(c.raw, c.label == std::string("another name") ? "z" : "a",
                                   "shard of 'x'");
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::Integrity);
    EXPECT_NE(got.error().to_string().find(c.want), std::string::npos) << got.error().to_string();
    EXPECT_NE(got.error().to_string().find("shard of 'x'"), std::string::npos);
  }
}

class ShardsTest : public TempDirTest {
 protected:
  /// web/<name>: the real 2018 defaults channel (conda's index4 test data subset, linux-64 and noarch),
  /// split by subdir; sharded when asked.
  fs::path make_channel(const std::string& name, bool sharded) {
    fs::path ch = testing::write_index4_channel(dir_ / "web" / name);
    if (sharded) {
      auto r = run_command("python3 " +
                           shell_quote((envbuild::testing::source_dir() /
                                        "tests/testing/make_shards.py").string()) +
                           " " + shell_quote(ch.string()));
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    return ch;
  }
  SolveRequest request(const std::string& channel, std::vector<std::string> specs,
                       const std::string& cache = "cache") {
    SolveRequest r;
    r.channels = {channel};
    r.specs = std::move(specs);
    r.platforms = {"linux-64"};
    r.virtual_packages = {{"__glibc", "2.36", "0"}};
    r.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    r.repodata.cache_dir = dir_ / cache;
    r.repodata.http.initial_backoff = std::chrono::milliseconds(5);
    r.repodata.http.use_netrc = false;
    return r;
  }
  /// What identifies a solved package, whatever the channel's URL.
  static std::vector<std::string> identities(const std::vector<solv::SolvedRecord>& records) {
    return testing::identities(records);
  }

  /// The names `roots` reach through depends in a repodata.json (what a sharded solve needs).
  static std::set<std::string> reachable(const fs::path& repodata,
                                         std::vector<std::string> roots) {
    json doc = json::parse(read_text(repodata));
    std::set<std::string> seen(roots.begin(), roots.end());
    while (!roots.empty()) {
      std::string name = roots.back();
      roots.pop_back();
      for (const char* key : {"packages", "packages.conda"}) {
        const json records = doc.value(key, json::object());  // items() needs it alive
        for (const auto& [fn, rec] : records.items()) {
          if (rec["name"] != name) continue;
          for (const auto& dep : rec.value("depends", json::array())) {
              std::string d(spec_package_name(dep.get<std::string>()));
            if (!d.starts_with("__") && seen.insert(d).second) roots.push_back(d);
          }
        }
      }
    }
    return seen;
  }
  static size_t count(const std::vector<std::string>& lines, const std::string& needle) {
    return std::count_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }
  /// Paths of the shards the server was asked for.
  static std::set<std::string> shard_requests(const std::vector<std::string>& lines) {
    std::set<std::string> out;
    for (const auto& l : lines) {
      json j = json::parse(l);
      if (j["path"].get<std::string>().find("/shards/") != std::string::npos)
        out.insert(j["path"].get<std::string>());
    }
    return out;
  }
  /// The shard file of each package name in a sharded subdir (found by content): one zstd run
  /// for all of them (one per shard and name made this test take a minute).
  std::map<std::string, fs::path> shards_by_name(const fs::path& subdir) {
    std::map<std::string, fs::path> out;
    if (!fs::exists(subdir / "shards") || fs::is_empty(subdir / "shards")) return out;
    const fs::path raw_dir = dir_ / ("raw-shards-" + std::to_string(raw_dirs_++));
    fs::create_directories(raw_dir);
    auto r = run_command("zstd -q -d -f --output-dir-flat " + shell_quote(raw_dir.string()) + " " +
                         shell_quote((subdir / "shards").string()) + "/*.msgpack.zst");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (const auto& f : fs::directory_iterator(subdir / "shards")) {
      auto doc = json::from_msgpack(read_text(raw_dir / f.path().stem()), true, false);
      if (doc.is_discarded()) continue;
      for (const char* key : {"packages", "packages.conda"}) {
        const json records = doc.value(key, json::object());
        for (const auto& [fn, rec] : records.items()) out[rec["name"]] = f.path();
      }
    }
    fs::remove_all(raw_dir);
    return out;
  }
  int raw_dirs_ = 0;

  /// Makes `bytes` the shard of `name` in the sharded `subdir`: written under its hash, and the
  /// index rewritten to vouch for it.
  void vouch_for_shard(const fs::path& subdir, const std::string& name, const std::string& bytes) {
    const std::string hash = common::sha256_hex(bytes);
    write_text(subdir / "shards" / (hash + ".msgpack.zst"), bytes);
    const fs::path index_file = subdir / "repodata_shards.msgpack.zst";
    const fs::path raw = dir_ / "index.msgpack";
    ASSERT_EQ(run_command("zstd -q -d -f " + shell_quote(index_file.string()) + " -o " +
                          shell_quote(raw.string()))
                  .exit_code,
              0);
    json index = json::from_msgpack(read_text(raw));
    std::vector<std::uint8_t> digest;
    for (size_t i = 0; i < 64; i += 2) digest.push_back(std::stoi(hash.substr(i, 2), nullptr, 16));
    index["shards"][name] = json::binary(digest);
    auto packed = json::to_msgpack(index);
    write_text(raw, std::string(packed.begin(), packed.end()));
    ASSERT_EQ(run_command("zstd -q -f " + shell_quote(raw.string()) + " -o " +
                          shell_quote(index_file.string()))
                  .exit_code,
              0);
  }
};

TEST_F(ShardsTest, SameSolutionAsRepodataJsonFetchingOnlyReachableShards) {
  fs::path full = make_channel("full", false);
  fs::path sharded = make_channel("sharded", true);
  RepoServer server(dir_ / "web", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  const std::vector<std::string> specs = {"python 3.6.*", "scipy", "requests"};

  auto from_json = solve_environment(request(server.url() + "/full", specs, "cache-full"));
  ASSERT_TRUE(from_json) << from_json.error().to_string();
  auto log_full = server.log_lines();
  EXPECT_EQ(count(log_full, "/full/linux-64/repodata_shards.msgpack.zst\", \"status\": 404"), 1u);
  server.clear_log();

  auto from_shards = solve_environment(request(server.url() + "/sharded", specs));
  ASSERT_TRUE(from_shards) << from_shards.error().to_string();
  EXPECT_EQ(identities((*from_shards)[0].records), identities((*from_json)[0].records));
  for (const auto& r : (*from_shards)[0].records)
    EXPECT_EQ(r.url, server.url() + "/sharded/linux-64/" + r.fn);
  // The same names reached, from shards as from the scanned whole repodata.json.
  EXPECT_EQ((*from_shards)[0].stats.records_loaded, (*from_json)[0].stats.records_loaded);

  // Exactly the shards of the names the specs reach, each once; no repodata.json.
  auto log = server.log_lines();
  std::set<std::string> want;
  for (const char* subdir : {"linux-64", "noarch"}) {
    std::set<std::string> names;
    for (const char* s2 : {"linux-64", "noarch"})  // a name reached in one subdir is asked of both
      for (const auto& n : reachable(sharded / s2 / "repodata.json", {"python", "scipy", "requests"}))
        names.insert(n);
    const auto shards = shards_by_name(sharded / subdir);
    for (const auto& name : names)
      if (auto p = shards.find(name); p != shards.end())
        want.insert("/sharded/" + std::string(subdir) + "/shards/" + p->second.filename().string());
  }
  EXPECT_EQ(shard_requests(log), want);
  EXPECT_EQ(count(log, "/shards/"), want.size()) << "a shard was asked for twice";
  EXPECT_LT(want.size(), 200u) << "the test needs names the specs do not reach";
  EXPECT_EQ(count(log, "repodata.json"), 0u);

  // Again: the index is revalidated (304), no shard is asked for, the .solv cache is used.
  server.clear_log();
  // 40 days on: shards/ is marked used though no shard is written (`cache prune` goes by that).
  const auto forty_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(24 * 40);
  fs::last_write_time(dir_ / "cache" / "shards", forty_days_ago);
  auto again = solve_environment(request(server.url() + "/sharded", specs));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_GT(fs::last_write_time(dir_ / "cache" / "shards"),
            forty_days_ago + std::chrono::hours(24 * 39));
  EXPECT_EQ(identities((*again)[0].records), identities((*from_json)[0].records));
  auto log2 = server.log_lines();
  EXPECT_EQ(count(log2, "/shards/"), 0u);
  EXPECT_EQ(count(log2, "repodata_shards.msgpack.zst\", \"status\": 304"), 2u);
  EXPECT_EQ((*again)[0].stats.solv_hits, 2u);

  // A torn subset (a crash: it is written without fsync) is not used: the shards are read
  // again from the cache, to the same answer, with no request for a shard.
  std::map<fs::path, uintmax_t> whole_sizes;
  for (const auto& e : fs::directory_iterator(dir_ / "cache"))
    if (e.path().filename().string().find(".subset.") != std::string::npos) {
      whole_sizes[e.path()] = fs::file_size(e.path());
      fs::resize_file(e.path(), fs::file_size(e.path()) / 2);
    }
  EXPECT_EQ(whole_sizes.size(), 2u);
  // Solved again: the answer from repodata.json, with `shards_fetched` shards asked for.
  auto same_answer_fetching = [&](size_t shards_fetched) {
    server.clear_log();
    auto again = solve_environment(request(server.url() + "/sharded", specs));
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(identities((*again)[0].records), identities((*from_json)[0].records));
    EXPECT_EQ(count(server.log_lines(), "/shards/"), shards_fetched);
  };
  same_answer_fetching(0);
  for (const auto& [path, size] : whole_sizes) EXPECT_EQ(fs::file_size(path), size) << path;

  // A torn shard file (written straight to its name, without fsync) is fetched again and
  // replaced whole; the others are read from the cache.
  std::map<fs::path, uintmax_t> shard_sizes;
  for (const auto& e : fs::directory_iterator(dir_ / "cache" / "shards"))
    shard_sizes[e.path()] = fs::file_size(e.path());
  ASSERT_GT(shard_sizes.size(), 1u);
  const fs::path torn = shard_sizes.begin()->first;
  fs::resize_file(torn, shard_sizes.begin()->second / 2);
  for (const auto& e : fs::directory_iterator(dir_ / "cache"))
    if (e.path().filename().string().starts_with("reach-")) fs::remove(e.path());
  same_answer_fetching(1);
  for (const auto& [path, size] : shard_sizes) EXPECT_EQ(fs::file_size(path), size) << path;

  // --no-shards: the channel's repodata.json, same answer.
  server.clear_log();
  auto req = request(server.url() + "/sharded", specs, "cache-no-shards");
  req.repodata.shards = false;
  auto whole = solve_environment(req);
  ASSERT_TRUE(whole) << whole.error().to_string();
  EXPECT_EQ(identities((*whole)[0].records), identities((*from_json)[0].records));
  EXPECT_GT((*whole)[0].stats.records_loaded, (*from_shards)[0].stats.records_loaded);
  EXPECT_EQ(count(server.log_lines(), "repodata_shards"), 0u);
  EXPECT_EQ(count(server.log_lines(), "/sharded/linux-64/repodata.json\", \"status\": 200"), 1u);

  // Offline from the filled cache: no request.
  server.clear_log();
  auto offline_req = request(server.url() + "/sharded", specs);
  offline_req.repodata.offline = true;
  auto offline = solve_environment(offline_req);
  ASSERT_TRUE(offline) << offline.error().to_string();
  EXPECT_EQ(identities((*offline)[0].records), identities((*from_json)[0].records));
  EXPECT_TRUE(server.log_lines().empty());
}

// A dependency that libsolv reads as a pattern or behind a channel reaches, through shards, the
// shards of every name libsolv would match: the answer of the whole repodata.json.
TEST_F(ShardsTest, PatternAndChannelDependenciesReachWhatLibsolvMatches) {
  const fs::path ch = testing::write_patterned_dependency_channel(dir_ / "web" / "patterned");
  auto sharded = run_command("python3 " +
                             shell_quote((envbuild::testing::source_dir() /
                                          "tests/testing/make_shards.py").string()) +
                             " " + shell_quote(ch.string()));
  ASSERT_EQ(sharded.exit_code, 0) << sharded.output;
  RepoServer server(dir_ / "web", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  for (const auto& [spec, brought] : testing::patterned_dependencies()) {
    SCOPED_TRACE(spec);
    auto whole_request = request(server.url() + "/patterned", {spec}, "cache-whole-" + spec);
    whole_request.repodata.shards = false;
    auto whole = solve_environment(whole_request);
    ASSERT_TRUE(whole) << whole.error().to_string();
    server.clear_log();
    auto from_shards = solve_environment(request(server.url() + "/patterned", {spec}, "cache-" + spec));
    ASSERT_TRUE(from_shards) << from_shards.error().to_string();
    EXPECT_EQ(identities((*from_shards)[0].records), identities((*whole)[0].records));
    EXPECT_TRUE(testing::holds_package((*from_shards)[0].records, brought)) << brought;
    EXPECT_EQ(count(server.log_lines(), "/patterned/linux-64/repodata.json"), 0u);
    // Only what the pattern matches: "other" matches none of them.
    const auto other = shards_by_name(ch / "linux-64").at("other").filename().string();
    EXPECT_EQ(count(server.log_lines(), other), 0u);
  }
}

TEST_F(ShardsTest, MismatchedCorruptAndOversizeShardsAreErrorsNamingThePackage) {
  fs::path ch = make_channel("c", true);
  RepoServer server(dir_ / "web", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  const auto shards = shards_by_name(ch / "linux-64");
  ASSERT_TRUE(shards.contains("python"));
  const fs::path python = shards.at("python");
  const std::string original = read_text(python);

  struct Case {
    const char* label;
    std::string shell;  // writes the shard's bytes to "$1"
    Errc code;
    std::string_view want;
  } cases[] = {
      {"hash mismatch", "printf x >> \"$1\"", Errc::Integrity, "does not match the index's"},
      {"not zstd", "printf 'not zstd' > \"$1\"", Errc::Integrity, "bad zstd data"},
      {"not msgpack", "printf '\\301' | zstd -q -c > \"$1\"", Errc::Integrity, "invalid msgpack"},
      {"cut short", "head -c 300000 /dev/urandom | zstd -q -c | head -c 1000 > \"$1\"",
       Errc::Integrity, "truncated zstd stream"},
      // Grown past its first 64 KiB (no size declared), then cut before its checksum.
      {"cut short after growing", "head -c 300000 /dev/zero | zstd -q -c | head -c -4 > \"$1\"",
       Errc::Integrity, "truncated zstd stream"},
      {"oversize", "head -c 300000000 /dev/zero | zstd -q -c > \"$1\"", Errc::Integrity,
       "decompresses to more than 256 MiB"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    write_text(python, original);
    auto r = run_command("sh -c " + shell_quote(c.shell) + " sh " + shell_quote(python.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // A shard the index vouches for: its file renamed to its hash, the index rewritten.
    if (std::string(c.label) != "hash mismatch") {
      ASSERT_NO_FATAL_FAILURE(vouch_for_shard(ch / "linux-64", "python", read_text(python)));
    }
    auto got = solve_environment(
        request(server.url() + "/c", {"python"}, "cache-" + std::to_string(n++)));
    ASSERT_FALSE(got);
    const std::string text = got.error().to_string();
    EXPECT_EQ(got.error().code(), c.code) << text;
    EXPECT_NE(text.find(c.want), std::string::npos) << text;
    EXPECT_NE(text.find("shard of 'python'"), std::string::npos) << text;
  }
}

// A file name that the shards of two names both hold (a broken or hostile index): the record
// kept is the one of the name first in order, whichever shard is taken last, so that neither the
// solve nor the cached subset depends on the order the fetches finish in.
TEST_F(ShardsTest, AFileNameInTwoShardsKeepsTheFirstNamesRecord) {
  const fs::path ch = dir_ / "web" / "dup";
  auto record = [](const std::string& name, const std::string& version) {
    return json{{"name", name},         {"version", version},        {"build", "0"},
                {"build_number", 0},    {"depends", json::array()}, {"subdir", "linux-64"}};
  };
  json repodata = {{"info", {{"subdir", "linux-64"}}}, {"packages", json::object()}};
  repodata["packages"]["a-1-0.tar.bz2"] = record("a", "1");
  repodata["packages"]["z-1-0.tar.bz2"] = record("z", "1");
  write_text(ch / "linux-64/repodata.json", repodata.dump());
  write_text(ch / "noarch/repodata.json", R"({"info":{"subdir":"noarch"},"packages":{}})");
  auto made = run_command("python3 " +
                          shell_quote((envbuild::testing::source_dir() /
                                       "tests/testing/make_shards.py").string()) +
                          " " + shell_quote(ch.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // Each name's shard also holds "dup-2-0.tar.bz2", as a build of its own name.
  for (const std::string name : {"a", "z"}) {
    json shard = {{"packages", {{name + "-1-0.tar.bz2", record(name, "1")},
                                {"dup-2-0.tar.bz2", record(name, "2")}}},
                  {"packages.conda", json::object()}};
    auto packed = json::to_msgpack(shard);
    write_text(dir_ / "shard.msgpack", std::string(packed.begin(), packed.end()));
    ASSERT_EQ(run_command("zstd -q -f " + shell_quote((dir_ / "shard.msgpack").string()) + " -o " +
                          shell_quote((dir_ / "shard.msgpack.zst").string()))
                  .exit_code,
              0);
    ASSERT_NO_FATAL_FAILURE(
        vouch_for_shard(ch / "linux-64", name, read_text(dir_ / "shard.msgpack.zst")));
  }
  RepoServer server(dir_ / "web", dir_);
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  // One fetch at a time takes a's shard, then z's (whose record came in last before); several
  // at once, either.
  int n = 0;
  for (size_t jobs : {1, 1, 8, 8, 8}) {
    SCOPED_TRACE("jobs " + std::to_string(jobs));
    auto r = request(server.url() + "/dup", {"a", "z"}, "cache-" + std::to_string(n++));
    r.repodata.jobs = jobs;
    auto got = solve_environment(r);
    ASSERT_TRUE(got) << got.error().to_string();
    std::map<std::string, std::string> versions;
    for (const auto& rec : (*got)[0].records) versions[rec.name] = rec.version + " " + rec.fn;
    EXPECT_EQ(versions["a"], "2 dup-2-0.tar.bz2");
    EXPECT_EQ(versions["z"], "1 z-1-0.tar.bz2");
  }
}

// A 304 to a request that named no cached copy (a broken or hostile server) is an error naming
// what was asked, not a crash: for the shard index, and for repodata.json without shards.
TEST_F(ShardsTest, ANotModifiedNobodyAskedForIsAnError) {
  make_channel("sharded", true);
  RepoServer server(dir_ / "web", dir_, 0, "", "--always-304");
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  for (bool shards : {true, false}) {
    SCOPED_TRACE(shards ? "shards" : "repodata.json");
    SolveRequest r = request(server.url() + "/sharded", {"python"}, shards ? "c1" : "c2");
    r.repodata.shards = shards;
    auto got = solve_environment(r);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::Integrity) << got.error().to_string();
    EXPECT_NE(got.error().to_string().find("304 Not Modified to a request that named no cached"),
              std::string::npos)
        << got.error().to_string();
  }
}

TEST_F(ShardsTest, TransfersCutMidBodyResume) {
  make_channel("full", false);
  make_channel("sharded", true);
  Result<std::vector<PlatformSolution>> from_json = fail(Errc::Internal, "not solved");
  {
    RepoServer plain(dir_ / "web", dir_ / "plain");
    if (!plain.port()) GTEST_SKIP() << "python3 test server did not start";
    from_json = solve_environment(request(plain.url() + "/full", {"python"}, "cache-full"));
    ASSERT_TRUE(from_json) << from_json.error().to_string();
  }
  RepoServer server(dir_ / "web", dir_, 0, "", "--drop-once");
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  auto got = solve_environment(request(server.url() + "/sharded", {"python"}));
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(identities((*got)[0].records), identities((*from_json)[0].records));
  // Every shard was cut once and then asked for from where it stopped.
  auto log = server.log_lines();
  const size_t shards = shard_requests(log).size();
  ASSERT_GT(shards, 0u);
  size_t resumed = 0;
  for (const auto& l : log) {
    json j = json::parse(l);
    if (j["path"].get<std::string>().find("/shards/") == std::string::npos) continue;
    if (j["status"] == 206) {
      ++resumed;
      EXPECT_TRUE(j["range"].is_string()) << l;
    }
  }
  EXPECT_EQ(resumed, shards);
}

}  // namespace
}  // namespace envbuild::builder
