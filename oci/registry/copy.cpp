#include "oci/registry/copy.hpp"

#include "common/fs.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"

namespace envbuild::oci::registry {

namespace {

// The tag to record in `dest`: its own, else the default.
std::string tag_for(const ImageReference& dest, const WriteOptions& options) {
  return dest.tag.empty() ? options.tag : dest.tag;
}

// Fills an oci: layout in place, or an oci-archive:'s in a temporary directory, then archived.
Result<void> write_layout(const ImageReference& dest, const WriteOptions& options,
                          const std::function<Result<void>(const Layout&)>& fill) {
  auto fill_all = [&](const Layout& layout) -> Result<void> {
    ENVB_TRY(fill(layout));
    if (options.add_to_layout) ENVB_TRY(options.add_to_layout(layout));
    return ok();
  };
  if (dest.transport == Transport::OciLayout) {
    ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::create(dest.path));
    return fill_all(layout);
  }
  ENVB_TRY(common::make_dirs(options.scratch_dir));
  ENVB_ASSIGN_OR_RETURN(common::TempDir staging,
                        common::TempDir::create(options.scratch_dir, "oci-archive-"));
  ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::create(staging.path() / "layout"));
  ENVB_TRY(fill_all(layout));
  return write_oci_archive(layout.dir(), dest.path);
}

ImageReference with_tag(ImageReference dest, const WriteOptions& options) {
  if (dest.tag.empty() && !dest.digest.valid()) dest.tag = options.tag;
  return dest;
}

TransferReport local_report(const Descriptor& written) {
  TransferReport report;
  report.manifest = written;
  return report;
}

}  // namespace

Result<TransferReport> write_image(const Image& image, const ImageReference& dest,
                                   const WriteOptions& options) {
  switch (dest.transport) {
    case Transport::OciLayout:
    case Transport::OciArchive:
      ENVB_TRY(write_layout(dest, options, [&](const Layout& layout) -> Result<void> {
        ENVB_TRY(copy_image_blobs(image, layout.blobs()));
        return layout.add(image.descriptor(), tag_for(dest, options));
      }));
      return local_report(image.descriptor());
    case Transport::DockerArchive: {
      const std::string name = dest.name.empty() ? options.name : dest.name;
      std::vector<std::string> repo_tags;
      if (!name.empty()) repo_tags.push_back(name + ":" + tag_for(dest, options));
      ENVB_TRY(write_docker_archive(image, repo_tags, dest.path));
      return local_report(image.descriptor());
    }
    case Transport::Registry:
      return push(image, with_tag(dest, options), options.registry);
  }
  return fail(Errc::Internal, "writing " + dest.to_string() + ": unknown transport");
}

Result<TransferReport> write_index(const std::vector<const Image*>& images,
                                   const Descriptor& index, const BlobStore& index_store,
                                   const ImageReference& dest, const WriteOptions& options) {
  switch (dest.transport) {
    case Transport::OciLayout:
    case Transport::OciArchive:
      ENVB_TRY(write_layout(dest, options, [&](const Layout& layout) -> Result<void> {
        for (const Image* image : images) ENVB_TRY(copy_image_blobs(*image, layout.blobs()));
        ENVB_TRY(copy_blob(index_store, index, layout.blobs()));
        return layout.add(index, tag_for(dest, options));
      }));
      return local_report(index);
    case Transport::DockerArchive:
      return fail(Errc::Unsupported,
                  dest.to_string() + ": a docker-archive holds one platform, not an image index")
          .with_hint("write oci:, oci-archive: or docker:// for several platforms");
    case Transport::Registry:
      return push_index(images, with_tag(dest, options), options.registry);
  }
  return fail(Errc::Internal, "writing " + dest.to_string() + ": unknown transport");
}

Result<TransferReport> copy_image(const ImageReference& src, const ImageReference& dest,
                                  const CopyOptions& options) {
  const std::string what = "copying " + src.to_string() + " to " + dest.to_string();
  WriteOptions write;
  write.registry = options.registry;
  write.scratch_dir = options.scratch_dir;
  write.tag = src.tag.empty() ? "latest" : src.tag;
  if (src.transport != Transport::Registry) {
    write.name = src.name;
    OpenOptions open;
    open.scratch_dir = options.scratch_dir;
    open.platform = options.platform;
    ENVB_ASSIGN_OR_RETURN(auto image, open_image(src, open).context(what));
    return write_image(*image, dest, write).context(what);
  }
  write.name = src.host + "/" + src.name;

  if (dest.transport == Transport::OciLayout) {  // pulled straight into the layout
    ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::create(dest.path).context(what));
    ENVB_ASSIGN_OR_RETURN(
        TransferReport report,
        pull(src, options.platform, layout.blobs(), options.registry).context(what));
    ENVB_TRY(layout.add(report.manifest, tag_for(dest, write)).context(what));
    return report;
  }
  ENVB_TRY(common::make_dirs(options.scratch_dir));
  ENVB_ASSIGN_OR_RETURN(common::TempDir staging,
                        common::TempDir::create(options.scratch_dir, "envbuild-copy-"));
  const BlobStore store(staging.path());
  ENVB_ASSIGN_OR_RETURN(TransferReport pulled,
                        pull(src, options.platform, store, options.registry).context(what));
  ENVB_ASSIGN_OR_RETURN(auto image, open_store_image(store, pulled.manifest).context(what));
  if (dest.transport == Transport::Registry && src.host == dest.host && src.name != dest.name)
    write.registry.mount_from.push_back(src.name);
  ENVB_ASSIGN_OR_RETURN(TransferReport written, write_image(*image, dest, write).context(what));
  // A push reports what it sent; a local destination, what the pull fetched.
  return dest.transport == Transport::Registry ? written : pulled;
}

}  // namespace envbuild::oci::registry
