#include "builder/cli/image_source.hpp"

#include <optional>

#include "builder/image/image_build.hpp"
#include "oci/reference.hpp"
#include "oci/registry/auth.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder::cli {

namespace fs = std::filesystem;

void add_registry_read_options(CLI::App* cmd, ImageSourceCliOptions& o) {
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
                                                      const ImageSourceCliOptions& o,
                                                      const fs::path& cache_root,
                                                      RegistryLayers layers) {
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(reference));
  ImageSourceOptions source;
  ENVB_ASSIGN_OR_RETURN(source.platform, platform_of(o.platform));
  source.layers = layers;
  // --creds is read only for a registry: a local source ignores it.
  if (ref.transport == oci::Transport::Registry) {
    source.registry.transport.tls.verify = o.tls_verify;
    source.registry.transport.tls.cert_dir = o.cert_dir;
    if (!o.creds.empty()) {
      ENVB_ASSIGN_OR_RETURN(source.registry.credentials, oci::registry::parse_creds(o.creds));
    }
  }
  ENVB_ASSIGN_OR_RETURN(OpenedImage opened,
                        builder::open_image_source(reference, source, cache_root));
  return std::move(opened.image);
}

}  // namespace envbuild::builder::cli
