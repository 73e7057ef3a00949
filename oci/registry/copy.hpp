#pragma once

// `skopeo copy` between transports for the push and pull commands: a registry on one side,
// an oci: layout, oci-archive: or docker-archive: (or another registry) on the other.

#include <filesystem>
#include <optional>

#include "common/result.hpp"
#include "oci/descriptor.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::oci::registry {

struct CopyOptions {
  RegistryOptions registry;
  /// The platform to pick from an index (default: the host's; a local source with one image
  /// ignores it).
  std::optional<Platform> platform;
  /// Where archives are unpacked and registry images staged while copying.
  std::filesystem::path scratch_dir = std::filesystem::temp_directory_path();
};

/// Copies one image from `src` to `dest`; at least one side must be a registry. Registry to
/// registry stages the blobs locally (and mounts from the source repository when both are on
/// the same registry). Returns the report of the registry transfer (the push when both are).
Result<TransferReport> copy_image(const ImageReference& src, const ImageReference& dest,
                                  const CopyOptions& options);

}  // namespace envbuild::oci::registry
