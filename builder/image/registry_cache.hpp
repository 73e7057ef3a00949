#pragma once

// The CI layer cache in a registry: `envbuild build --cache-to docker://HOST/REPO[:TAG]` and
// `--cache-from docker://HOST/REPO[:TAG]` (TAG defaults to envbuild-cache).
//
// A package layer's digest depends only on its key (image_build.hpp: packages, prefix,
// compression, format version), so a registry that remembers key -> layer descriptor lets
// another machine skip building that layer, and skip uploading it too: a docker:// output on the
// same registry mounts it from the cache repository (`?mount=&from=`), a local output downloads
// it (verified) instead of compressing it again.
//
// The cache is a set of immutable cache manifests (OCI image manifests, artifactType
// kCacheArtifactType, the empty config), each tagged TAG-<hex of its own digest>. Their layers
// are every blob of the images pushed with --cache-to (so registry garbage collection keeps them
// and mounts find them); the package layers carry annotations with their key, diff_id and
// uncompressed size. No manifest is ever rewritten: --cache-to adds one with its build's
// entries, readers merge every manifest the tag list names, and compaction replaces many by one
// merged manifest, deleting a manifest only after the merged one, pushed and read back, holds
// all its entries. Registries have no compare-and-swap on tags, and this needs none
// (docs/design.md, "CI cache in a registry", says why no interleaving of writers loses an
// entry). A manifest tagged TAG itself (the single mutable cache manifest of earlier envbuild
// versions) is read as one more, the oldest, and compaction retires it.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builder/image/image_build.hpp"
#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/image.hpp"
#include "oci/layer_writer.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder {

inline constexpr std::string_view kCacheArtifactType =
    "application/vnd.envbuild.layer-cache.v1+json";
inline constexpr std::string_view kDefaultCacheTag = "envbuild-cache";
inline constexpr std::string_view kCacheKeyAnnotation = "org.envbuild.cache.key";
inline constexpr std::string_view kCacheDiffIdAnnotation = "org.envbuild.cache.diff-id";
inline constexpr std::string_view kCacheSizeAnnotation = "org.envbuild.cache.uncompressed-size";
inline constexpr std::string_view kCacheGenerationAnnotation = "org.envbuild.cache.generation";
/// Entries in one cache manifest at most (a merged one keeps the newest).
inline constexpr size_t kMaxCacheEntries = 2000;
/// Cache manifests read at most (the first ones the tag list names).
inline constexpr size_t kMaxCacheManifests = 64;
/// The bytes of one cache manifest at most (kMaxCacheEntries annotated layers take about 1 MiB).
inline constexpr size_t kMaxCacheManifestBytes = 2u << 20;
/// The longest cache tag: TAG-<64 hex> must still be a tag (128 characters at most).
inline constexpr size_t kMaxCacheTagLength = 63;

struct CacheEntry {
  /// The layer key (a package layer); empty for a blob kept only for mounts (base layers, the
  /// environment layer, the image config).
  std::string key;
  /// The blob's descriptor (media type, digest, size; no annotations); diff_id and
  /// uncompressed_size are set for keyed entries.
  oci::LayerInfo layer;

  bool operator==(const CacheEntry& o) const {
    return key == o.key && layer.descriptor == o.layer.descriptor &&
           layer.diff_id == o.layer.diff_id && layer.uncompressed_size == o.layer.uncompressed_size;
  }
};

/// What one cache manifest says.
struct CacheManifest {
  /// One more than the highest generation its writer read (for a merged manifest, the highest
  /// of those it merges): orders manifests newest first. 0 for the legacy single manifest.
  uint64_t generation = 0;
  std::vector<CacheEntry> entries;
};

/// A cache manifest as the registry holds it.
struct StoredCacheManifest {
  std::string tag;
  oci::Digest digest;
  CacheManifest content;
};

/// The cache manifest's canonical JSON.
std::string cache_manifest_json(const CacheManifest& manifest);
/// Reads a cache manifest; one of another artifact type, or with more than kMaxCacheEntries
/// entries, is an InvalidInput error.
Result<CacheManifest> parse_cache_manifest(std::string_view bytes);
/// The entries of `newest_first`, merged: an entry supersedes the ones of later manifests with
/// the same key (the same digest, for unkeyed ones); at most `max`, the newest.
std::vector<CacheEntry> merge_cache_entries(const std::vector<const CacheManifest*>& newest_first,
                                            size_t max);
/// The entries of a built image: its package layers keyed, every other blob unkeyed.
std::vector<CacheEntry> cache_entries_of(const ImageBuild& build, const oci::Image& image);

/// "TAG-<hex>": the tag of the cache manifest with digest `digest`.
std::string cache_manifest_tag(std::string_view cache_tag, const oci::Digest& digest);
/// The digest that `tag` names when it is a cache manifest tag of `cache_tag` (TAG-<64
/// lowercase hex>), else nullopt.
std::optional<oci::Digest> cache_manifest_digest(std::string_view cache_tag, std::string_view tag);

