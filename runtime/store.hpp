#pragma once

// The local store of registry images: `envrun pull docker://HOST/REPO:TAG` (or the first run of
// a docker:// reference) copies the image into an OCI layout of the cache, and runs read it from
// there without contacting the registry again (like `docker run` with a local image).
//
//   <root>/i/<16 hex of the reference>/   a layout tagged "latest"; its blobs/ is a link to
//   <root>/i/blobs/                       the blobs of every pulled image (layers shared once)
//   <root>/i/<16 hex>.lock                serializes pulls of one reference

#include <filesystem>
#include <memory>
#include <vector>

#include "common/result.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::runtime {

/// The registry options envrun uses by default: TLS verification off for loopback registries
/// (localhost, 127.0.0.0/8, ::1), which Docker also treats as insecure by default; otherwise on.
oci::registry::RegistryOptions default_registry_options(const oci::ImageReference& ref);

struct PullResult {
  std::string manifest_digest;
  std::filesystem::path layout;
  oci::registry::TransferReport transfer;
};

/// Pulls `ref` (docker://) into the store of the cache at `root`, replacing what it held.
Result<PullResult> pull_to_store(const oci::ImageReference& ref, const std::filesystem::path& root,
                                 const oci::registry::RegistryOptions& options);

/// The stored image of `ref` for this host's platform: from the cache's own store, else from a
/// shared cache's store, else pulled into the cache's store first.
Result<std::unique_ptr<oci::Image>> open_from_store(const oci::ImageReference& ref,
                                                    const std::filesystem::path& root,
                                                    const oci::registry::RegistryOptions& options);

}  // namespace envbuild::runtime
