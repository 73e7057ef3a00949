// The registry layer cache: its manifests (round trip, merge order and cap, what they refuse,
// their tags), and against a real registry: builds pushing to one cache at once, compaction,
// the legacy single manifest, registries that refuse deletes, paginated tag lists. (The cache in
// image builds is in build_test.cpp.)

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "builder/image/registry_cache.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"
#include "oci/reference.hpp"
#include "tests/testing/fault_proxy.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

CacheEntry entry(const std::string& key, const std::string& content) {
  CacheEntry e;
  e.key = key;
  e.layer.descriptor.media_type = std::string(oci::media_type::kOciLayerGzip);
  e.layer.descriptor.digest = oci::Digest::of(content);
  e.layer.descriptor.size = static_cast<int64_t>(content.size());
  if (!key.empty()) {
    e.layer.diff_id = oci::Digest::of("plain " + content);
    e.layer.uncompressed_size = 1000 + static_cast<int64_t>(content.size());
  }
  return e;
}

TEST(RegistryCacheManifest, RoundTripsKeyedAndUnkeyedEntries) {
  CacheManifest manifest{7, {entry("k1", "layer one"), entry("k2", "layer two"), entry("", "cfg")}};
  std::string json = cache_manifest_json(manifest);
  auto parsed = parse_cache_manifest(json);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(parsed->generation, 7u);
  EXPECT_EQ(parsed->entries, manifest.entries);
  auto m = oci::parse_manifest(json);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->artifact_type, kCacheArtifactType);
  EXPECT_EQ(m->config.media_type, oci::media_type::kOciEmpty);
  EXPECT_EQ(m->config.size, 2);
  EXPECT_EQ(m->layers[0].annotations.at(std::string(kCacheKeyAnnotation)), "k1");
  EXPECT_TRUE(m->layers[2].annotations.empty());
  EXPECT_EQ(m->annotations.at(std::string(kCacheGenerationAnnotation)), "7");
  EXPECT_EQ(cache_manifest_json(*parsed), json);  // canonical
  // The legacy single manifest has no generation: it reads as 0, the oldest.
  auto legacy = parse_cache_manifest(cache_manifest_json(CacheManifest{0, manifest.entries}));
  ASSERT_TRUE(legacy) << legacy.error().to_string();
  EXPECT_EQ(legacy->generation, 0u);
}

TEST(RegistryCacheManifest, RefusesOtherManifestsAndBrokenEntries) {
  oci::Manifest image;
  image.config.media_type = std::string(oci::media_type::kOciConfig);
  image.config.digest = oci::Digest::of("{}");
  image.config.size = 2;
  std::vector<CacheEntry> too_many;
  for (size_t i = 0; i <= kMaxCacheEntries; ++i) too_many.push_back(entry("", std::to_string(i)));
  auto with = [](auto change) {
    auto j = nlohmann::json::parse(cache_manifest_json(CacheManifest{3, {entry("k1", "x")}}));
    change(j);
    return j.dump();
  };
  struct Case {
    std::string name;
    std::string bytes;
    std::string want;
  };
  const Case cases[] = {
      {"an image", oci::to_canonical_json(image), "not an envbuild layer cache"},
      {"no diff-id",
       with([](auto& j) { j["layers"][0]["annotations"].erase(std::string(kCacheDiffIdAnnotation)); }),
       "no diff-id"},
      {"negative size",
       with([](auto& j) { j["layers"][0]["annotations"][std::string(kCacheSizeAnnotation)] = "-1"; }),
       "bad uncompressed size '-1'"},
      {"signed generation",
       with([](auto& j) { j["annotations"][std::string(kCacheGenerationAnnotation)] = "+4"; }),
       "bad cache generation '+4'"},
      {"over the entry cap", cache_manifest_json(CacheManifest{1, too_many}), "2001 entries"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto parsed = parse_cache_manifest(c.bytes);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code(), Errc::InvalidInput);
    EXPECT_NE(parsed.error().to_string().find(c.want), std::string::npos)
        << parsed.error().to_string();
  }
}

