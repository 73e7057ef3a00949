#include "oci/registry/copy.hpp"

#include "common/fs.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"

namespace envbuild::oci::registry {

namespace {

// The tag to record in a local destination: its own, else the source's, else "latest".
std::string local_tag(const ImageReference& src, const ImageReference& dest) {
  if (!dest.tag.empty()) return dest.tag;
  if (!src.tag.empty()) return src.tag;
  return "latest";
}

}  // namespace

Result<TransferReport> copy_image(const ImageReference& src, const ImageReference& dest,
                                  const CopyOptions& options) {
  const std::string what = "copying " + src.to_string() + " to " + dest.to_string();
  const bool from_registry = src.transport == oci::Transport::Registry;
  const bool to_registry = dest.transport == oci::Transport::Registry;
  if (!from_registry && !to_registry)
    return fail(Errc::Unsupported, what + ": one side must be a docker:// reference");

  if (!from_registry) {
    OpenOptions open;
    open.scratch_dir = options.scratch_dir;
    open.platform = options.platform;
    ENVB_ASSIGN_OR_RETURN(auto image, open_image(src, open).context(what));
    return push(*image, dest, options.registry).context(what);
  }

  if (dest.transport == oci::Transport::OciLayout) {
    ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::create(dest.path).context(what));
    ENVB_ASSIGN_OR_RETURN(
        TransferReport report,
        pull(src, options.platform, layout.blobs(), options.registry).context(what));
    ENVB_TRY(layout.add(report.manifest, local_tag(src, dest)).context(what));
    return report;
  }

  // Stage in a temporary layout, then write the archive or push it on.
  ENVB_ASSIGN_OR_RETURN(common::TempDir staging,
                        common::TempDir::create(options.scratch_dir, "envbuild-copy-"));
  ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::create(staging.path()).context(what));
  ENVB_ASSIGN_OR_RETURN(
      TransferReport pulled,
      pull(src, options.platform, layout.blobs(), options.registry).context(what));
  const std::string tag = local_tag(src, dest);
  ENVB_TRY(layout.add(pulled.manifest, tag).context(what));
  switch (dest.transport) {
    case oci::Transport::OciArchive:
      ENVB_TRY(write_oci_archive(staging.path(), dest.path).context(what));
      return pulled;
    case oci::Transport::DockerArchive: {
      ENVB_ASSIGN_OR_RETURN(auto image,
                            open_store_image(layout.blobs(), pulled.manifest).context(what));
      std::string name = dest.name.empty() ? src.host + "/" + src.name : dest.name;
      ENVB_TRY(write_docker_archive(*image, {name + ":" + tag}, dest.path).context(what));
      return pulled;
    }
    case oci::Transport::Registry: {
      ENVB_ASSIGN_OR_RETURN(auto image,
                            open_store_image(layout.blobs(), pulled.manifest).context(what));
      RegistryOptions push_options = options.registry;
      if (src.host == dest.host && src.name != dest.name)
        push_options.mount_from.push_back(src.name);
      return push(*image, dest, push_options).context(what);
    }
    case oci::Transport::OciLayout:
      break;
  }
  return fail(Errc::Internal, what + ": unhandled transport");
}

}  // namespace envbuild::oci::registry
