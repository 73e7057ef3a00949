#include "oci/image.hpp"

#include "common/hash.hpp"
#include "oci/compression.hpp"

namespace envbuild::oci {

namespace {

class StoreImage final : public Image {
 public:
  StoreImage(BlobStore store, std::shared_ptr<void> keep_alive)
      : store_(std::move(store)), keep_alive_(std::move(keep_alive)) {}

  Result<void> load(Descriptor manifest) {
    desc_ = std::move(manifest);
    if (!media_type::is_manifest(desc_.media_type))
      return fail(Errc::Unsupported,
                  "descriptor " + desc_.digest.short_string() + " has media type '" +
                      desc_.media_type +
                      "', not an image manifest (image indexes are not supported yet)");
    ENVB_ASSIGN_OR_RETURN(raw_manifest_, store_.read_small(desc_.digest));
    if (static_cast<int64_t>(raw_manifest_.size()) != desc_.size)
      return fail(Errc::Integrity, "manifest " + desc_.digest.short_string() + ": expected " +
                                       std::to_string(desc_.size) + " bytes, got " +
                                       std::to_string(raw_manifest_.size()));
    ENVB_ASSIGN_OR_RETURN(manifest_, parse_manifest(raw_manifest_));
    ENVB_ASSIGN_OR_RETURN(raw_config_, store_.read_small(manifest_.config.digest));
    if (static_cast<int64_t>(raw_config_.size()) != manifest_.config.size)
      return fail(Errc::Integrity, "config " + manifest_.config.digest.short_string() +
                                       ": expected " + std::to_string(manifest_.config.size) +
                                       " bytes, got " + std::to_string(raw_config_.size()));
    ENVB_ASSIGN_OR_RETURN(config_, parse_image_config(raw_config_));
    if (!desc_.platform) desc_.platform = config_.platform();
    return ok();
  }

  const Descriptor& descriptor() const override { return desc_; }
  const std::string& raw_manifest() const override { return raw_manifest_; }
  const Manifest& manifest() const override { return manifest_; }
  const std::string& raw_config() const override { return raw_config_; }
  const ImageConfig& config() const override { return config_; }
  Result<std::unique_ptr<common::ByteSource>> open_blob(const Descriptor& d) const override {
    return store_.open(d.digest, Verify::Yes, d.size);
  }
  std::optional<std::filesystem::path> local_blob_path(const Digest& d) const override {
    return store_.path_of(d);
  }

