#include "oci/archive.hpp"

#include <unistd.h>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/json.hpp"
#include "oci/compression.hpp"
#include "oci/layer_reader.hpp"
#include "oci/layer_writer.hpp"
#include "oci/layout.hpp"

namespace envbuild::oci {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Result<void> write_tar(std::vector<LayerEntry> entries, const fs::path& out, int64_t mtime) {
  ENVB_ASSIGN_OR_RETURN(common::AtomicFile file, common::AtomicFile::create(out, 0644));
  common::FdSink sink(file.fd().get(), file.temp_path().string());
  LayerOptions options;
  options.compression = Compression::None;
  options.mtime = mtime;
  ENVB_TRY(write_layer_to(std::move(entries), options, sink));
  return file.commit();
}

/// Resolves `rel` inside `root` and refuses anything that leaves it (through "..", an absolute
/// path, or a symlink in the unpacked archive).
Result<fs::path> inside(const fs::path& root, const std::string& rel, std::string_view what) {
  if (!common::is_safe_relative_path(rel))
    return fail(Errc::Integrity,
                std::string(what) + " path '" + rel + "' is not a safe relative path");
  std::error_code ec;
  fs::path base = fs::canonical(root, ec);
  fs::path full = fs::weakly_canonical(root / rel, ec);
  if (ec) return fail(Errc::Io, "resolving " + (root / rel).string() + ": " + ec.message());
  auto [b, f] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b != base.end())
    return fail(Errc::Integrity, std::string(what) + " path '" + rel + "' escapes the archive");
  return full;
}

Result<std::shared_ptr<common::TempDir>> unpack(const fs::path& archive,
                                                const OpenOptions& options) {
  ENVB_ASSIGN_OR_RETURN(common::TempDir tmp,
                        common::TempDir::create(options.scratch_dir, "envbuild-archive-"));
  auto holder = std::make_shared<common::TempDir>(std::move(tmp));
  ExtractOptions extract;
  extract.whiteouts = Whiteouts::Keep;
  ENVB_TRY(extract_layer_file(archive, holder->path(), extract)
               .context("unpacking " + archive.string()));
  return holder;
}

/// Makes sure `file` (somewhere in the unpacked archive) is also at blobs/sha256/<its digest>.
Result<BlobInfo> adopt_blob(const BlobStore& store, const fs::path& file) {
  ENVB_ASSIGN_OR_RETURN(std::string hex, common::sha256_file(file.string()));
  ENVB_ASSIGN_OR_RETURN(Digest digest, Digest::from_sha256_hex(hex));
  std::error_code ec;
  auto size = static_cast<int64_t>(fs::file_size(file, ec));
  if (ec) return fail(Errc::Io, "stat(" + file.string() + "): " + ec.message());
  fs::path dest = store.path_of(digest);
  if (!store.contains(digest, size)) {
    ENVB_TRY(common::make_dirs(dest.parent_path()));
    if (::link(file.c_str(), dest.c_str()) != 0 && errno != EEXIST)
      return common::errno_error("link", dest.string(), errno);
  }
  return BlobInfo{digest, size};
}

Result<std::string> docker_layer_media_type(const fs::path& file) {
  ENVB_ASSIGN_OR_RETURN(auto source, common::FileSource::open(file.string()));
  std::byte head[4] = {};
  ENVB_ASSIGN_OR_RETURN(size_t n, source->read(head));
  switch (detect_compression(std::span(head, n))) {
    case Compression::Gzip:
      return std::string(media_type::kDockerLayerGzip);
    case Compression::Zstd:
      return std::string(media_type::kOciLayerZstd);
    case Compression::None:
      break;
  }
  return std::string(media_type::kDockerLayerTar);
}

