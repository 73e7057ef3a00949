#pragma once

// Opening an image a command reads (inspect, export): a local reference where it lies, a
// registry's through the cache's blob store (every blob verified).

#include <filesystem>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include "common/result.hpp"
#include "oci/image.hpp"

namespace envbuild::builder::cli {

struct ImageSourceOptions {
  std::string platform;  // of an index: OS/ARCH[/VARIANT], or a conda subdir (linux-64)
  std::string creds;     // docker://: USER:PASSWORD
  bool tls_verify = true;
  std::string cert_dir;
};

/// Adds --creds, --tls-verify and --cert-dir (docker:// sources).
void add_registry_read_options(CLI::App* cmd, ImageSourceOptions& options);

/// Whether a registry image's layers are downloaded (into the cache's store) or only its
/// manifest and config.
enum class RegistryLayers : bool { Skip, Fetch };

/// Opens `reference` (oci:, oci-archive:, docker-archive:, docker://) for the platform asked
/// for (default: the host's); archives are unpacked under `cache_root`/tmp while open.
Result<std::unique_ptr<oci::Image>> open_image_source(const std::string& reference,
                                                      const ImageSourceOptions& options,
                                                      const std::filesystem::path& cache_root,
                                                      RegistryLayers layers);

}  // namespace envbuild::builder::cli