 private:
  BlobStore store_;
  std::shared_ptr<void> keep_alive_;
  Descriptor desc_;
  std::string raw_manifest_;
  Manifest manifest_;
  std::string raw_config_;
  ImageConfig config_;
};

}  // namespace

Result<std::unique_ptr<Image>> open_store_image(BlobStore store, Descriptor manifest,
                                                std::shared_ptr<void> keep_alive) {
  auto image = std::make_unique<StoreImage>(std::move(store), std::move(keep_alive));
  std::string what = "opening image " + manifest.digest.short_string();
  ENVB_TRY(image->load(std::move(manifest)).context(what));
  return std::unique_ptr<Image>(std::move(image));
}

Result<Descriptor> put_image(const BlobStore& store, const ImageConfig& config,
                             const std::vector<Descriptor>& layers, const Annotations& annotations,
                             const std::set<Digest>& elsewhere) {
  if (config.diff_ids.size() != layers.size())
    return fail(Errc::InvalidInput, "image config has " + std::to_string(config.diff_ids.size()) +
                                        " diff_ids for " + std::to_string(layers.size()) +
                                        " layers");
  for (const auto& l : layers)
    if (!elsewhere.count(l.digest) && !store.contains(l.digest, l.size))
      return fail(Errc::NotFound, "layer " + l.digest.short_string() + " (" +
                                      std::to_string(l.size) + " bytes) is not in " +
                                      store.root().string());
  ENVB_ASSIGN_OR_RETURN(Descriptor config_desc,
                        store.put_document(to_canonical_json(config), media_type::kOciConfig));
  Manifest m;
  m.config = config_desc;
  m.layers = layers;
  m.annotations = annotations;
  ENVB_ASSIGN_OR_RETURN(Descriptor desc,
                        store.put_document(to_canonical_json(m), media_type::kOciManifest));
  desc.platform = config.platform();
  return desc;
}

Result<Digest> compute_diff_id(const Image& image, const Descriptor& layer) {
  ENVB_ASSIGN_OR_RETURN(auto blob, image.open_blob(layer));
  ENVB_ASSIGN_OR_RETURN(auto plain,
                        make_decompressor(std::move(blob), "layer " + layer.digest.short_string()));
  common::HashingSink hash;
  ENVB_TRY(common::copy_stream(*plain, hash));
  return Digest::from_sha256_hex(hash.hex_digest());
}

Result<void> validate(const Image& image, const ValidateOptions& options) {
  const Manifest& m = image.manifest();
  std::string what = "validating image " + image.descriptor().digest.short_string();
  auto check = [&]() -> Result<void> {
    if (m.schema_version != 2) return fail(Errc::InvalidInput, "schemaVersion is not 2");
    if (Digest::of(image.raw_manifest()) != image.descriptor().digest)
      return fail(Errc::Integrity, "manifest bytes do not hash to the descriptor's digest");
    if (m.config.media_type != media_type::kOciConfig &&
        m.config.media_type != media_type::kDockerConfig)
      return fail(Errc::InvalidInput, "config media type '" + m.config.media_type + "'");
    if (Digest::of(image.raw_config()) != m.config.digest ||
        static_cast<int64_t>(image.raw_config().size()) != m.config.size)
      return fail(Errc::Integrity, "config blob does not match its descriptor");
    const ImageConfig& c = image.config();
    if (c.architecture.empty() || c.os.empty())
      return fail(Errc::InvalidInput, "config lacks architecture or os");
    if (c.diff_ids.size() != m.layers.size())
      return fail(Errc::InvalidInput, std::to_string(m.layers.size()) + " layers but " +
                                          std::to_string(c.diff_ids.size()) + " diff_ids");
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const Descriptor& l = m.layers[i];
      if (!media_type::is_layer(l.media_type))
        return fail(Errc::InvalidInput, "layer " + std::to_string(i) + ": media type '" +
                                            l.media_type + "' is not a layer type");
      if (options.check_diff_ids) {
        ENVB_ASSIGN_OR_RETURN(Digest diff_id, compute_diff_id(image, l));
        if (diff_id != c.diff_ids[i])
          return fail(Errc::Integrity, "layer " + std::to_string(i) + " " +
                                           l.digest.short_string() + ": diff_id is " +
                                           diff_id.to_string() + " but the config says " +
                                           c.diff_ids[i].to_string());
      } else {
        ENVB_ASSIGN_OR_RETURN(auto blob, image.open_blob(l));
        struct Null final : common::ByteSink {
          Result<void> write(std::span<const std::byte>) override { return ok(); }
        } null;
        ENVB_TRY(common::copy_stream(*blob, null));
      }
    }
    return ok();
  };
  return check().context(what);
}

Result<void> copy_blob(const Image& image, const Descriptor& d, const BlobStore& to) {
  return copy_blob(d, image.local_blob_path(d.digest), [&] { return image.open_blob(d); }, to);
}

Result<void> copy_image_blobs(const Image& image, const BlobStore& to) {
  for (const auto& d : image.manifest().layers) ENVB_TRY(copy_blob(image, d, to));
  ENVB_TRY(copy_blob(image, image.manifest().config, to));
  if (to.contains(image.descriptor().digest, image.descriptor().size)) return ok();
  ENVB_ASSIGN_OR_RETURN(BlobInfo info, to.put(image.raw_manifest()));
  if (info.digest != image.descriptor().digest)
    return fail(Errc::Integrity, "the manifest of " + image.descriptor().digest.to_string() +
                                     " hashes to " + info.digest.to_string());
  return ok();
}

}  // namespace envbuild::oci
