#include "oci/mutate.hpp"

#include <set>

#include "common/fs.hpp"
#include "oci/media_type.hpp"

namespace envbuild::oci {

namespace {

void apply(const ConfigChanges& changes, ImageConfig& config) {
  for (const auto& [k, v] : changes.env) config.set_env(k, v);
  if (changes.entrypoint) config.config.entrypoint = changes.entrypoint;
  if (changes.cmd) config.config.cmd = changes.cmd;
  if (changes.working_dir) config.config.working_dir = *changes.working_dir;
  if (changes.user) config.config.user = *changes.user;
  for (const auto& [k, v] : changes.labels) config.config.labels[k] = v;
  if (changes.created) config.created = *changes.created;
}

std::string oci_layer_type(const std::string& t) {
  if (t == media_type::kDockerLayerGzip) return std::string(media_type::kOciLayerGzip);
  if (t == media_type::kDockerLayerTar) return std::string(media_type::kOciLayerTar);
  return t;
}

Result<Descriptor> finish(ImageConfig config, std::vector<Descriptor> descriptors,
                          const std::vector<AppendedLayer>& layers, const ConfigChanges& changes,
                          const BlobStore& store) {
  std::set<Digest> elsewhere;
  for (const auto& l : layers) {
    if (l.elsewhere) elsewhere.insert(l.layer.descriptor.digest);
    descriptors.push_back(l.layer.descriptor);
    config.diff_ids.push_back(l.layer.diff_id);
    config.history.push_back(l.history);
  }
  apply(changes, config);
  return put_image(store, config, descriptors, {}, elsewhere);
}

}  // namespace

Result<Descriptor> append_layers(const Image& base, const std::vector<AppendedLayer>& layers,
                                 const ConfigChanges& changes, const BlobStore& store) {
  std::vector<Descriptor> descriptors;
  for (const auto& d : base.manifest().layers) {
    ENVB_TRY(copy_blob(base, d, store).context("the base image's layers"));
    Descriptor copy = d;
    copy.media_type = oci_layer_type(d.media_type);
    descriptors.push_back(std::move(copy));
  }
  ImageConfig config = base.config();
  // One history entry per non-empty layer is what tools expect; pad a base that lacks them.
  size_t non_empty = 0;
  for (const auto& h : config.history) non_empty += h.empty_layer ? 0 : 1;
  for (; non_empty < config.diff_ids.size(); ++non_empty) config.history.push_back(History{});
  return finish(std::move(config), std::move(descriptors), layers, changes, store)
      .context("appending to image " + base.descriptor().digest.short_string());
}

Result<Descriptor> build_image(const Platform& platform, const std::vector<AppendedLayer>& layers,
                               const ConfigChanges& changes, const BlobStore& store) {
  ImageConfig config;
  config.architecture = platform.architecture;
  config.os = platform.os;
  config.variant = platform.variant;
  return finish(std::move(config), {}, layers, changes, store);
}

}  // namespace envbuild::oci
