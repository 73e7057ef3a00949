#pragma once

// The command line of an image a command reads (inspect, export): --platform, --creds,
// --tls-verify and --cert-dir, turned into builder/image/image_source.hpp's options.

#include <filesystem>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include "builder/image/image_source.hpp"
#include "common/result.hpp"
#include "oci/image.hpp"

namespace envbuild::builder::cli {

struct ImageSourceCliOptions {
  std::string platform;  // of an index: OS/ARCH[/VARIANT], or a conda subdir (linux-64)
  std::string creds;     // docker://: USER:PASSWORD
  bool tls_verify = true;
  std::string cert_dir;
};

/// Adds --creds, --tls-verify and --cert-dir (docker:// sources).
void add_registry_read_options(CLI::App* cmd, ImageSourceCliOptions& options);

/// Opens `reference` (oci:, oci-archive:, docker-archive:, docker://) for the platform asked
/// for (default: the host's); archives are unpacked under `cache_root`/tmp while open.
Result<std::unique_ptr<oci::Image>> open_image_source(const std::string& reference,
                                                      const ImageSourceCliOptions& options,
                                                      const std::filesystem::path& cache_root,
                                                      RegistryLayers layers);

}  // namespace envbuild::builder::cli
