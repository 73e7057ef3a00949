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
// The cache is one OCI image manifest (an artifact: artifactType kCacheArtifactType, the empty
// config) under the cache tag. Its layers are every blob of the images pushed with --cache-to
// (so registry garbage collection keeps them and mounts find them); the package layers carry
// annotations with their key, diff_id and uncompressed size. --cache-to merges its entries into
// what the tag already holds (newest first, at most kMaxCacheEntries).

#include <cstddef>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builder/image_build.hpp"
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
inline constexpr size_t kMaxCacheEntries = 2000;

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

/// The cache manifest for `entries` (canonical JSON).
std::string cache_manifest_json(const std::vector<CacheEntry>& entries);
/// Reads a cache manifest; a manifest of another artifact type is an InvalidInput error.
Result<std::vector<CacheEntry>> parse_cache_manifest(std::string_view bytes);
/// `fresh` first, then the entries of `old` that `fresh` does not supersede (same key; same
/// digest for unkeyed ones), at most `max` in all.
std::vector<CacheEntry> merge_cache_entries(std::vector<CacheEntry> fresh,
                                            const std::vector<CacheEntry>& old, size_t max);
/// The entries for a built image: its package layers keyed, every other blob unkeyed.
std::vector<CacheEntry> cache_entries_of(const ImageBuild& build, const oci::Image& image);

/// "docker://HOST/REPO" -> the same with the default cache tag when it has no tag; anything but
/// a docker:// reference without a digest is an InvalidInput error.
Result<oci::ImageReference> parse_cache_reference(const std::string& text);

/// --cache-from: the key -> layer map read from a registry, and the blobs to fetch from it.
class RegistryLayerCache {
 public:
  /// Connects and reads the cache manifest; an unknown repository or tag is an empty cache.
  static Result<std::unique_ptr<RegistryLayerCache>> open(
      const oci::ImageReference& ref, const oci::registry::RegistryOptions& options);

  [[nodiscard]] std::optional<oci::LayerInfo> lookup(const std::string& key) const;
  [[nodiscard]] const std::set<oci::Digest>& blobs() const noexcept { return blobs_; }
  [[nodiscard]] size_t keys() const noexcept { return by_key_.size(); }
  [[nodiscard]] const oci::ImageReference& reference() const noexcept { return ref_; }

  /// Downloads a blob of the cache into `store`, size and digest verified. Thread-safe.
  Result<void> fetch(const oci::Descriptor& blob, const oci::BlobStore& store) const;

 private:
  RegistryLayerCache() = default;
  oci::ImageReference ref_;
  std::optional<oci::registry::Repository> repo_;
  std::map<std::string, oci::LayerInfo> by_key_;
  std::set<oci::Digest> blobs_;
};

/// Wraps an image whose blobs may be missing from `store` (layers left in the cache): opening
/// a missing blob first fetches it from the cache into the store, verified.
std::unique_ptr<oci::Image> with_cache_fallback(std::unique_ptr<oci::Image> image,
                                                const RegistryLayerCache& cache,
                                                oci::BlobStore store);

struct CachePushReport {
  oci::registry::TransferReport transfer;  // the blobs and the cache manifest
  size_t entries = 0;                      // in the cache manifest now
  size_t keys = 0;                         // of which package layers
};

/// --cache-to: pushes every blob of `entries` that the cache does not hold yet (mounting from
/// options.mount_from when it can; `open` reads the bytes), then the merged cache manifest
/// under dest's tag.
Result<CachePushReport> push_layer_cache(const std::vector<CacheEntry>& entries,
                                         const oci::registry::BlobOpener& open,
                                         const oci::ImageReference& dest,
                                         const oci::registry::RegistryOptions& options);

}  // namespace envbuild::builder
