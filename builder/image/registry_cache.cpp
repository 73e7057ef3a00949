#include "builder/image/registry_cache.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>

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

// A decimal count as annotations hold it: digits only, no sign, no overflow.
std::optional<uint64_t> parse_count(const std::string& text) {
  if (text.empty() || text.size() > 19 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoull(text);
}

}  // namespace

std::string cache_manifest_json(const CacheManifest& manifest) {
  oci::Manifest m;
  m.artifact_type = std::string(kCacheArtifactType);
  m.config = empty_config();
  for (const auto& e : manifest.entries) {
    oci::Descriptor d = bare(e.layer.descriptor);
    if (!e.key.empty()) {
      d.annotations[std::string(kCacheKeyAnnotation)] = e.key;
      d.annotations[std::string(kCacheDiffIdAnnotation)] = e.layer.diff_id.to_string();
      d.annotations[std::string(kCacheSizeAnnotation)] = std::to_string(e.layer.uncompressed_size);
    }
    m.layers.push_back(std::move(d));
  }
  m.annotations["org.envbuild.cache.layer-format"] = std::string(kLayerFormat);
  if (manifest.generation > 0)
    m.annotations[std::string(kCacheGenerationAnnotation)] = std::to_string(manifest.generation);
  return oci::to_canonical_json(m);
}

Result<CacheManifest> parse_cache_manifest(std::string_view bytes) {
  ENVB_ASSIGN_OR_RETURN(oci::Manifest m, oci::parse_manifest(bytes));
  if (m.artifact_type != kCacheArtifactType)
    return fail(Errc::InvalidInput, "not an envbuild layer cache (artifactType '" +
                                        m.artifact_type + "', expected '" +
                                        std::string(kCacheArtifactType) + "')");
  if (m.layers.size() > kMaxCacheEntries)
    return fail(Errc::InvalidInput, "a layer cache manifest with " +
                                        std::to_string(m.layers.size()) + " entries (at most " +
                                        std::to_string(kMaxCacheEntries) + ")");
  CacheManifest out;
  if (auto g = m.annotations.find(std::string(kCacheGenerationAnnotation));
      g != m.annotations.end()) {
    auto generation = parse_count(g->second);
    if (!generation)
      return fail(Errc::InvalidInput, "bad cache generation '" + g->second + "'");
    out.generation = *generation;
  }
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
      auto uncompressed = parse_count(size->second);
      if (!uncompressed || *uncompressed > static_cast<uint64_t>(INT64_MAX))
        return fail(Errc::InvalidInput, "cache entry " + d.digest.short_string() +
                                            ": bad uncompressed size '" + size->second + "'");
      e.layer.uncompressed_size = static_cast<int64_t>(*uncompressed);
    }
    out.entries.push_back(std::move(e));
  }
  return out;
}

std::vector<CacheEntry> merge_cache_entries(const std::vector<const CacheManifest*>& newest_first,
                                            size_t max) {
  std::vector<CacheEntry> out;
  std::set<std::string> seen;
  for (const CacheManifest* m : newest_first)
    for (const auto& e : m->entries)
      if (out.size() < max && seen.insert(entry_identity(e)).second) out.push_back(e);
  return out;
}

std::string cache_manifest_tag(std::string_view cache_tag, const oci::Digest& digest) {
  return std::string(cache_tag) + "-" + digest.hex();
}

std::optional<oci::Digest> cache_manifest_digest(std::string_view cache_tag,
                                                 std::string_view tag) {
  if (tag.size() != cache_tag.size() + 1 + 64 || !tag.starts_with(cache_tag) ||
      tag[cache_tag.size()] != '-')
    return std::nullopt;
  auto digest = oci::Digest::parse("sha256:" + std::string(tag.substr(cache_tag.size() + 1)));
  if (!digest) return std::nullopt;
  return *digest;
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
  if (ref.tag.size() > kMaxCacheTagLength)
    return fail(Errc::InvalidInput, "the layer cache tag '" + ref.tag + "' is longer than " +
                                        std::to_string(kMaxCacheTagLength) +
                                        " characters (its manifests are tagged TAG-<sha256 hex>)");
  return ref;
}

