#pragma once

// Image archives: oci-archive (a tar of an OCI layout) and docker-archive (what `docker load`
// takes: legacy manifest.json + repositories beside an OCI layout, as Docker 25+ writes), and
// opening any local image reference.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"

namespace envbuild::oci {

/// Writes a deterministic tar (sorted, uid/gid 0, mtime `mtime`) of the layout in `layout_dir`
/// to `out`, atomically.
Result<void> write_oci_archive(const std::filesystem::path& layout_dir,
                               const std::filesystem::path& out, int64_t mtime = 0);

/// Writes `image` as a docker-archive to `out`, atomically: blobs/sha256/*, oci-layout,
/// index.json (annotated with io.containerd.image.name and ref.name), manifest.json
/// ([{Config, RepoTags, Layers}] with blob paths) and repositories. `repo_tags` are "name:tag".
Result<void> write_docker_archive(const Image& image, const std::vector<std::string>& repo_tags,
                                  const std::filesystem::path& out, int64_t mtime = 0);

struct OpenOptions {
  /// Where archives are unpacked while open (a temp dir inside it, removed with the image).
  std::filesystem::path scratch_dir = std::filesystem::temp_directory_path();
  std::optional<Platform> platform;
};

/// Opens an image from an oci:, oci-archive: or docker-archive: reference. Registry references
/// are Unsupported here (see the registry client).
Result<std::unique_ptr<Image>> open_image(const ImageReference& ref,
                                          const OpenOptions& options = {});

/// "busybox:1" -> "docker.io/library/busybox:1" (the name containerd and Docker 25 record).
std::string normalized_docker_name(const std::string& name_and_tag);

}  // namespace envbuild::oci
