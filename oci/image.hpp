#pragma once

// The read-only image interface shared by every source (layout directory, oci-archive,
// docker-archive, later a registry), and helpers derived from it.

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/io.hpp"
#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/descriptor.hpp"
#include "oci/manifest.hpp"

namespace envbuild::oci {

/// One single-platform image. Implementations are immutable after opening and safe to read
/// from several threads as long as each thread opens its own blob streams.
class Image {
 public:
  virtual ~Image() = default;
  /// The manifest's descriptor (digest over raw_manifest(); platform when known).
  [[nodiscard]] virtual const Descriptor& descriptor() const = 0;
  [[nodiscard]] virtual const std::string& raw_manifest() const = 0;
  [[nodiscard]] virtual const Manifest& manifest() const = 0;
  [[nodiscard]] virtual const std::string& raw_config() const = 0;
  [[nodiscard]] virtual const ImageConfig& config() const = 0;
  /// A fresh stream over a blob (config or layer), verified against the descriptor's digest
  /// and size: the stream fails at its end on a mismatch.
  virtual Result<std::unique_ptr<common::ByteSource>> open_blob(const Descriptor& d) const = 0;
  /// Where the blob lies on local disk, for sources that have one (copies become links).
  [[nodiscard]] virtual std::optional<std::filesystem::path> local_blob_path(const Digest&) const {
    return std::nullopt;
  }
};

/// An image whose blobs are in a BlobStore; `keep_alive` owns whatever the store lives in (a
/// temp dir an archive was unpacked into).
Result<std::unique_ptr<Image>> open_store_image(BlobStore store, Descriptor manifest,
                                                std::shared_ptr<void> keep_alive = nullptr);

/// Writes the config and manifest of an image whose layer blobs are already in `store` (or,
/// for the digests in `elsewhere`, known to be in a registry the image goes to).
/// `config.diff_ids` must have one entry per layer. Returns the manifest descriptor, with the
/// config's platform.
Result<Descriptor> put_image(const BlobStore& store, const ImageConfig& config,
                             const std::vector<Descriptor>& layers,
                             const Annotations& annotations = {},
                             const std::set<Digest>& elsewhere = {});

/// The diff_id of a layer blob: decompress and hash (streams; nothing held in memory).
Result<Digest> compute_diff_id(const Image& image, const Descriptor& layer);

struct ValidateOptions {
  bool check_diff_ids = true;  // decompress every layer (slow for big images)
};

/// Checks what oci-image-tool and umoci check between them: schema version, media types, every
/// blob's digest and size, config parsing, one diff_id per layer and (optionally) the diff_ids
/// themselves. Returns the first problem found.
Result<void> validate(const Image& image, const ValidateOptions& options = {});

/// copy_blob() of one blob of `image` (linked from its local file when it has one).
Result<void> copy_blob(const Image& image, const Descriptor& d, const BlobStore& to);

/// The config, the layers and the manifest of `image` into `to`, so that a layout can list it.
Result<void> copy_image_blobs(const Image& image, const BlobStore& to);

}  // namespace envbuild::oci