Result<CacheSnapshot> read_cache(oci::registry::Repository& repo, std::string_view cache_tag) {
  // A listing after the first looks for the manifests that hold the entries of those deleted
  // since the one before (they have tags not tried yet); compactions that keep deleting what
  // this read is about to fetch get it only this many times.
  constexpr int kListings = 8;
  std::map<oci::Digest, StoredCacheManifest> by_digest;
  std::set<std::string> tried;    // read, or found deleted
  std::set<std::string> missing;  // found deleted
  std::set<std::string> dangling;
  size_t unread = 0;
  for (int listing = 1; listing <= kListings; ++listing) {
    auto tags = repo.tags();
    if (!tags && tags.error().code() == Errc::NotFound) break;  // no repository: no cache
    if (!tags) return std::move(tags).error();
    std::vector<std::string> wanted, references;
    unread = 0;
    for (const auto& tag : *tags) {
      const bool legacy = tag == cache_tag;
      const auto digest = cache_manifest_digest(cache_tag, tag);
      if (missing.count(tag)) dangling.insert(tag);
      if ((!legacy && !digest) || tried.count(tag)) continue;
      if (by_digest.size() + wanted.size() >= kMaxCacheManifests) {
        ++unread;
        continue;
      }
      wanted.push_back(tag);
      // By digest: the content is the one the tag's name promises (verified on arrival).
      references.push_back(legacy ? tag : digest->to_string());
    }
    if (wanted.empty()) break;
    ENVB_ASSIGN_OR_RETURN(auto fetched,
                          oci::registry::get_manifests(repo, references, kMaxCacheManifestBytes));
    size_t deleted = 0;
    for (size_t i = 0; i < wanted.size(); ++i) {
      tried.insert(wanted[i]);
      if (!fetched[i]) {
        missing.insert(wanted[i]);
        ++deleted;
        continue;
      }
      ENVB_ASSIGN_OR_RETURN(CacheManifest content,
                            parse_cache_manifest(fetched[i]->bytes)
                                .context("cache manifest " + wanted[i]));
      const oci::Digest digest = fetched[i]->descriptor.digest;
      by_digest.try_emplace(digest, StoredCacheManifest{wanted[i], digest, std::move(content)});
    }
    if (deleted == 0) break;
    if (listing == kListings) unread += deleted;
  }
  CacheSnapshot snapshot;
  snapshot.unread = unread;
  snapshot.dangling.assign(dangling.begin(), dangling.end());
  for (auto& [digest, manifest] : by_digest) snapshot.manifests.push_back(std::move(manifest));
  std::stable_sort(snapshot.manifests.begin(), snapshot.manifests.end(),
                   [](const StoredCacheManifest& a, const StoredCacheManifest& b) {
                     return a.content.generation > b.content.generation;
                   });
  return snapshot;
}

namespace {

std::vector<const CacheManifest*> newest_first(const CacheSnapshot& snapshot) {
  std::vector<const CacheManifest*> out;
  for (const auto& m : snapshot.manifests) out.push_back(&m.content);
  return out;
}

}  // namespace

