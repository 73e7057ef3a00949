#include "builder/image_index.hpp"

#include <unistd.h>

#include "builder/referrers.hpp"
#include "common/fs.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

// Hard-links (or copies) `d` from `from` into `to` unless it is there.
Result<void> copy_blob(const oci::BlobStore& from, const oci::Descriptor& d,
                       const oci::BlobStore& to) {
  if (to.contains(d.digest, d.size)) return ok();
  fs::path dest = to.path_of(d.digest);
  ENVB_TRY(common::make_dirs(dest.parent_path()));
  if (::link(from.path_of(d.digest).c_str(), dest.c_str()) == 0) return ok();
  ENVB_ASSIGN_OR_RETURN(std::string bytes, common::read_file(from.path_of(d.digest)));
  ENVB_ASSIGN_OR_RETURN(auto info, to.put(bytes));
  (void)info;
  return ok();
}

Result<void> fill_layout(const std::vector<const oci::Image*>& images, const oci::Descriptor& index,
                         const oci::BlobStore& store, const oci::Layout& layout,
                         const std::string& tag, const OutputOptions& options) {
  for (const oci::Image* image : images) {
    std::vector<oci::Descriptor> blobs = image->manifest().layers;
    blobs.push_back(image->manifest().config);
    blobs.push_back(image->descriptor());
    for (const auto& d : blobs) ENVB_TRY(copy_blob(store, d, layout.blobs()));
  }
  ENVB_TRY(copy_blob(store, index, layout.blobs()));
  ENVB_TRY(layout.add(index, tag));
  for (const auto& a : options.artifacts)
    ENVB_TRY(add_artifact_to_layout(*options.artifacts_store, a, layout));
  return ok();
}

std::string tag_or_default(const std::string& tag, const std::string& name_and_tag) {
  if (!tag.empty()) return tag;
  auto colon = name_and_tag.rfind(':');
  if (colon == std::string::npos || name_and_tag.find('/', colon) != std::string::npos)
    return "latest";
  return name_and_tag.substr(colon + 1);
}

}  // namespace

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
  switch (ref.transport) {
    case oci::Transport::OciLayout: {
      ENVB_ASSIGN_OR_RETURN(auto layout, oci::Layout::create(ref.path));
      return fill_layout(images, index, store, layout, tag_or_default(ref.tag, name_and_tag),
                         options);
    }
    case oci::Transport::OciArchive: {
      ENVB_TRY(common::make_dirs(options.scratch_dir));
      ENVB_ASSIGN_OR_RETURN(auto tmp, common::TempDir::create(options.scratch_dir, "oci-archive-"));
      ENVB_ASSIGN_OR_RETURN(auto layout, oci::Layout::create(tmp.path() / "layout"));
      ENVB_TRY(fill_layout(images, index, store, layout, tag_or_default(ref.tag, name_and_tag),
                           options));
      return oci::write_oci_archive(layout.dir(), ref.path);
    }
    case oci::Transport::DockerArchive:
      return fail(Errc::Unsupported,
                  output + ": a docker-archive holds one platform, not an image index")
          .with_hint("write oci:, oci-archive: or docker:// for several platforms");
    case oci::Transport::Registry: {
      if (ref.tag.empty() && !ref.digest.valid()) ref.tag = tag_or_default("", name_and_tag);
      const oci::registry::RegistryOptions registry = registry_options(options);
      ENVB_TRY(oci::registry::push_index(images, ref, registry));
      return push_output_artifacts(options, ref, registry);
    }
  }
  return fail(Errc::InvalidInput, "unknown output " + output);
}

}  // namespace envbuild::builder
