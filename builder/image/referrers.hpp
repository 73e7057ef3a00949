#pragma once

// Artifacts attached to an image, OCI 1.1 style: an artifact manifest (artifactType, the empty
// config, one layer holding the content, `subject` = the image's manifest descriptor). In an OCI
// layout it is listed, untagged, in index.json; in a registry it is pushed by digest and found
// through the referrers API, or, where the registry has none, through the `sha256-<hex>` tag
// schema (an image index of the subject's referrers under that tag).

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/descriptor.hpp"
#include "oci/layout.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder {

inline constexpr std::string_view kSpdxJson = "application/spdx+json";

/// Stores the artifact manifest (and its two blobs) in `store`. `file_name` becomes the layer's
/// org.opencontainers.image.title; `created` (RFC 3339) the manifest's
/// org.opencontainers.image.created. Deterministic. The descriptor carries artifactType.
Result<oci::Descriptor> put_artifact(const oci::BlobStore& store, const oci::Descriptor& subject,
                                     std::string_view artifact_type, std::string_view content,
                                     const std::string& file_name, const std::string& created);

/// Copies the artifact's blobs from `from` into `layout` and lists it in index.json.
Result<void> add_artifact_to_layout(const oci::BlobStore& from, const oci::Descriptor& artifact,
                                    const oci::Layout& layout);

struct ReferrerPush {
  bool referrers_api = false;  // false: the sha256-<hex> tag was written
  std::string fallback_tag;    // the tag, when it was
};

/// Pushes the artifact (blobs, then the manifest by digest) to `dest`'s repository; where the
/// registry has no referrers API, adds it to the index under the subject's referrers tag.
Result<ReferrerPush> push_artifact(const oci::BlobStore& from, const oci::Descriptor& artifact,
                                   const oci::ImageReference& dest,
                                   const oci::registry::RegistryOptions& options);

/// "sha256-<hex>": the referrers tag of a subject.
std::string referrers_tag(const oci::Digest& subject);

}  // namespace envbuild::builder