Result<std::unique_ptr<RegistryLayerCache>> RegistryLayerCache::open(
    const oci::ImageReference& ref, const oci::registry::RegistryOptions& options) {
  const std::string what = "reading the layer cache " + ref.to_string();
  std::unique_ptr<RegistryLayerCache> cache(new RegistryLayerCache());
  cache->ref_ = ref;
  ENVB_ASSIGN_OR_RETURN(auto repo, oci::registry::Repository::connect(
                                       ref.host, ref.name, oci::registry::Action::Pull, options)
                                       .context(what));
  ENVB_TRY(repo.ping().context(what));
  const std::string tag = ref.tag.empty() ? std::string(kDefaultCacheTag) : ref.tag;
  ENVB_ASSIGN_OR_RETURN(CacheSnapshot snapshot, read_cache(repo, tag).context(what));
  cache->repo_.emplace(std::move(repo));
  cache->manifests_ = snapshot.manifests.size();
  for (const auto& m : snapshot.manifests)
    for (const auto& e : m.content.entries) cache->blobs_.insert(e.layer.descriptor.digest);
  for (auto& e : merge_cache_entries(newest_first(snapshot), SIZE_MAX))
    if (!e.key.empty()) cache->by_key_.emplace(e.key, std::move(e.layer));
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

namespace {

// Whether the newest manifests of `snapshot` (those of the highest generation) hold every one of
// `entries`, descriptors included: then a manifest of them would add nothing but recency.
bool newest_hold(const CacheSnapshot& snapshot, const std::vector<CacheEntry>& entries) {
  if (snapshot.manifests.empty()) return entries.empty();
  const uint64_t newest = snapshot.manifests.front().content.generation;
  std::map<std::string, const CacheEntry*> held;
  for (const auto& m : snapshot.manifests) {
    if (m.content.generation != newest) break;
    for (const auto& e : m.content.entries) held.emplace(entry_identity(e), &e);
  }
  return std::all_of(entries.begin(), entries.end(), [&](const CacheEntry& e) {
    auto it = held.find(entry_identity(e));
    return it != held.end() && *it->second == e;
  });
}

// Why this registry cannot delete manifests, or nullopt when it can; asked by deleting a digest
// that no manifest has (distribution answers 404 when deletes are enabled, 405 when not).
std::optional<std::string> why_no_deletes(oci::registry::Repository& repo) {
  auto probe = repo.delete_manifest(oci::Digest::of("envbuild: does this registry delete?"));
  if (probe) return std::nullopt;
  const Error& e = probe.error();
  return e.to_string() + (e.hint().empty() ? "" : " (" + e.hint() + ")");
}

// Pushes `manifest` under its TAG-<hex> tag.
Result<oci::Descriptor> put_cache_manifest(oci::registry::Repository& repo,
                                           std::string_view cache_tag,
                                           const CacheManifest& manifest) {
  const std::string json = cache_manifest_json(manifest);
  return repo.put_manifest(cache_manifest_tag(cache_tag, oci::Digest::of(json)), json,
                           std::string(oci::media_type::kOciManifest));
}

// Pushes one manifest merging `sources` (newest first, at most kMaxCacheEntries entries) and
// reads it back by its tag, where readers will look for it.
Result<oci::Descriptor> push_merged(oci::registry::Repository& repo, std::string_view cache_tag,
                                    const std::vector<const CacheManifest*>& sources) {
  CacheManifest merged;
  merged.generation = std::max<uint64_t>(1, sources.front()->generation);
  merged.entries = merge_cache_entries(sources, kMaxCacheEntries);
  ENVB_ASSIGN_OR_RETURN(oci::Descriptor pushed, put_cache_manifest(repo, cache_tag, merged));
  ENVB_ASSIGN_OR_RETURN(auto back, repo.get_manifest(cache_manifest_tag(cache_tag, pushed.digest),
                                                     kMaxCacheManifestBytes)
                                       .context("reading back the merged cache manifest"));
  if (back.descriptor.digest != pushed.digest)
    return fail(Errc::Integrity, "the merged cache manifest reads back as " +
                                     back.descriptor.digest.to_string() + ", pushed " +
                                     pushed.digest.to_string());
  return pushed;
}

// The second half of a compaction, once the merged manifest is in the registry: deletes every
// manifest of `snapshot` but the merged one, which holds all their entries (but the oldest past
// kMaxCacheEntries). By digest, which is safe even when another build has just pushed the same
// bytes again: a digest names its entries. A failure only leaves manifests for a later
// compaction, so it is reported, not returned.
void delete_compacted(oci::registry::Repository& repo, const CacheSnapshot& snapshot,
                      const oci::Digest& merged, CachePushReport& report) {
  report.manifests = 1;  // the merged one, and those a failure leaves
  for (const auto& m : snapshot.manifests) {
    if (m.digest == merged) continue;
    if (report.cleanup_failed.empty()) {
      auto deleted = repo.delete_manifest(m.digest);
      if (deleted) {
        report.compacted += *deleted ? 1 : 0;
        continue;
      }
      report.cleanup_failed =
          "deleting cache manifest " + m.tag + ": " + deleted.error().to_string();
    }
    ++report.manifests;
  }
}

// Tags left behind by a DELETE that failed half-way (distribution 2.8 deletes the manifest,
// then reads every tag's link to find those that name it, and gives up when one is being
// written by another push) are moved to an empty tombstone manifest, which is then deleted with
// all its tags. Safe: a registry lists a tag only once its manifest is stored, so a manifest
// gone under a listed tag was deleted, by a compaction that first pushed a merged manifest
// holding its entries. Like deletes, a failure is reported, not returned.
void retire_dangling_tags(oci::registry::Repository& repo,
                          const std::vector<std::string>& dangling, CachePushReport& report) {
  constexpr size_t kMaxRetired = 16;  // per push; the next push retires more
  if (dangling.empty()) return;
  const std::string tombstone = cache_manifest_json(CacheManifest{});
  size_t moved = 0;
  for (; moved < dangling.size() && moved < kMaxRetired; ++moved) {
    auto put = repo.put_manifest(dangling[moved], tombstone,
                                 std::string(oci::media_type::kOciManifest));
    if (!put) {
      report.cleanup_failed = "retiring the dangling tag " + dangling[moved] + ": " +
                              put.error().to_string();
      break;
    }
  }
  auto deleted = repo.delete_manifest(oci::Digest::of(tombstone));
  if (!deleted) {
    report.cleanup_failed = "deleting the tombstone cache manifest: " + deleted.error().to_string();
    return;
  }
  if (*deleted) report.retired += moved;
}

}  // namespace

Result<CachePushReport> push_layer_cache(const std::vector<CacheEntry>& entries,
                                         const oci::registry::BlobOpener& open,
                                         const oci::ImageReference& dest,
                                         const oci::registry::RegistryOptions& options,
                                         const CachePushOptions& cache_options) {
  auto started = std::chrono::steady_clock::now();
  const std::string what = "pushing the layer cache " + dest.to_string();
  const std::string tag = dest.tag.empty() ? std::string(kDefaultCacheTag) : dest.tag;
  ENVB_ASSIGN_OR_RETURN(auto repo, oci::registry::Repository::connect(
                                       dest.host, dest.name, oci::registry::Action::Push, options)
                                       .context(what));
  ENVB_TRY(repo.ping().context(what));
  auto snapshot = read_cache(repo, tag);
  if (!snapshot) {
    auto error = std::move(snapshot).error().with_context(what);
    if (error.code() != Errc::InvalidInput) return error;
    return std::move(error).with_hint("give --cache-to a repository or tag of its own");
  }

  // The blobs no cache manifest lists yet, and the empty config for a first manifest.
  std::set<oci::Digest> listed;
  for (const auto& m : snapshot->manifests)
    for (const auto& e : m.content.entries) listed.insert(e.layer.descriptor.digest);
  std::vector<oci::Descriptor> blobs;
  if (snapshot->manifests.empty()) blobs.push_back(empty_config());
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

  // Our own manifest, newer than every one read; none when the newest ones hold our entries.
  CacheManifest mine;
  mine.generation =
      snapshot->manifests.empty() ? 1 : snapshot->manifests.front().content.generation + 1;
  for (const auto& e : entries)
    if (mine.entries.size() < kMaxCacheEntries) mine.entries.push_back(e);
  report.wrote = !newest_hold(*snapshot, mine.entries);
  std::vector<const CacheManifest*> sources = newest_first(*snapshot);
  if (report.wrote) sources.insert(sources.begin(), &mine);
  for (const auto& e : merge_cache_entries(sources, SIZE_MAX)) {
    ++report.entries;
    report.keys += e.key.empty() ? 0 : 1;
  }
  report.manifests = sources.size();

  // Housekeeping: whatever fails here leaves the cache as it was, with this push's entries
  // still to be written below, so it is reported instead of failing the push.
  const bool compaction_due = sources.size() > cache_options.compact_above;
  bool compacted = false;
  if (compaction_due || !snapshot->dangling.empty()) {
    if (auto no_deletes = why_no_deletes(repo)) {
      if (compaction_due) report.not_compacted = std::move(*no_deletes);
    } else {
      if (compaction_due) {
        auto merged = push_merged(repo, tag, sources);
        if (merged) {
          report.transfer.manifest = *merged;
          compacted = true;
          delete_compacted(repo, *snapshot, merged->digest, report);
        } else {
          report.not_compacted = merged.error().to_string();
        }
      }
      retire_dangling_tags(repo, snapshot->dangling, report);
    }
  }
  if (report.wrote && !compacted) {
    ENVB_ASSIGN_OR_RETURN(report.transfer.manifest,
                          put_cache_manifest(repo, tag, mine).context(what));
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
