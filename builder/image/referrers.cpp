#include "builder/image/referrers.hpp"

#include "common/fs.hpp"
#include "common/io.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kEmptyJson = "{}";

Result<oci::Manifest> read_artifact(const oci::BlobStore& store, const oci::Descriptor& artifact) {
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(store.path_of(artifact.digest)));
  return oci::parse_manifest(text);
}

// The manifest's blobs: its config and layers.
std::vector<oci::Descriptor> blobs_of(const oci::Manifest& m) {
  std::vector<oci::Descriptor> out = m.layers;
  out.insert(out.begin(), m.config);
  return out;
}

}  // namespace

std::string referrers_tag(const oci::Digest& subject) {
  std::string text = subject.to_string();
  auto colon = text.find(':');
  if (colon != std::string::npos) text[colon] = '-';
  return text;
}

Result<oci::Descriptor> put_artifact(const oci::BlobStore& store, const oci::Descriptor& subject,
                                     std::string_view artifact_type, std::string_view content,
                                     const std::string& file_name, const std::string& created) {
  ENVB_ASSIGN_OR_RETURN(oci::Descriptor config,
                        store.put_document(kEmptyJson, oci::media_type::kOciEmpty));
  ENVB_ASSIGN_OR_RETURN(oci::Descriptor layer, store.put_document(content, artifact_type));
  if (!file_name.empty()) layer.annotations["org.opencontainers.image.title"] = file_name;
  oci::Manifest m;
  m.artifact_type = std::string(artifact_type);
  m.config = config;
  m.layers = {layer};
  oci::Descriptor s = subject;
  s.annotations.clear();
  s.platform.reset();
  s.artifact_type.clear();
  m.subject = s;
  if (!created.empty()) m.annotations["org.opencontainers.image.created"] = created;
  ENVB_ASSIGN_OR_RETURN(oci::Descriptor d, store.put_document(oci::to_canonical_json(m),
                                                              oci::media_type::kOciManifest));
  d.artifact_type = m.artifact_type;
  return d;
}

Result<void> add_artifact_to_layout(const oci::BlobStore& from, const oci::Descriptor& artifact,
                                    const oci::Layout& layout) {
  ENVB_ASSIGN_OR_RETURN(oci::Manifest m, read_artifact(from, artifact));
  std::vector<oci::Descriptor> blobs = blobs_of(m);
  blobs.push_back(artifact);
  const oci::BlobStore& to = layout.blobs();
  for (const auto& d : blobs) ENVB_TRY(oci::copy_blob(from, d, to));
  return layout.add_referrer(artifact);
}

Result<ReferrerPush> push_artifact(const oci::BlobStore& from, const oci::Descriptor& artifact,
                                   const oci::ImageReference& dest,
                                   const oci::registry::RegistryOptions& options) {
  const std::string what = "attaching " + artifact.artifact_type + " to " + dest.to_string();
  ENVB_ASSIGN_OR_RETURN(oci::Manifest m, read_artifact(from, artifact));
  if (!m.subject) return fail(Errc::InvalidInput, what + ": the artifact has no subject");
  ENVB_ASSIGN_OR_RETURN(auto repo, oci::registry::Repository::connect(
                                       dest.host, dest.name, oci::registry::Action::Push, options));
  ENVB_TRY(repo.ping().context(what));
  for (const auto& d : blobs_of(m)) {
    fs::path path = from.path_of(d.digest);
    auto open = [path]() -> Result<std::unique_ptr<common::ByteSource>> {
      ENVB_ASSIGN_OR_RETURN(auto f, common::FileSource::open(path.string()));
      return std::unique_ptr<common::ByteSource>(std::move(f));
    };
    ENVB_ASSIGN_OR_RETURN(auto outcome, repo.push_blob(d, open).context(what));
    (void)outcome;
  }
  ENVB_ASSIGN_OR_RETURN(std::string bytes, common::read_file(from.path_of(artifact.digest)));
  ENVB_TRY(
      repo.put_manifest(artifact.digest.to_string(), bytes, artifact.media_type).context(what));
  ReferrerPush out;
  ENVB_ASSIGN_OR_RETURN(auto listed, repo.referrers(m.subject->digest).context(what));
  if (listed) {
    out.referrers_api = true;
    return out;
  }
  // The tag schema: GET the index under sha256-<hex> (if any), add the artifact, PUT it back.
  out.fallback_tag = referrers_tag(m.subject->digest);
  oci::Index index;
  ENVB_ASSIGN_OR_RETURN(auto existing, repo.head_manifest(out.fallback_tag).context(what));
  if (existing) {
    ENVB_ASSIGN_OR_RETURN(auto fetched, repo.get_manifest(out.fallback_tag).context(what));
    ENVB_ASSIGN_OR_RETURN(index, oci::parse_index(fetched.bytes).context(what));
  }
  std::erase_if(index.manifests,
                [&](const oci::Descriptor& d) { return d.digest == artifact.digest; });
  oci::Descriptor entry = artifact;
  entry.annotations = m.annotations;
  index.manifests.push_back(entry);
  ENVB_TRY(repo.put_manifest(out.fallback_tag, oci::to_canonical_json(index),
                             std::string(oci::media_type::kOciIndex))
               .context(what + ": writing the referrers tag " + out.fallback_tag));
  return out;
}

}  // namespace envbuild::builder