TEST(RegistryCacheManifest, MergeKeepsNewestFirstAndCaps) {
  CacheManifest old{1, {entry("a", "old a"), entry("b", "b"), entry("", "blob1")}};
  CacheManifest fresh{2, {entry("a", "new a"), entry("c", "c"), entry("", "blob1")}};
  auto merged = merge_cache_entries({&fresh, &old}, 100);
  ASSERT_EQ(merged.size(), 4u);
  EXPECT_EQ(merged[0], fresh.entries[0]);  // a: the newer manifest's layer wins
  EXPECT_EQ(merged[1].key, "c");
  EXPECT_EQ(merged[2], fresh.entries[2]);
  EXPECT_EQ(merged[3].key, "b");
  auto capped = merge_cache_entries({&fresh, &old}, 2);
  ASSERT_EQ(capped.size(), 2u);
  EXPECT_EQ(capped[1].key, "c");
}

TEST(RegistryCacheManifest, CacheReferencesGetTheDefaultTag) {
  auto ref = parse_cache_reference("docker://localhost:5000/team/cache");
  ASSERT_TRUE(ref) << ref.error().to_string();
  EXPECT_EQ(ref->tag, kDefaultCacheTag);
  auto tagged = parse_cache_reference("docker://localhost:5000/team/cache:ci");
  ASSERT_TRUE(tagged);
  EXPECT_EQ(tagged->tag, "ci");
  EXPECT_FALSE(parse_cache_reference("oci:/tmp/x"));
  EXPECT_TRUE(parse_cache_reference("docker://h/c:" + std::string(kMaxCacheTagLength, 't')));
  auto too_long = parse_cache_reference("docker://h/c:" + std::string(kMaxCacheTagLength + 1, 't'));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().to_string().find("longer than 63"), std::string::npos);
}

TEST(RegistryCacheManifest, ManifestTagsNameTheirDigest) {
  const oci::Digest d = oci::Digest::of("a cache manifest");
  EXPECT_EQ(cache_manifest_tag("ci", d), "ci-" + d.hex());
  struct Case {
    std::string tag;
    bool is_cache_manifest;
  };
  const Case cases[] = {
      {"ci-" + d.hex(), true},
      {"ci", false},                                // the legacy manifest's own tag
      {"ci-" + d.hex().substr(1), false},           // 63 hex
      {"ci-x" + d.hex().substr(1), false},          // not hex
      {"ci-" + std::string(64, 'A'), false},        // upper case
      {"cj-" + d.hex(), false},                     // another cache
      {"ci-ci-" + d.hex(), false},                  // the cache "ci-ci"
      {"ci_" + d.hex(), false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.tag);
    auto got = cache_manifest_digest("ci", c.tag);
    EXPECT_EQ(got.has_value(), c.is_cache_manifest);
    if (got) {
      EXPECT_EQ(*got, d);
    }
  }
}

// Against a real docker-registry (distribution 2.8).
class RegistryCachePushTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    if (!testing::have_tool("docker-registry"))
      GTEST_SKIP() << "'docker-registry' is not installed (run scripts/bootstrap)";
    options_.transport.tls.verify = false;
    options_.lookup_stored_credentials = false;
  }
  oci::ImageReference cache_at(const std::string& host) {
    auto ref = parse_cache_reference("docker://" + host + "/ci/cache");
    EXPECT_TRUE(ref) << ref.error().to_string();
    return *ref;
  }
  Result<CachePushReport> push(const std::vector<CacheEntry>& entries,
                               const oci::ImageReference& ref, CachePushOptions cache = {}) {
    auto open = [this](const oci::Descriptor& d) -> Result<std::unique_ptr<common::ByteSource>> {
      auto it = contents_.find(d.digest);
      if (it == contents_.end()) return fail(Errc::NotFound, "no blob " + d.digest.to_string());
      return std::unique_ptr<common::ByteSource>(
          std::make_unique<common::StringSource>(it->second));
    };
    return push_layer_cache(entries, open, ref, options_, cache);
  }
  CacheEntry remembered(const std::string& key, const std::string& content) {
    std::lock_guard<std::mutex> lock(mutex_);
    contents_.emplace(oci::Digest::of(content), content);
    return entry(key, content);
  }
  // The tags of the cache repository, straight from the registry.
  std::vector<std::string> tags(const std::string& host) {
    auto repo = oci::registry::Repository::connect(host, "ci/cache", oci::registry::Action::Pull,
                                                   options_);
    EXPECT_TRUE(repo);
    EXPECT_TRUE(repo->ping());
    auto tags = repo->tags();
    EXPECT_TRUE(tags) << tags.error().to_string();
    return tags ? *tags : std::vector<std::string>{};
  }

  oci::registry::RegistryOptions options_;
  std::mutex mutex_;
  std::map<oci::Digest, std::string> contents_;  // filled before the pushes that read it
};

