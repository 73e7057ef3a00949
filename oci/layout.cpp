#include "oci/layout.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>

#include "common/fs.hpp"
#include "common/json.hpp"

namespace envbuild::oci {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

/// An exclusive flock on the layout directory itself: no lock file appears in the layout.
Result<common::Fd> lock_dir(const fs::path& dir) {
  ENVB_ASSIGN_OR_RETURN(common::Fd fd, common::Fd::open(dir.string(), O_RDONLY | O_DIRECTORY));
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return common::errno_error("flock", dir.string(), errno);
  return fd;
}

const std::string* ref_name(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kAnnotationRefName));
  return it == d.annotations.end() ? nullptr : &it->second;
}

bool same_platform(const std::optional<Platform>& a, const std::optional<Platform>& b) {
  if (!a || !b) return !a && !b;
  return a->os == b->os && a->architecture == b->architecture && a->variant == b->variant;
}

// An image's own platform (its config's) is `want`; a variant only one side names matches
// (configs rarely give one: arm64 is v8 unless said otherwise).
bool config_platform_is(const Image& image, const Platform& want) {
  const ImageConfig& c = image.config();
  return c.os == want.os && c.architecture == want.architecture &&
         (c.variant.empty() || want.variant.empty() || c.variant == want.variant);
}

}  // namespace

Result<Layout> Layout::create(const fs::path& dir) {
  ENVB_TRY(common::make_dirs(dir / "blobs" / "sha256"));
  ENVB_ASSIGN_OR_RETURN(common::Fd lock, lock_dir(dir));
  if (!fs::exists(dir / "oci-layout"))
    ENVB_TRY(common::write_file_atomic(dir / "oci-layout", kLayoutFile));
  if (!fs::exists(dir / "index.json"))
    ENVB_TRY(common::write_file_atomic(dir / "index.json", to_canonical_json(Index{})));
  return Layout(dir);
}

Result<Layout> Layout::open(const fs::path& dir) {
  auto text = common::read_file(dir / "oci-layout", 1 << 16);
  if (!text)
    return std::move(text)
        .error()
        .with_context("opening OCI layout " + dir.string())
        .with_hint("is '" + dir.string() + "' an OCI image layout directory?");
  ENVB_ASSIGN_OR_RETURN(auto j,
                        common::parse_json(*text, "parsing " + (dir / "oci-layout").string()));
  if (!j.is_object() || !j.contains("imageLayoutVersion") || !j["imageLayoutVersion"].is_string())
    return fail(Errc::InvalidInput, (dir / "oci-layout").string() + ": missing imageLayoutVersion");
  return Layout(dir);
}

Result<Index> Layout::index() const {
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(dir_ / "index.json"));
  return parse_index(text).context((dir_ / "index.json").string());
}

Result<void> Layout::add(Descriptor manifest, const std::string& tag) const {
  if (tag.empty()) return fail(Errc::InvalidInput, "empty tag for " + dir_.string());
  if (!blobs_.contains(manifest.digest, manifest.size))
    return fail(Errc::NotFound,
                "manifest " + manifest.digest.short_string() + " is not in " + dir_.string());
  ENVB_ASSIGN_OR_RETURN(common::Fd lock, lock_dir(dir_));
  ENVB_ASSIGN_OR_RETURN(Index index, this->index());
  manifest.annotations[std::string(kAnnotationRefName)] = tag;
  std::erase_if(index.manifests, [&](const Descriptor& d) {
    const std::string* name = ref_name(d);
    return name && *name == tag && same_platform(d.platform, manifest.platform);
  });
  index.manifests.push_back(std::move(manifest));
  return common::write_file_atomic(dir_ / "index.json", to_canonical_json(index))
      .context("tagging " + dir_.string() + ":" + tag);
}

namespace {

// The subject of the artifact manifest `d` in `blobs`, when it has one.
std::optional<Digest> subject_of(const BlobStore& blobs, const Descriptor& d) {
  if (d.artifact_type.empty() || !blobs.contains(d.digest, d.size)) return std::nullopt;
  auto text = common::read_file(blobs.path_of(d.digest));
  if (!text) return std::nullopt;
  auto manifest = parse_manifest(*text);
  if (!manifest || !manifest->subject) return std::nullopt;
  return manifest->subject->digest;
}

}  // namespace

