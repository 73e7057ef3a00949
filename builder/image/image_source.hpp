#pragma once

// Opening an image that a command reads or builds on (build --base, inspect, export): a local
// reference (oci:, oci-archive:, docker-archive:) where it lies, a registry's (docker://)
// through the cache's blob store, every blob verified and those already there not downloaded
// again.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder {

/// Whether a registry image's layers are downloaded (into the cache's store) or only its
/// manifest and config.
enum class RegistryLayers : bool { Skip, Fetch };

struct ImageSourceOptions {
  std::optional<oci::Platform> platform;    // of an index (default: the host's)
  oci::registry::RegistryOptions registry;  // docker://: TLS and credentials
  RegistryLayers layers = RegistryLayers::Fetch;
  /// What errors call the source ("base docker://..." gives "pulling base docker://...: ..."
  /// and "opening base ...: ..."); empty: a pull's errors name the reference, and opening a
  /// local one adds nothing.
  std::string what;
};

struct OpenedImage {
  std::unique_ptr<oci::Image> image;
  /// A docker:// source's pull with its layers (RegistryLayers::Fetch): the manifest, and the
  /// blobs downloaded (uploaded) and already in the store (existed).
  std::optional<oci::registry::TransferReport> pulled;
};

/// Opens `reference`; archives are unpacked under `cache_root`/tmp while open, a registry's
/// blobs go to `cache_root`/oci.
Result<OpenedImage> open_image_source(const std::string& reference,
                                      const ImageSourceOptions& options,
                                      const std::filesystem::path& cache_root);

}  // namespace envbuild::builder
