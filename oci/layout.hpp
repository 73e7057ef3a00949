#pragma once

// OCI image layout directories (image-layout.md): `oci-layout`, `index.json` and
// `blobs/sha256/<hex>`. Tags are the `org.opencontainers.image.ref.name` annotation on each
// manifest descriptor in index.json; one tag may name one image per platform.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/image.hpp"
#include "oci/manifest.hpp"

namespace envbuild::oci {

class Layout {
 public:
  /// Opens a layout, creating `oci-layout`, an empty `index.json` and `blobs/sha256` if missing.
  static Result<Layout> create(const std::filesystem::path& dir);
  /// Opens an existing layout; NotFound if `dir` has no `oci-layout`.
  static Result<Layout> open(const std::filesystem::path& dir);

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  [[nodiscard]] const BlobStore& blobs() const noexcept { return blobs_; }

  Result<Index> index() const;
  /// Adds `manifest` (whose blobs must be in blobs()) to index.json under `tag`, replacing an
  /// entry with the same tag and platform. index.json is rewritten atomically under an flock on
  /// the layout directory, so concurrent writers do not lose each other's tags.
  Result<void> add(Descriptor manifest, const std::string& tag) const;
  /// Lists an artifact manifest (an SBOM, a signature: a manifest with `artifactType` and a
  /// `subject`) in index.json, untagged, as the OCI 1.1 referrers model has it; idempotent.
  /// Artifacts of the same artifactType whose subject is no longer listed in index.json (their
  /// image was retagged away) are dropped from index.json (their blobs stay).
  Result<void> add_referrer(Descriptor artifact) const;
  /// The image tagged `tag`, for `platform` (default: the only one, or the host's if several).
  Result<std::unique_ptr<Image>> image(
      const std::string& tag, const std::optional<Platform>& platform = std::nullopt) const;
  /// Descriptors of the artifacts whose subject is `subject` (from the manifests in index.json).
  Result<std::vector<Descriptor>> referrers(const Digest& subject) const;
  /// Every tag in index.json, in file order (a tag is repeated once per platform).
  Result<std::vector<std::string>> tags() const;

 private:
  explicit Layout(std::filesystem::path dir) : dir_(dir), blobs_(std::move(dir)) {}
  std::filesystem::path dir_;
  BlobStore blobs_;
};

}  // namespace envbuild::oci
