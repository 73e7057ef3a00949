#include "builder/image/image_source.hpp"

#include "common/fs.hpp"
#include "oci/archive.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

// An opened image, its error named "opening WHAT" when the caller named the source.
Result<std::unique_ptr<oci::Image>> named(Result<std::unique_ptr<oci::Image>> image,
                                          const ImageSourceOptions& o) {
  if (o.what.empty()) return image;
  return std::move(image).context("opening " + o.what);
}

}  // namespace

Result<OpenedImage> open_image_source(const std::string& reference, const ImageSourceOptions& o,
                                      const fs::path& cache_root) {
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(reference));
  OpenedImage opened;
  if (ref.transport != oci::Transport::Registry) {
    oci::OpenOptions open;
    open.scratch_dir = cache_root / "tmp";
    ENVB_TRY(common::make_dirs(open.scratch_dir));
    open.platform = o.platform;
    ENVB_ASSIGN_OR_RETURN(opened.image, named(oci::open_image(ref, open), o));
    return opened;
  }
  oci::BlobStore store(cache_root / "oci");
  if (o.layers == RegistryLayers::Skip) {
    ENVB_ASSIGN_OR_RETURN(
        auto manifest, oci::registry::pull_manifest_and_config(ref, o.platform, store, o.registry));
    ENVB_ASSIGN_OR_RETURN(opened.image, named(oci::open_store_image(store, manifest), o));
    return opened;
  }
  ENVB_ASSIGN_OR_RETURN(auto pulled,
                        oci::registry::pull(ref, o.platform, store, o.registry)
                            .context("pulling " + (o.what.empty() ? ref.to_string() : o.what)));
  ENVB_ASSIGN_OR_RETURN(opened.image, named(oci::open_store_image(store, pulled.manifest), o));
  opened.pulled = std::move(pulled);
  return opened;
}

}  // namespace envbuild::builder