Result<void> Layout::add_referrer(Descriptor artifact) const {
  if (artifact.artifact_type.empty())
    return fail(Errc::InvalidInput,
                "referrer " + artifact.digest.short_string() + " has no artifactType");
  if (!blobs_.contains(artifact.digest, artifact.size))
    return fail(Errc::NotFound,
                "manifest " + artifact.digest.short_string() + " is not in " + dir_.string());
  ENVB_ASSIGN_OR_RETURN(common::Fd lock, lock_dir(dir_));
  ENVB_ASSIGN_OR_RETURN(Index index, this->index());
  // What index.json names: its manifests, and the manifests of the image indexes it lists.
  std::set<Digest> listed;
  for (const auto& d : index.manifests) {
    listed.insert(d.digest);
    if (!media_type::is_index(d.media_type) || !blobs_.contains(d.digest, d.size)) continue;
    auto text = common::read_file(blobs_.path_of(d.digest));
    auto nested = text ? parse_index(*text) : Result<Index>(text.error());
    if (nested)
      for (const auto& m : nested->manifests) listed.insert(m.digest);
  }
  std::erase_if(index.manifests, [&](const Descriptor& d) {
    if (d.digest == artifact.digest) return true;
    if (d.artifact_type != artifact.artifact_type || ref_name(d)) return false;
    auto subject = subject_of(blobs_, d);
    return subject && !listed.count(*subject);
  });
  index.manifests.push_back(std::move(artifact));
  return common::write_file_atomic(dir_ / "index.json", to_canonical_json(index))
      .context("adding a referrer to " + dir_.string());
}

Result<std::vector<Descriptor>> Layout::referrers(const Digest& subject) const {
  ENVB_ASSIGN_OR_RETURN(Index index, this->index());
  std::vector<Descriptor> out;
  for (const auto& d : index.manifests)
    if (auto s = subject_of(blobs_, d); s && *s == subject) out.push_back(d);
  return out;
}

Result<std::unique_ptr<Image>> Layout::image(const std::string& tag,
                                             const std::optional<Platform>& platform) const {
  ENVB_ASSIGN_OR_RETURN(Index index, this->index());
  std::vector<const Descriptor*> matches;
  // Artifacts (SBOMs, signatures) are not images: an untagged lookup does not count them.
  size_t images = 0;
  for (const auto& d : index.manifests) images += d.artifact_type.empty();
  for (const auto& d : index.manifests) {
    const std::string* name = ref_name(d);
    bool tag_matches =
        tag.empty() ? images == 1 && d.artifact_type.empty() : (name && *name == tag);
    if (tag_matches) matches.push_back(&d);
  }
  if (matches.empty())
    return fail(Errc::NotFound, "no image tagged '" + tag + "' in " + dir_.string());
  const Descriptor* chosen = nullptr;
  if (matches.size() == 1 && !platform) {
    chosen = matches.front();
  } else {
    Platform want = platform.value_or(host_platform());
    for (const auto* d : matches)
      if (d->platform && same_platform(d->platform, want)) chosen = d;
    // umoci and skopeo list images without a platform: their config says which it is.
    if (!chosen)
      for (const auto* d : matches)
        if (!d->platform && d->artifact_type.empty())
          if (auto image = open_store_image(blobs_, *d); image && config_platform_is(**image, want))
            return image;
    if (!chosen)
      return fail(Errc::NotFound, "no image tagged '" + tag + "' for platform " + want.to_string() +
                                      " in " + dir_.string());
  }
  return open_store_image(blobs_, *chosen);
}

Result<std::vector<std::string>> Layout::tags() const {
  ENVB_ASSIGN_OR_RETURN(Index index, this->index());
  std::vector<std::string> out;
  for (const auto& d : index.manifests)
    if (const std::string* name = ref_name(d)) out.push_back(*name);
  return out;
}

}  // namespace envbuild::oci