std::string key_of(int build, int round) {
  return "key-" + std::to_string(build) + "-" + std::to_string(round);
}

// Issue 22: builds pushing to one cache at once must not lose each other's entries, whatever the
// order of their registry calls. A proxy holds every request and every answer a random time
// (seed printed on failure), every push after a build's first compacts, and readers read all
// the while: a read that followed every manifest must hold every entry whose push had returned
// before it began.
TEST_F(RegistryCachePushTest, ConcurrentPushesKeepEveryonesEntries) {
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("fault_proxy.py --seed " + std::to_string(seed));
  testing::FaultProxy proxy(registry.host(), dir_ / "proxy",
                            "--delay 0-20 --seed " + std::to_string(seed));
  ASSERT_NE(proxy.port(), 0) << "fault_proxy.py did not start";
  const auto ref = cache_at(proxy.host());
  constexpr int kBuilds = 8, kRounds = 4, kReaders = 2;
  std::vector<std::vector<CacheEntry>> pushes(kBuilds * kRounds);
  for (int b = 0; b < kBuilds; ++b)
    for (int round = 0; round < kRounds; ++round)
      pushes[b * kRounds + round] = {
          remembered(key_of(b, round), "layer of build " + std::to_string(b) + " round " +
                                           std::to_string(round)),
          remembered("shared", "a layer every build has"),
          remembered("", "config of build " + std::to_string(b) + " round " + std::to_string(round))};
  CachePushOptions compact_always;
  compact_always.compact_above = 1;

  std::mutex done_mutex;
  std::set<std::string> done;  // keys whose push returned
  std::atomic<int> builds_running{kBuilds};
  std::atomic<size_t> compacted{0}, housekeeping_failed{0}, complete_reads{0}, partial_reads{0};
  std::vector<std::string> failures(kBuilds + kReaders);
  std::vector<std::thread> threads;
  for (int b = 0; b < kBuilds; ++b) {
    threads.emplace_back([&, b] {
      for (int round = 0; round < kRounds; ++round) {
        auto pushed = push(pushes[b * kRounds + round], ref, compact_always);
        if (!pushed) {
          failures[b] += pushed.error().to_string() + "\n";
          continue;
        }
        compacted += pushed->compacted;
        housekeeping_failed += !pushed->not_compacted.empty() || !pushed->cleanup_failed.empty();
        std::lock_guard<std::mutex> lock(done_mutex);
        done.insert(key_of(b, round));
      }
      --builds_running;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      auto repo = oci::registry::Repository::connect(ref.host, ref.name,
                                                     oci::registry::Action::Pull, options_);
      if (!repo || !repo->ping()) {
        failures[kBuilds + r] = "reader cannot connect";
        return;
      }
      while (builds_running > 0) {
        std::set<std::string> before;
        {
          std::lock_guard<std::mutex> lock(done_mutex);
          before = done;
        }
        auto snapshot = read_cache(*repo, ref.tag);
        if (!snapshot) {
          failures[kBuilds + r] += snapshot.error().to_string() + "\n";
          return;
        }
        if (snapshot->unread > 0) {  // compactions kept deleting what it was about to read
          ++partial_reads;
          continue;
        }
        ++complete_reads;
        std::set<std::string> keys;
        for (const auto& m : snapshot->manifests)
          for (const auto& e : m.content.entries) keys.insert(e.key);
        for (const auto& key : before)
          if (!keys.count(key)) failures[kBuilds + r] += "a read lost " + key + "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT_TRUE(f.empty()) << f;
  std::printf(
      "%zu manifests compacted, %zu pushes with a compaction warning; readers: %zu complete "
      "reads, %zu partial\n",
      compacted.load(), housekeeping_failed.load(), complete_reads.load(), partial_reads.load());
  EXPECT_GT(compacted.load(), 0u);

  auto cache = RegistryLayerCache::open(ref, options_);
  ASSERT_TRUE(cache) << cache.error().to_string();
  EXPECT_EQ((*cache)->keys(), static_cast<size_t>(kBuilds * kRounds) + 1);
  for (int b = 0; b < kBuilds; ++b)
    for (int round = 0; round < kRounds; ++round)
      EXPECT_TRUE((*cache)->lookup(key_of(b, round))) << "build " << b << " round " << round;
  // One more push that adds nothing compacts whatever the last ones left into one manifest.
  auto last = push(pushes[0], ref, compact_always);
  ASSERT_TRUE(last) << last.error().to_string();
  EXPECT_EQ(last->manifests, 1u);
  EXPECT_EQ(tags(registry.host()).size(), 1u);
  auto after = RegistryLayerCache::open(ref, options_);
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_EQ((*after)->keys(), static_cast<size_t>(kBuilds * kRounds) + 1);
  EXPECT_EQ((*after)->manifests(), 1u);
}

// A push whose entries the newest manifest holds writes nothing; one that adds an entry writes
// its own manifest, which no later push rewrites.
TEST_F(RegistryCachePushTest, APushTheNewestManifestHoldsWritesNothing) {
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const auto ref = cache_at(registry.host());
  std::vector<CacheEntry> a = {remembered("a", "layer a"), remembered("", "config a")};
  std::vector<CacheEntry> b = {remembered("b", "layer b")};
  auto first = push(a, ref);
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_TRUE(first->wrote);
  EXPECT_EQ(first->transfer.uploaded, 3u);  // + the empty config
  auto again = push(a, ref);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_FALSE(again->wrote);
  EXPECT_EQ(again->transfer.blobs, 0u);
  EXPECT_EQ(again->transfer.put_requests, 0u);
  EXPECT_EQ(again->manifests, 1u);
  auto other = push(b, ref);
  ASSERT_TRUE(other) << other.error().to_string();
  EXPECT_TRUE(other->wrote);
  EXPECT_EQ(other->manifests, 2u);
  auto back = push(a, ref);  // the newest manifest is b's now
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(back->wrote);
  EXPECT_EQ(back->entries, 3u);
  EXPECT_EQ(back->keys, 2u);
  EXPECT_EQ(tags(registry.host()).size(), 3u);
}

// A cache written by an earlier envbuild (one manifest under the cache tag itself) is read, and
// the first compaction retires it.
TEST_F(RegistryCachePushTest, LegacySingleManifestIsReadThenRetired) {
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const auto ref = cache_at(registry.host());
  std::vector<CacheEntry> legacy = {remembered("old-1", "old layer 1"),
                                    remembered("old-2", "old layer 2")};
  {
    auto repo = oci::registry::Repository::connect(ref.host, ref.name,
                                                   oci::registry::Action::Push, options_);
    ASSERT_TRUE(repo);
    ASSERT_TRUE(repo->ping());
    remembered("", "{}");  // the empty config
    std::vector<oci::Descriptor> blobs = {entry("", "{}").layer.descriptor};
    for (const auto& e : legacy) blobs.push_back(e.layer.descriptor);
    oci::registry::TransferReport report;
    auto pushed = oci::registry::push_blobs(
        *repo, blobs,
        [&](const oci::Descriptor& d) -> Result<std::unique_ptr<common::ByteSource>> {
          return std::unique_ptr<common::ByteSource>(
              std::make_unique<common::StringSource>(contents_.at(d.digest)));
        },
        report);
    ASSERT_TRUE(pushed) << pushed.error().to_string();
    auto put = repo->put_manifest(std::string(kDefaultCacheTag),
                                  cache_manifest_json(CacheManifest{0, legacy}),
                                  std::string(oci::media_type::kOciManifest));
    ASSERT_TRUE(put) << put.error().to_string();
  }
  auto read = RegistryLayerCache::open(ref, options_);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ((*read)->keys(), 2u);
  EXPECT_TRUE((*read)->lookup("old-2"));

  CachePushOptions compact_always;
  compact_always.compact_above = 1;
  auto pushed = push({remembered("new", "new layer")}, ref, compact_always);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(pushed->compacted, 1u);
  EXPECT_EQ(pushed->manifests, 1u);
  auto tags = this->tags(registry.host());
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_TRUE(cache_manifest_digest(kDefaultCacheTag, tags[0])) << tags[0];
  auto after = RegistryLayerCache::open(ref, options_);
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_EQ((*after)->keys(), 3u);
  EXPECT_TRUE((*after)->lookup("old-1"));
  EXPECT_TRUE((*after)->lookup("new"));
}

// distribution refuses DELETE unless storage.delete.enabled: compaction is skipped (said in
// the report), each push keeps its own manifest, and readers see every entry.
TEST_F(RegistryCachePushTest, WithoutDeletesCompactionIsSkippedAndNothingIsLost) {
  testing::RegistryServer registry(dir_ / "registry", "", "",
                                   testing::RegistryServer::Deletes::Refused);
  ASSERT_TRUE(registry.start()) << registry.log();
  const auto ref = cache_at(registry.host());
  CachePushOptions compact_always;
  compact_always.compact_above = 1;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    auto pushed = push({remembered(key_of(i, 0), "layer " + std::to_string(i))}, ref,
                       compact_always);
    ASSERT_TRUE(pushed) << pushed.error().to_string();
    EXPECT_TRUE(pushed->wrote);
    EXPECT_EQ(pushed->compacted, 0u);
    EXPECT_EQ(pushed->manifests, static_cast<size_t>(i) + 1);
    if (i > 0) {
      EXPECT_NE(pushed->not_compacted.find("405 Method Not Allowed"), std::string::npos)
          << pushed->not_compacted;
    }
  }
  auto cache = RegistryLayerCache::open(ref, options_);
  ASSERT_TRUE(cache) << cache.error().to_string();
  EXPECT_EQ((*cache)->keys(), 3u);
  EXPECT_EQ((*cache)->manifests(), 3u);
}

// A DELETE that failed half-way (distribution 2.8 drops the manifest, then its tags) leaves a
// tag without a manifest; made here by removing the manifest's revision from the registry's
// storage. Readers skip it; the next push moves it to a tombstone and deletes that.
TEST_F(RegistryCachePushTest, DanglingTagsAreSkippedThenRetired) {
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const auto ref = cache_at(registry.host());
  CachePushOptions never;
  never.compact_above = 100;
  std::vector<oci::Digest> manifests;
  for (int i = 0; i < 2; ++i) {
    auto pushed = push({remembered(key_of(i, 0), "layer " + std::to_string(i))}, ref, never);
    ASSERT_TRUE(pushed) << pushed.error().to_string();
    manifests.push_back(pushed->transfer.manifest.digest);
  }
  std::filesystem::remove_all(dir_ / "registry/data/docker/registry/v2/repositories/ci/cache" /
                              "_manifests/revisions/sha256" / manifests[0].hex());
  auto read = RegistryLayerCache::open(ref, options_);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ((*read)->manifests(), 1u);
  EXPECT_TRUE((*read)->lookup(key_of(1, 0)));
  EXPECT_EQ(tags(registry.host()).size(), 2u);

  auto pushed = push({remembered(key_of(2, 0), "layer 2")}, ref, never);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(pushed->retired, 1u);
  EXPECT_EQ(pushed->compacted, 0u);
  auto left = tags(registry.host());
  std::sort(left.begin(), left.end());
  std::vector<std::string> want = {cache_manifest_tag(kDefaultCacheTag, manifests[1]),
                                   cache_manifest_tag(kDefaultCacheTag,
                                                      pushed->transfer.manifest.digest)};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(left, want);
}

// A registry that hands out its tag list in pages (distribution 2.8 sends it whole, so the
// proxy cuts it, two tags a page, with Link headers): readers follow the pages.
TEST_F(RegistryCachePushTest, ReadsEveryPageOfThePaginatedTagList) {
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  CachePushOptions never;
  never.compact_above = 100;
  for (int i = 0; i < 5; ++i) {
    auto pushed = push({remembered(key_of(i, 0), "layer " + std::to_string(i))},
                       cache_at(registry.host()), never);
    ASSERT_TRUE(pushed) << pushed.error().to_string();
  }
  testing::FaultProxy proxy(registry.host(), dir_ / "proxy", "--tags-page 2");
  ASSERT_NE(proxy.port(), 0) << "fault_proxy.py did not start";
  auto cache = RegistryLayerCache::open(cache_at(proxy.host()), options_);
  ASSERT_TRUE(cache) << cache.error().to_string();
  EXPECT_EQ((*cache)->keys(), 5u);
  EXPECT_EQ((*cache)->manifests(), 5u);
  size_t pages = 0;
  for (const auto& line : proxy.log_lines()) pages += line.find("/tags/list") != std::string::npos;
  EXPECT_EQ(pages, 3u);
}

}  // namespace
}  // namespace envbuild::builder
