#include "builder/image/image_index.hpp"

#include "builder/image/referrers.hpp"
#include "common/fs.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"
#include "oci/registry/copy.hpp"

namespace envbuild::builder {


Result<oci::Descriptor> put_image_index(const std::vector<const oci::Image*>& images,
                                        const oci::BlobStore& store) {
  if (images.empty()) return fail(Errc::InvalidInput, "an image index needs images");
  oci::Index index;
  for (const oci::Image* image : images) {
    oci::Descriptor d = image->descriptor();
    d.annotations.clear();
    d.platform = image->config().platform();
    index.manifests.push_back(std::move(d));
  }
  return store.put_document(oci::to_canonical_json(index), oci::media_type::kOciIndex);
}

Result<void> write_index_output(const std::vector<const oci::Image*>& images,
                                const oci::Descriptor& index, const oci::BlobStore& store,
                                const std::string& output, const std::string& name_and_tag,
                                const OutputOptions& options) {
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(output));
  const oci::registry::WriteOptions write = write_options(options, name_and_tag);
  ENVB_ASSIGN_OR_RETURN(auto report,
                        oci::registry::write_index(images, index, store, ref, write));
  return finish_output(options, ref, write, report);
}

}  // namespace envbuild::builder