Result<std::unique_ptr<Image>> open_docker_archive(const ImageReference& ref,
                                                   const OpenOptions& options) {
  ENVB_ASSIGN_OR_RETURN(auto tmp, unpack(ref.path, options));
  const fs::path& root = tmp->path();
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(root / "manifest.json"));
  ENVB_ASSIGN_OR_RETURN(json manifests,
                        common::parse_json(text, "parsing " + ref.path + ":manifest.json"));
  if (!manifests.is_array() || manifests.empty())
    return fail(Errc::InvalidInput, ref.path + ": manifest.json is not a non-empty array");
  const json* chosen = nullptr;
  std::string want = ref.name.empty() ? "" : ref.name + ":" + ref.tag;
  for (const auto& m : manifests) {
    if (want.empty()) {
      if (manifests.size() > 1)
        return fail(Errc::InvalidInput, ref.path + " holds " + std::to_string(manifests.size()) +
                                            " images: name one (docker-archive:FILE:NAME:TAG)");
      chosen = &m;
      break;
    }
    if (!m.contains("RepoTags") || !m["RepoTags"].is_array()) continue;
    for (const auto& t : m["RepoTags"])
      if (t.is_string() &&
          (t.get<std::string>() == want ||
           normalized_docker_name(t.get<std::string>()) == normalized_docker_name(want)))
        chosen = &m;
  }
  if (!chosen) return fail(Errc::NotFound, "no image '" + want + "' in " + ref.path);
  if (!chosen->contains("Config") || !(*chosen)["Config"].is_string() ||
      !chosen->contains("Layers") || !(*chosen)["Layers"].is_array())
    return fail(Errc::InvalidInput, ref.path + ": manifest.json entry lacks Config or Layers");

  BlobStore store(root);
  ENVB_ASSIGN_OR_RETURN(fs::path config_path,
                        inside(root, (*chosen)["Config"].get<std::string>(), "Config"));
  ENVB_ASSIGN_OR_RETURN(BlobInfo config, adopt_blob(store, config_path));
  std::vector<Descriptor> layers;
  for (const auto& l : (*chosen)["Layers"]) {
    if (!l.is_string()) return fail(Errc::InvalidInput, ref.path + ": Layers holds a non-string");
    ENVB_ASSIGN_OR_RETURN(fs::path path, inside(root, l.get<std::string>(), "layer"));
    ENVB_ASSIGN_OR_RETURN(BlobInfo info, adopt_blob(store, path));
    Descriptor d;
    ENVB_ASSIGN_OR_RETURN(d.media_type, docker_layer_media_type(path));
    d.digest = info.digest;
    d.size = info.size;
    layers.push_back(std::move(d));
  }
  // Docker 25+ archives carry the original manifest in index.json: reuse it so the manifest
  // digest survives the round trip.
  if (fs::exists(root / "index.json") && fs::exists(root / "oci-layout")) {
    auto layout = Layout::open(root);
    auto index = layout ? layout->index() : Result<Index>(layout.error());
    if (index) {
      for (const auto& d : index->manifests) {
        if (!media_type::is_manifest(d.media_type) || !store.contains(d.digest, d.size)) continue;
        auto raw = store.read_small(d.digest);
        if (!raw) continue;
        auto m = parse_manifest(*raw);
        if (m && m->config.digest == config.digest) return open_store_image(store, d, tmp);
      }
    }
  }
  Manifest m;
  m.media_type = std::string(media_type::kDockerManifest);
  m.config = Descriptor{
      std::string(media_type::kDockerConfig), config.digest, config.size, {}, {}, {}, {}};
  m.layers = std::move(layers);
  ENVB_ASSIGN_OR_RETURN(Descriptor desc,
                        store.put_document(to_canonical_json(m), media_type::kDockerManifest));
  return open_store_image(store, desc, tmp);
}

}  // namespace

std::string normalized_docker_name(const std::string& name_and_tag) {
  auto ref = parse_docker_reference(name_and_tag);
  if (!ref) return name_and_tag;
  return ref->host + "/" + ref->name + ":" + (ref->tag.empty() ? "latest" : ref->tag);
}

Result<void> write_oci_archive(const fs::path& layout_dir, const fs::path& out, int64_t mtime) {
  ENVB_TRY(Layout::open(layout_dir));
  ENVB_ASSIGN_OR_RETURN(auto entries, entries_from_tree(layout_dir));
  return write_tar(std::move(entries), out, mtime).context("writing oci-archive " + out.string());
}

