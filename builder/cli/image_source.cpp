#include "builder/cli/image_source.hpp"

#include <optional>

#include "builder/image/image_build.hpp"
#include "common/fs.hpp"
#include "oci/archive.hpp"
#include "oci/reference.hpp"
#include "oci/registry/auth.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder::cli {

namespace fs = std::filesystem;

void add_registry_read_options(CLI::App* cmd, ImageSourceOptions& o) {
  cmd->add_option("--creds", o.creds, "docker://: USER:PASSWORD (default: the stored logins)");
  cmd->add_option("--tls-verify", o.tls_verify,
                  "docker://: verify TLS certificates (false: also falls back to plain http)")
      ->default_str("true");
  cmd->add_option("--cert-dir", o.cert_dir, "docker://: CA and client certificates");
}

namespace {

// "linux/amd64" as given, "linux-64" as the OCI platform of that conda subdir.
Result<std::optional<oci::Platform>> platform_of(const std::string& text) {
  if (text.empty()) return std::optional<oci::Platform>();
  if (text.find('/') == std::string::npos) {
    ENVB_ASSIGN_OR_RETURN(auto platform, oci_platform_for_subdir(text));
    return std::optional<oci::Platform>(platform);
  }
  ENVB_ASSIGN_OR_RETURN(auto platform, oci::parse_platform(text));
  return std::optional<oci::Platform>(platform);
}

}  // namespace

Result<std::unique_ptr<oci::Image>> open_image_source(const std::string& reference,
                                                      const ImageSourceOptions& o,
                                                      const fs::path& cache_root,
                                                      RegistryLayers layers) {
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(reference));
  ENVB_ASSIGN_OR_RETURN(auto platform, platform_of(o.platform));
  if (ref.transport != oci::Transport::Registry) {
    oci::OpenOptions open;
    open.scratch_dir = cache_root / "tmp";
    ENVB_TRY(common::make_dirs(open.scratch_dir));
    open.platform = platform;
    return oci::open_image(ref, open);
  }
  oci::registry::RegistryOptions registry;
  registry.transport.tls.verify = o.tls_verify;
  registry.transport.tls.cert_dir = o.cert_dir;
  if (!o.creds.empty()) {
    ENVB_ASSIGN_OR_RETURN(registry.credentials, oci::registry::parse_creds(o.creds));
  }
  oci::BlobStore store(cache_root / "oci");
  if (layers == RegistryLayers::Skip) {
    ENVB_ASSIGN_OR_RETURN(auto manifest,
                          oci::registry::pull_manifest_and_config(ref, platform, store, registry));
    return oci::open_store_image(store, manifest);
  }
  ENVB_ASSIGN_OR_RETURN(auto pulled, oci::registry::pull(ref, platform, store, registry)
                                         .context("pulling " + ref.to_string()));
  return oci::open_store_image(store, pulled.manifest);
}

}  // namespace envbuild::builder::cli
