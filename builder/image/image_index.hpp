#pragma once

// Multi-platform output of `envbuild build --platform linux-64,linux-aarch64`: one image per
// platform (each solved and built on its own; packages are just files, so no emulation), and an
// OCI image index over them.

#include <string>
#include <vector>

#include "builder/image/image_build.hpp"
#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/descriptor.hpp"
#include "oci/image.hpp"

namespace envbuild::builder {

/// Puts the image index over `images` (each descriptor with its platform, in the given order)
/// into `store`, whose blobs hold the images; returns the index's descriptor.
Result<oci::Descriptor> put_image_index(const std::vector<const oci::Image*>& images,
                                        const oci::BlobStore& store);

/// Writes the index and its images to oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REF
/// (plus options.artifacts, each attached to its subject); a docker-archive holds one platform
/// and is refused.
Result<void> write_index_output(const std::vector<const oci::Image*>& images,
                                const oci::Descriptor& index, const oci::BlobStore& store,
                                const std::string& output, const std::string& name_and_tag,
                                const OutputOptions& options);

}  // namespace envbuild::builder
