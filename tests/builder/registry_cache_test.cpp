// The registry layer cache's manifest: round trip, merge order and cap, what it refuses, and
// builds pushing to one cache at once. (The cache in image builds is in build_test.cpp.)

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <thread>

#include "builder/registry_cache.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"
#include "oci/reference.hpp"
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
  std::vector<CacheEntry> entries = {entry("k1", "layer one"), entry("k2", "layer two"),
                                     entry("", "config")};
  std::string json = cache_manifest_json(entries);
  auto parsed = parse_cache_manifest(json);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(*parsed, entries);
  auto m = oci::parse_manifest(json);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->artifact_type, kCacheArtifactType);
  EXPECT_EQ(m->config.media_type, oci::media_type::kOciEmpty);
  EXPECT_EQ(m->config.size, 2);
  EXPECT_EQ(m->layers[0].annotations.at(std::string(kCacheKeyAnnotation)), "k1");
  EXPECT_TRUE(m->layers[2].annotations.empty());
  EXPECT_EQ(cache_manifest_json(*parsed), json);  // canonical
}

TEST(RegistryCacheManifest, RefusesOtherManifestsAndBrokenEntries) {
  oci::Manifest image;
  image.config.media_type = std::string(oci::media_type::kOciConfig);
  image.config.digest = oci::Digest::of("{}");
  image.config.size = 2;
  auto other = parse_cache_manifest(oci::to_canonical_json(image));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().to_string().find("not an envbuild layer cache"), std::string::npos);

  auto j = nlohmann::json::parse(cache_manifest_json({entry("k1", "x")}));
  j["layers"][0]["annotations"].erase(std::string(kCacheDiffIdAnnotation));
  auto broken = parse_cache_manifest(j.dump());
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().to_string().find("no diff-id"), std::string::npos)
      << broken.error().to_string();
}

TEST(RegistryCacheManifest, MergeKeepsNewestFirstAndCaps) {
  std::vector<CacheEntry> old = {entry("a", "old a"), entry("b", "b"), entry("", "blob1")};
  std::vector<CacheEntry> fresh = {entry("a", "new a"), entry("c", "c"), entry("", "blob1")};
  auto merged = merge_cache_entries(fresh, old, 100);
  ASSERT_EQ(merged.size(), 4u);
  EXPECT_EQ(merged[0], fresh[0]);  // a: the fresh layer wins
  EXPECT_EQ(merged[1].key, "c");
  EXPECT_EQ(merged[2], fresh[2]);
  EXPECT_EQ(merged[3].key, "b");
  auto capped = merge_cache_entries(fresh, old, 2);
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
}

// Registries have no compare-and-swap for a tag: builds pushing to one cache at once must not
// lose each other's entries (each reads back what it wrote and merges again when another write
// came last).
class RegistryCachePushTest : public testing::TempDirTest {};

TEST_F(RegistryCachePushTest, ConcurrentPushesKeepEveryonesEntries) {
  ENVB_REQUIRE_TOOL("docker-registry");
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  auto ref = oci::ImageReference::parse("docker://" + registry.host() + "/ci/cache");
  ASSERT_TRUE(ref) << ref.error().to_string();
  oci::registry::RegistryOptions options;
  options.transport.tls.verify = false;
  options.lookup_stored_credentials = false;
  constexpr int kBuilds = 4, kRounds = 3;
  std::vector<std::string> failures(kBuilds);
  std::vector<std::thread> builds;
  for (int b = 0; b < kBuilds; ++b) {
    builds.emplace_back([&, b] {
      for (int round = 0; round < kRounds; ++round) {
        const std::string content =
            "layer of build " + std::to_string(b) + " round " + std::to_string(round);
        std::vector<CacheEntry> entries = {
            entry("key-" + std::to_string(b) + "-" + std::to_string(round), content)};
        auto open = [&](const oci::Descriptor&) -> Result<std::unique_ptr<common::ByteSource>> {
          return std::unique_ptr<common::ByteSource>(
              std::make_unique<common::StringSource>(content));
        };
        auto pushed = push_layer_cache(entries, open, *ref, options);
        if (!pushed) failures[b] += pushed.error().to_string() + "\n";
      }
    });
  }
  for (auto& t : builds) t.join();
  for (const auto& f : failures) EXPECT_TRUE(f.empty()) << f;
  auto cache = RegistryLayerCache::open(*ref, options);
  ASSERT_TRUE(cache) << cache.error().to_string();
  EXPECT_EQ((*cache)->keys(), static_cast<size_t>(kBuilds * kRounds));
  for (int b = 0; b < kBuilds; ++b)
    for (int round = 0; round < kRounds; ++round)
      EXPECT_TRUE((*cache)->lookup("key-" + std::to_string(b) + "-" + std::to_string(round)))
          << "build " << b << " round " << round;
}

}  // namespace
}  // namespace envbuild::builder
