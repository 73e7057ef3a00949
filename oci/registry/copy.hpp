#pragma once

// Writing images to every transport, and `skopeo copy` between them: write_image() and
// write_index() are the one place that knows how an oci: layout, an oci-archive:, a
// docker-archive: and a docker:// registry are written; copy_image() opens or pulls the source
// and writes it with them.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>
#include <optional>

#include "common/result.hpp"
#include "oci/descriptor.hpp"
#include "oci/image.hpp"
#include "oci/layout.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::oci::registry {

struct WriteOptions {
  RegistryOptions registry;  // docker:// destinations
  /// Where an oci-archive: is staged.
  std::filesystem::path scratch_dir = std::filesystem::temp_directory_path();
  /// What to record where the destination names none: the tag of an oci: layout, an
  /// oci-archive: or a docker:// push, and the name of a docker-archive:'s RepoTags entry (none
  /// without a name).
  std::string name;
  std::string tag = "latest";
  /// Adds to an oci: or oci-archive: layout before it is closed (the build's SBOM referrers).
  std::function<Result<void>(const Layout&)> add_to_layout;
};

/// Writes `image` to `dest`, which may be any transport. Returns the push's report for a
/// docker:// destination (its manifest only, otherwise).
Result<TransferReport> write_image(const Image& image, const ImageReference& dest,
                                   const WriteOptions& options);

/// Writes an image index over `images` (every one single-platform; the index document is
/// `index` in `index_store`) to an oci:, oci-archive: or docker:// destination. A
/// docker-archive: holds one platform: Unsupported.
Result<TransferReport> write_index(const std::vector<const Image*>& images,
                                   const Descriptor& index, const BlobStore& index_store,
                                   const ImageReference& dest, const WriteOptions& options);

struct CopyOptions {
  RegistryOptions registry;
  /// The platform to pick from an index (default: the host's; a local source with one image
  /// ignores it).
  std::optional<Platform> platform;
  /// Where archives are unpacked and registry images staged while copying.
  std::filesystem::path scratch_dir = std::filesystem::temp_directory_path();
};

/// Copies one image from `src` to `dest`, any transport to any other. A registry source is
/// pulled straight into an oci: destination, else staged in a temporary layout (and a push to
/// the same registry mounts from the source repository). Returns the report of the registry
/// transfer (the push when both are registries).
Result<TransferReport> copy_image(const ImageReference& src, const ImageReference& dest,
                                  const CopyOptions& options);

}  // namespace envbuild::oci::registry