Result<void> write_docker_archive(const Image& image, const std::vector<std::string>& repo_tags,
                                  const fs::path& out, int64_t mtime) {
  auto write = [&]() -> Result<void> {
    fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    ENVB_ASSIGN_OR_RETURN(common::TempDir staging,
                          common::TempDir::create(parent, ".docker-archive-"));
    BlobStore store(staging.path());
    const Manifest& m = image.manifest();
    std::vector<LayerEntry> entries;
    auto add_blob = [&](const Descriptor& d) -> Result<void> {
      std::string rel = "blobs/sha256/" + d.digest.hex();
      for (const auto& e : entries)
        if (e.path == rel) return ok();
      if (auto local = image.local_blob_path(d.digest); local && fs::exists(*local)) {
        entries.push_back(LayerEntry::file(rel, *local));
        return ok();
      }
      ENVB_TRY(copy_blob(image, d, store));
      entries.push_back(LayerEntry::file(rel, store.path_of(d.digest)));
      return ok();
    };
    ENVB_TRY(add_blob(image.descriptor()));
    ENVB_TRY(add_blob(m.config));
    json layers = json::array();
    for (const auto& l : m.layers) {
      ENVB_TRY(add_blob(l));
      layers.push_back("blobs/sha256/" + l.digest.hex());
    }
    json legacy = json::array({json::object({{"Config", "blobs/sha256/" + m.config.digest.hex()},
                                             {"RepoTags", repo_tags},
                                             {"Layers", layers}})});
    json repositories = json::object();
    Index index;
    for (const auto& t : repo_tags) {
      auto ref = parse_docker_reference(t);
      if (!ref) return std::move(ref).error().with_context("repo tag '" + t + "'");
      std::string tag = ref->tag.empty() ? "latest" : ref->tag;
      std::string name = t.substr(0, t.size() - (ref->tag.empty() ? 0 : ref->tag.size() + 1));
      repositories[name][tag] = m.config.digest.hex();
      Descriptor d = image.descriptor();
      d.platform.reset();
      d.annotations["io.containerd.image.name"] = normalized_docker_name(t);
      d.annotations[std::string(kAnnotationRefName)] = tag;
      index.manifests.push_back(std::move(d));
    }
    if (repo_tags.empty()) index.manifests.push_back(image.descriptor());
    const std::pair<const char*, std::string> docs[] = {
        {"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"},
        {"index.json", to_canonical_json(index)},
        {"manifest.json", canonical_json(legacy)},
        {"repositories", canonical_json(repositories)}};
    for (const auto& [name, content] : docs) {
      ENVB_TRY(common::write_file_atomic(staging.path() / name, content));
      entries.push_back(LayerEntry::file(name, staging.path() / name));
    }
    return write_tar(std::move(entries), out, mtime);
  };
  return write().context("writing docker-archive " + out.string());
}

Result<std::unique_ptr<Image>> open_image(const ImageReference& ref, const OpenOptions& options) {
  std::string what = "opening " + ref.to_string();
  switch (ref.transport) {
    case Transport::OciLayout: {
      ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::open(ref.path).context(what));
      return layout.image(ref.tag, options.platform).context(what);
    }
    case Transport::OciArchive: {
      ENVB_ASSIGN_OR_RETURN(auto tmp, unpack(ref.path, options).context(what));
      ENVB_ASSIGN_OR_RETURN(Layout layout, Layout::open(tmp->path()).context(what));
      ENVB_ASSIGN_OR_RETURN(auto inner, layout.image(ref.tag, options.platform).context(what));
      // Re-open with the temp dir attached so it lives as long as the image.
      return open_store_image(layout.blobs(), inner->descriptor(), tmp);
    }
    case Transport::DockerArchive:
      return open_docker_archive(ref, options).context(what);
    case Transport::Registry:
      break;
  }
  return fail(Errc::Unsupported, what + ": registries are not supported by open_image yet");
}

}  // namespace envbuild::oci
