#include "builder/registry_cache.hpp"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/io.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"

namespace envbuild::builder {

namespace {

constexpr std::string_view kEmptyJson = "{}";

oci::Descriptor empty_config() {
  oci::Descriptor d;
  d.media_type = std::string(oci::media_type::kOciEmpty);
  d.digest = oci::Digest::of(kEmptyJson);
  d.size = static_cast<int64_t>(kEmptyJson.size());
  return d;
}

// Only what identifies the blob: a cache entry must give back the exact descriptor the image
// manifest had.
oci::Descriptor bare(const oci::Descriptor& d) {
  oci::Descriptor out;
  out.media_type = d.media_type;
  out.digest = d.digest;
  out.size = d.size;
  return out;
}

std::string entry_identity(const CacheEntry& e) {
  return e.key.empty() ? "blob:" + e.layer.descriptor.digest.to_string() : "key:" + e.key;
}

}  // namespace

std::string cache_manifest_json(const std::vector<CacheEntry>& entries) {
  oci::Manifest m;
  m.artifact_type = std::string(kCacheArtifactType);
  m.config = empty_config();
  for (const auto& e : entries) {
    oci::Descriptor d = bare(e.layer.descriptor);
    if (!e.key.empty()) {
      d.annotations[std::string(kCacheKeyAnnotation)] = e.key;
      d.annotations[std::string(kCacheDiffIdAnnotation)] = e.layer.diff_id.to_string();
      d.annotations[std::string(kCacheSizeAnnotation)] = std::to_string(e.layer.uncompressed_size);
    }
    m.layers.push_back(std::move(d));
  }
  m.annotations["org.envbuild.cache.layer-format"] = std::string(kLayerFormat);
  return oci::to_canonical_json(m);
}

Result<std::vector<CacheEntry>> parse_cache_manifest(std::string_view bytes) {
  ENVB_ASSIGN_OR_RETURN(oci::Manifest m, oci::parse_manifest(bytes));
  if (m.artifact_type != kCacheArtifactType)
    return fail(Errc::InvalidInput, "not an envbuild layer cache (artifactType '" +
                                        m.artifact_type + "', expected '" +
                                        std::string(kCacheArtifactType) + "')");
  std::vector<CacheEntry> out;
  for (const auto& d : m.layers) {
    CacheEntry e;
    e.layer.descriptor = bare(d);
    auto key = d.annotations.find(std::string(kCacheKeyAnnotation));
    if (key != d.annotations.end()) {
      auto diff_id = d.annotations.find(std::string(kCacheDiffIdAnnotation));
      auto size = d.annotations.find(std::string(kCacheSizeAnnotation));
      if (diff_id == d.annotations.end() || size == d.annotations.end())
        return fail(Errc::InvalidInput, "cache entry " + d.digest.short_string() + " has a key " +
                                            "but no diff-id or uncompressed-size annotation");
      e.key = key->second;
      ENVB_ASSIGN_OR_RETURN(
          e.layer.diff_id,
          oci::Digest::parse(diff_id->second).context("cache entry " + d.digest.short_string()));
      char* end = nullptr;
      e.layer.uncompressed_size = std::strtoll(size->second.c_str(), &end, 10);
      if (size->second.empty() || *end != '\0' || e.layer.uncompressed_size < 0)
        return fail(Errc::InvalidInput, "cache entry " + d.digest.short_string() +
                                            ": bad uncompressed size '" + size->second + "'");
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<CacheEntry> merge_cache_entries(std::vector<CacheEntry> fresh,
                                            const std::vector<CacheEntry>& old, size_t max) {
  std::vector<CacheEntry> out;
  std::set<std::string> seen;
  for (auto& e : fresh)
    if (out.size() < max && seen.insert(entry_identity(e)).second) out.push_back(std::move(e));
  for (const auto& e : old)
    if (out.size() < max && seen.insert(entry_identity(e)).second) out.push_back(e);
  return out;
}

std::vector<CacheEntry> cache_entries_of(const ImageBuild& build, const oci::Image& image) {
  std::vector<CacheEntry> out;
  std::set<oci::Digest> keyed;
  for (const auto& layer : build.layers) {
    if (layer.cache_key.empty() || !layer.info) continue;
    CacheEntry e;
    e.key = layer.cache_key;
    e.layer = *layer.info;
    e.layer.descriptor = bare(e.layer.descriptor);
    keyed.insert(e.layer.descriptor.digest);
    out.push_back(std::move(e));
  }
  std::vector<oci::Descriptor> rest = image.manifest().layers;
  rest.push_back(image.manifest().config);
  std::set<oci::Digest> seen;
  for (const auto& d : rest) {
    if (keyed.count(d.digest) || !seen.insert(d.digest).second) continue;
    CacheEntry e;
    e.layer.descriptor = bare(d);
    out.push_back(std::move(e));
  }
  return out;
}

Result<oci::ImageReference> parse_cache_reference(const std::string& text) {
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(text));
  if (ref.transport != oci::Transport::Registry || ref.digest.valid())
    return fail(Errc::InvalidInput,
                "a layer cache is a docker://HOST/REPO[:TAG] reference, not '" + text + "'");
  if (ref.tag.empty()) ref.tag = std::string(kDefaultCacheTag);
  return ref;
}

Result<std::unique_ptr<RegistryLayerCache>> RegistryLayerCache::open(
    const oci::ImageReference& ref, const oci::registry::RegistryOptions& options) {
  const std::string what = "reading the layer cache " + ref.to_string();
  std::unique_ptr<RegistryLayerCache> cache(new RegistryLayerCache());
  cache->ref_ = ref;
  ENVB_ASSIGN_OR_RETURN(auto repo, oci::registry::Repository::connect(
                                       ref.host, ref.name, oci::registry::Action::Pull, options)
                                       .context(what));
  ENVB_TRY(repo.ping().context(what));
  auto fetched = repo.get_manifest(ref.tag.empty() ? std::string(kDefaultCacheTag) : ref.tag);
  cache->repo_.emplace(std::move(repo));
  if (!fetched) {
    if (fetched.error().code() == Errc::NotFound) return cache;  // nothing cached yet
    return std::move(fetched).error().with_context(what);
  }
  ENVB_ASSIGN_OR_RETURN(auto entries, parse_cache_manifest(fetched->bytes).context(what));
  for (auto& e : entries) {
    cache->blobs_.insert(e.layer.descriptor.digest);
    if (!e.key.empty()) cache->by_key_.emplace(e.key, e.layer);  // the first (newest) wins
  }
  return cache;
}

std::optional<oci::LayerInfo> RegistryLayerCache::lookup(const std::string& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

Result<void> RegistryLayerCache::fetch(const oci::Descriptor& blob,
                                       const oci::BlobStore& store) const {
  oci::registry::Repository mine = repo_->fork();
  return mine.fetch_blob(bare(blob), store)
      .context("fetching " + blob.digest.short_string() + " from the layer cache " +
               ref_.to_string());
}

namespace {

class CacheFallbackImage final : public oci::Image {
 public:
  CacheFallbackImage(std::unique_ptr<oci::Image> inner, const RegistryLayerCache& cache,
                     oci::BlobStore store)
      : inner_(std::move(inner)), cache_(cache), store_(std::move(store)) {}

  const oci::Descriptor& descriptor() const override { return inner_->descriptor(); }
  const std::string& raw_manifest() const override { return inner_->raw_manifest(); }
  const oci::Manifest& manifest() const override { return inner_->manifest(); }
  const std::string& raw_config() const override { return inner_->raw_config(); }
  const oci::ImageConfig& config() const override { return inner_->config(); }
  Result<std::unique_ptr<common::ByteSource>> open_blob(const oci::Descriptor& d) const override {
    if (!store_.contains(d.digest, d.size) && cache_.blobs().count(d.digest)) {
      ENVB_TRY(cache_.fetch(d, store_));
    }
    return inner_->open_blob(d);
  }
  std::optional<std::filesystem::path> local_blob_path(const oci::Digest& d) const override {
    if (!store_.contains(d)) return std::nullopt;
    return inner_->local_blob_path(d);
  }

 private:
  std::unique_ptr<oci::Image> inner_;
  const RegistryLayerCache& cache_;
  oci::BlobStore store_;
};

}  // namespace

std::unique_ptr<oci::Image> with_cache_fallback(std::unique_ptr<oci::Image> image,
                                                const RegistryLayerCache& cache,
                                                oci::BlobStore store) {
  return std::make_unique<CacheFallbackImage>(std::move(image), cache, std::move(store));
}

Result<CachePushReport> push_layer_cache(const std::vector<CacheEntry>& entries,
                                         const oci::registry::BlobOpener& open,
                                         const oci::ImageReference& dest,
                                         const oci::registry::RegistryOptions& options) {
  auto started = std::chrono::steady_clock::now();
  const std::string what = "pushing the layer cache " + dest.to_string();
  const std::string tag = dest.tag.empty() ? std::string(kDefaultCacheTag) : dest.tag;
  ENVB_ASSIGN_OR_RETURN(auto repo, oci::registry::Repository::connect(
                                       dest.host, dest.name, oci::registry::Action::Push, options)
                                       .context(what));
  ENVB_TRY(repo.ping().context(what));
  // The cache manifest as the registry has it now (none yet: empty).
  auto read_cache = [&]() -> Result<std::optional<std::vector<CacheEntry>>> {
    auto fetched = repo.get_manifest(tag);
    if (!fetched) {
      if (fetched.error().code() == Errc::NotFound) return std::nullopt;
      return std::move(fetched).error().with_context(what);
    }
    auto parsed = parse_cache_manifest(fetched->bytes);
    if (!parsed)
      return std::move(parsed).error().with_context(what).with_hint(
          "give --cache-to a repository or tag of its own");
    return std::optional<std::vector<CacheEntry>>(std::move(*parsed));
  };
  ENVB_ASSIGN_OR_RETURN(auto existing, read_cache());
  const bool fetched = existing.has_value();
  std::vector<CacheEntry> old = existing ? std::move(*existing) : std::vector<CacheEntry>{};

  // The blobs the cache does not list yet, and the empty config.
  std::set<oci::Digest> listed;
  for (const auto& e : old) listed.insert(e.layer.descriptor.digest);
  std::vector<oci::Descriptor> blobs;
  if (!fetched) blobs.push_back(empty_config());
  for (const auto& e : entries)
    if (listed.insert(e.layer.descriptor.digest).second) blobs.push_back(e.layer.descriptor);
  CachePushReport report;
  ENVB_TRY(oci::registry::push_blobs(
               repo, blobs,
               [&open](const oci::Descriptor& d) -> Result<std::unique_ptr<common::ByteSource>> {
                 if (d.digest == oci::Digest::of(kEmptyJson))
                   return std::unique_ptr<common::ByteSource>(
                       std::make_unique<common::StringSource>(std::string(kEmptyJson)));
                 return open(d);
               },
               report.transfer)
               .context(what));

  // Registries have no compare-and-swap for tags: another build may write the cache manifest
  // between our read and our write, and the last write wins. So read it again just before
  // writing (the blobs above may have taken minutes), and read it back a moment after (a
  // build that read before our write writes within a round trip of its read): when our
  // entries are not all there, another write came last; merge with it and write again.
  std::set<std::string> ours;
  for (const auto& e : entries) ours.insert(entry_identity(e));
  constexpr int kWriteAttempts = 8;
  constexpr auto kSettle = std::chrono::milliseconds(500);
  for (int attempt = 1;; ++attempt) {
    const auto read_at = std::chrono::steady_clock::now();
    ENVB_ASSIGN_OR_RETURN(auto current, read_cache());
    auto merged = merge_cache_entries(entries, current ? *current : old, kMaxCacheEntries);
    report.keys = 0;
    for (const auto& e : merged) report.keys += e.key.empty() ? 0 : 1;
    report.entries = merged.size();
    ENVB_ASSIGN_OR_RETURN(report.transfer.manifest,
                          repo.put_manifest(tag, cache_manifest_json(merged),
                                            std::string(oci::media_type::kOciManifest))
                              .context(what));
    // Another build's read-to-write takes about as long as ours did.
    const auto window = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - read_at);
    std::this_thread::sleep_for(std::max(kSettle, 5 * window));
    ENVB_ASSIGN_OR_RETURN(auto written, read_cache());
    size_t found = 0;
    for (const auto& e : written ? *written : std::vector<CacheEntry>{})
      found += ours.count(entry_identity(e));
    if (found >= std::min(ours.size(), kMaxCacheEntries)) break;
    if (attempt == kWriteAttempts)
      return fail(Errc::Network, what + ": other builds kept replacing the cache manifest (" +
                                     std::to_string(kWriteAttempts) + " writes)")
          .with_hint("the image itself is complete; push the cache again later");
  }
  const auto& c = repo.counters();
  report.transfer.requests = c.requests;
  report.transfer.put_requests = c.put;
  report.transfer.patch_requests = c.patch;
  report.transfer.post_requests = c.post;
  report.transfer.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

}  // namespace envbuild::builder