/// "docker://HOST/REPO" -> the same with the default cache tag when it has no tag; anything but
/// a docker:// reference without a digest, or a tag longer than kMaxCacheTagLength, is an
/// InvalidInput error.
Result<oci::ImageReference> parse_cache_reference(const std::string& text);

/// The cache manifests of one cache as one read found them.
struct CacheSnapshot {
  /// Newest (highest generation) first; one per digest.
  std::vector<StoredCacheManifest> manifests;
  /// Cache manifest tags listed but not read: past kMaxCacheManifests, or deleted by compactions
  /// again and again while this read followed them.
  size_t unread = 0;
  /// Cache manifest tags still listed after their manifest was found deleted: left behind by a
  /// DELETE that failed half-way (distribution 2.8 deletes the manifest first, then its tags).
  std::vector<std::string> dangling;
};

/// Reads the cache `cache_tag` of `repo`: the tag list, then every cache manifest it names, in
/// parallel. A manifest deleted between the listing and its read was compacted into one that a
/// new listing names, so the tags are listed again for it (a few times at most; then it counts
/// as unread). An unknown repository is an empty cache.
Result<CacheSnapshot> read_cache(oci::registry::Repository& repo, std::string_view cache_tag);

/// --cache-from: the key -> layer map read from a registry, and the blobs to fetch from it.
class RegistryLayerCache {
 public:
  /// Connects and reads the cache manifests; an unknown repository is an empty cache.
  static Result<std::unique_ptr<RegistryLayerCache>> open(
      const oci::ImageReference& ref, const oci::registry::RegistryOptions& options);

  [[nodiscard]] std::optional<oci::LayerInfo> lookup(const std::string& key) const;
  [[nodiscard]] const std::set<oci::Digest>& blobs() const noexcept { return blobs_; }
  [[nodiscard]] size_t keys() const noexcept { return by_key_.size(); }
  [[nodiscard]] size_t manifests() const noexcept { return manifests_; }
  [[nodiscard]] const oci::ImageReference& reference() const noexcept { return ref_; }

  /// Downloads a blob of the cache into `store`, size and digest verified. Thread-safe.
  Result<void> fetch(const oci::Descriptor& blob, const oci::BlobStore& store) const;

 private:
  RegistryLayerCache() = default;
  oci::ImageReference ref_;
  std::optional<oci::registry::Repository> repo_;
  std::map<std::string, oci::LayerInfo> by_key_;
  std::set<oci::Digest> blobs_;
  size_t manifests_ = 0;
};

/// Wraps an image whose blobs may be missing from `store` (layers left in the cache): opening
/// a missing blob first fetches it from the cache into the store, verified.
std::unique_ptr<oci::Image> with_cache_fallback(std::unique_ptr<oci::Image> image,
                                                const RegistryLayerCache& cache,
                                                oci::BlobStore store);

struct CachePushOptions {
  /// Compact when the cache has more manifests than this (this push's own one included).
  size_t compact_above = 8;
};

struct CachePushReport {
  oci::registry::TransferReport transfer;  // the blobs and the cache manifests
  size_t entries = 0;  // in the cache manifests this push read and wrote
  size_t keys = 0;     // of which package layers
  size_t manifests = 0;  // cache manifests after this push, as far as it knows
  /// Whether a manifest was written: false when the newest cache manifests held every entry.
  bool wrote = false;
  size_t compacted = 0;  // manifests deleted by compaction
  size_t retired = 0;    // dangling tags removed
  /// Why a due compaction did not run (the registry refuses deletes, or the merged manifest
  /// could not be pushed: this push's own went instead), or empty.
  std::string not_compacted;
  /// A delete that failed after the merged manifest was in the registry (compaction, dangling
  /// tags), or empty: it leaves manifests or tags for a later push to remove.
  std::string cleanup_failed;
};

/// --cache-to: pushes every blob of `entries` that the cache does not list yet (mounting from
/// options.mount_from when it can; `open` reads the bytes), then a cache manifest of `entries`,
/// unless the newest cache manifests hold them all. When the cache then has more than
/// compact_above manifests, compacts it: a merged manifest of everything read is pushed (instead
/// of this push's own) and read back, then every manifest read is deleted; and it removes
/// dangling tags. Compaction is housekeeping: a registry that refuses deletes, or a delete that
/// fails, is said in the report and is no error.
Result<CachePushReport> push_layer_cache(const std::vector<CacheEntry>& entries,
                                         const oci::registry::BlobOpener& open,
                                         const oci::ImageReference& dest,
                                         const oci::registry::RegistryOptions& options,
                                         const CachePushOptions& cache_options = {});

}  // namespace envbuild::builder
