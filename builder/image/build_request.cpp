#include "builder/image/build_request.hpp"

#include <set>

#include "builder/image/image_index.hpp"
#include "builder/image/image_source.hpp"
#include "builder/image/referrers.hpp"
#include "builder/image/registry_cache.hpp"
#include "builder/image/sbom.hpp"
#include "common/fs.hpp"
#include "oci/reference.hpp"

namespace envbuild::builder {

namespace {

using Progress = std::function<void(const std::string&)>;

void tell(const Progress& progress, const std::string& line) {
  if (progress) progress(line);
}

// --base: a registry's image for this platform is pulled into the cache's store (every blob
// verified, those already there not downloaded again); any other is opened where it is.
Result<std::unique_ptr<oci::Image>> open_base(const BuildRequest& r) {
  std::unique_ptr<oci::Image> base;
  if (r.base.empty()) return base;
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(r.base));
  ImageSourceOptions source;
  ENVB_ASSIGN_OR_RETURN(source.platform, oci_platform_for_subdir(r.options.subdir));
  source.registry = registry_options(r.registry);
  source.layers = RegistryLayers::Fetch;
  source.what = "base " + r.base;
  ENVB_ASSIGN_OR_RETURN(OpenedImage opened,
                        open_image_source(r.base, source, r.options.cache_root));
  if (opened.pulled)
    tell(r.progress, "base " + ref.to_string() + ": " +
                         opened.pulled->manifest.digest.short_string() + ", " +
                         std::to_string(opened.pulled->uploaded) + " blobs downloaded, " +
                         std::to_string(opened.pulled->existed) + " cached");
  return std::move(opened.image);
}

// An image without a base holds the environment alone: no libc, no shell. envrun brings what
// it needs, but `docker load` + `docker run` of a docker-archive fails with "no such file or
// directory", so say it when an output is meant for Docker or Podman.
void warn_without_base(const BuildRequest& r) {
  if (!r.base.empty()) return;
  for (const auto& output : r.outputs)
    if (output.starts_with("docker-archive:")) {
      tell(r.progress, "warning: " + output +
                           " has no base image, so no libc or shell: docker run and podman run "
                           "cannot start its programs (envrun can)\n"
                           "hint: give a base with the libc the packages need, e.g. --base "
                           "docker://docker.io/library/debian:12-slim");
      return;
    }
}

// --cache-from: the registry's layer cache, which the build takes layers from.
Result<std::unique_ptr<RegistryLayerCache>> open_layer_cache(
    const BuildRequest& r, const OutputOptions& output_options,
    const std::vector<oci::ImageReference>& registry_outputs, size_t squashfs_outputs,
    const std::optional<oci::ImageReference>& cache_to, ImageBuildOptions& options) {
  std::unique_ptr<RegistryLayerCache> cache;
  if (r.cache_from.empty() || r.plan) return cache;
  ENVB_ASSIGN_OR_RETURN(auto ref, parse_cache_reference(r.cache_from));
  ENVB_ASSIGN_OR_RETURN(cache, RegistryLayerCache::open(ref, registry_options(output_options)));
  tell(r.progress, "layer cache " + ref.to_string() + ": " + std::to_string(cache->keys()) +
                       " layers, " + std::to_string(cache->blobs().size()) + " blobs in " +
                       std::to_string(cache->manifests()) + " manifests");
  options.cache_from = cache.get();
  // Cached layers stay in the registry only when everything the image goes to is on that
  // registry (and mounts them); a local output needs their bytes here.
  bool all_there = registry_outputs.size() == r.outputs.size() - squashfs_outputs;
  for (const auto& out_ref : registry_outputs) all_there = all_there && out_ref.host == ref.host;
  if (cache_to) all_there = all_there && cache_to->host == ref.host;
  options.fetch_cached_layers = !all_there;
  return cache;
}

// What a --cache-to push did, then a warning for each part of a compaction it left undone.
std::vector<std::string> cache_push_lines(const std::string& cache, const CachePushReport& pushed) {
  const auto& t = pushed.transfer;
  std::vector<std::string> out = {
      "layer cache " + cache + ": " + std::to_string(pushed.keys) + " layers, " +
      std::to_string(pushed.entries) + " blobs; pushed " + std::to_string(t.blobs) + " blobs (" +
      std::to_string(t.uploaded) + " uploaded, " + std::to_string(t.mounted) + " mounted, " +
      std::to_string(t.existed) + " already there), " +
      (pushed.wrote ? "a cache manifest" : "no cache manifest (nothing new)") + "; " +
      std::to_string(pushed.manifests) + " cache manifests" +
      (pushed.compacted ? " (compacted " + std::to_string(pushed.compacted) + ")" : "") +
      (pushed.retired ? "; " + std::to_string(pushed.retired) + " dangling tags removed" : "")};
  if (!pushed.not_compacted.empty())
    out.push_back("warning: layer cache " + cache + " not compacted: " + pushed.not_compacted);
  if (!pushed.cleanup_failed.empty())
    out.push_back("warning: layer cache " + cache +
                  " compacted in part (a later --cache-to goes on): " + pushed.cleanup_failed);
  return out;
}

// --cache-to: the build's layers pushed as a layer cache, mounted from what this build pushed
// to the same registry, else from the --cache-from cache there.
Result<void> push_cache_to(const oci::ImageReference& cache_to, const ImageBuild& build,
                           const std::unique_ptr<oci::Image>& image,
                           const OutputOptions& output_options,
                           const std::vector<oci::ImageReference>& registry_outputs,
                           const RegistryLayerCache* cache,
                           const std::shared_ptr<const std::set<oci::Digest>>& cached_blobs,
                           const Progress& progress) {
  auto registry = registry_options(output_options);
  // Mount from what was just pushed to the same registry, else from the layer cache there.
  for (const auto& out_ref : registry_outputs)
    if (out_ref.host == cache_to.host && out_ref.name != cache_to.name)
      registry.mount_from.push_back(out_ref.name);
  if (registry.mount_from.empty() && cache && cache->reference().host == cache_to.host &&
      cache->reference().name != cache_to.name) {
    registry.mount_from.push_back(cache->reference().name);
    registry.mountable = cached_blobs;
  }
  ENVB_ASSIGN_OR_RETURN(
      auto pushed,
      push_layer_cache(
          cache_entries_of(build, *image),
          [&image](const oci::Descriptor& d) { return image->open_blob(d); }, cache_to, registry));
  for (const auto& line : cache_push_lines(cache_to.to_string(), pushed)) tell(progress, line);
  return ok();
}

// The bytes of an image's blobs (config and layers): what a push sends at most.
uint64_t image_bytes(const oci::Image& image) {
  uint64_t total = static_cast<uint64_t>(image.manifest().config.size);
  for (const auto& layer : image.manifest().layers) total += static_cast<uint64_t>(layer.size);
  return total;
}

// The OCI outputs, each docker:// one with its push progress, mounting from the --cache-from
// cache when it is on the same registry.
Result<void> write_oci_outputs(const oci::Image& image, const std::vector<std::string>& oci_outputs,
                               const OutputOptions& output_options, const RegistryLayerCache* cache,
                               const std::shared_ptr<const std::set<oci::Digest>>& cached_blobs,
                               const BuildRequest& r) {
  for (const auto& output : oci_outputs) {
    OutputOptions this_output = output_options;
    auto ref = oci::ImageReference::parse(output);
    if (cache && ref && ref->transport == oci::Transport::Registry &&
        ref->host == cache->reference().host && ref->name != cache->reference().name) {
      this_output.mount_from = {cache->reference().name};
      this_output.mountable = cached_blobs;
    }
    std::function<void()> pushed;  // a docker:// output's, once its push is done
    if (ref && ref->transport == oci::Transport::Registry && r.push_progress)
      pushed = r.push_progress(this_output, "pushing " + output, image_bytes(image));
    ENVB_TRY(write_image_output(image, output, r.tag, this_output).context("writing " + output));
    if (pushed) pushed();
    tell(r.progress, "wrote " + output);
  }
  return ok();
}

// `squashfs:FILE`: the environment as one SquashFS image (squashfs_build.hpp).
Result<void> write_squashfs_output(const BuildRequest& r, const ImageBuildOptions& options,
                                   const std::string& file) {
  if (file.empty()) return fail(Errc::InvalidInput, "--output squashfs: needs a FILE");
  ENVB_ASSIGN_OR_RETURN(auto built, build_environment_squashfs(r.env, options, r.squashfs, file));
  if (options.progress)
    for (const auto& w : built.build.warnings) options.progress("warning: " + w);
  if (r.squashfs_written) r.squashfs_written(file, built, r.squashfs);
  return ok();
}

// The plan of request.plan: from the records when they give sizes (nothing downloaded), else
// by fetching and planning the packages.
Result<BuildResult> plan_image(const EnvironmentSpec& env, const ImageBuildOptions& options) {
  BuildResult result;
  ENVB_ASSIGN_OR_RETURN(result.build, estimate_environment_image(env, options));
  result.estimated = result.build.has_value();
  if (!result.build) {
    ENVB_ASSIGN_OR_RETURN(result.build, plan_environment_image(env, options));
  }
  return result;
}

// The SPDX SBOM of the image, attached to it as an artifact of the outputs unless the request
// says not to.
/// The image's SPDX SBOM; attached to it as an artifact (blobs in `store`) when `as_artifact`.
Result<std::string> attach_sbom(const std::string& tag, bool as_artifact, const ImageBuild& build,
                                const oci::Image& image, const oci::BlobStore& store,
                                OutputOptions& output_options) {
  SbomInfo sbom_info;
  sbom_info.name = tag;
  sbom_info.created = image.config().created;
  sbom_info.image_digest = build.manifest->digest.to_string();
  std::string sbom = spdx_sbom(build.records, sbom_info, build.wheels);
  if (as_artifact) {
    ENVB_ASSIGN_OR_RETURN(auto artifact, put_artifact(store, *build.manifest, kSpdxJson, sbom,
                                                      "sbom.spdx.json", sbom_info.created));
    output_options.artifacts.push_back(artifact);
    output_options.artifacts_store = &store;
  }
  return sbom;
}

}  // namespace

Result<BuildResult> build_image(const BuildRequest& r) {
  ImageBuildOptions options = r.options;
  ENVB_ASSIGN_OR_RETURN(std::unique_ptr<oci::Image> base, open_base(r));
  options.base = base.get();

  OutputOptions output_options = r.registry;
  output_options.progress = r.progress;
  // docker:// outputs by host, to mount from the layer caches of the same registry.
  std::vector<oci::ImageReference> registry_outputs;
  size_t squashfs_outputs = 0;
  for (const auto& output : r.outputs) {
    if (output.starts_with(kSquashfsOutput)) {
      ++squashfs_outputs;
      continue;
    }
    ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(output));
    if (ref.transport == oci::Transport::Registry) registry_outputs.push_back(ref);
  }
  warn_without_base(r);
  std::optional<oci::ImageReference> cache_to;
  if (!r.cache_to.empty()) {
    ENVB_ASSIGN_OR_RETURN(cache_to, parse_cache_reference(r.cache_to));
  }
  ENVB_ASSIGN_OR_RETURN(
      std::unique_ptr<RegistryLayerCache> cache,
      open_layer_cache(r, output_options, registry_outputs, squashfs_outputs, cache_to, options));

  if (r.plan) return plan_image(r.env, options);

  std::vector<std::string> oci_outputs;
  for (const auto& output : r.outputs) {
    if (!output.starts_with(kSquashfsOutput)) {
      oci_outputs.push_back(output);
      continue;
    }
    ENVB_TRY(write_squashfs_output(r, options, output.substr(kSquashfsOutput.size())));
  }
  BuildResult result;
  if (oci_outputs.empty() && !r.keep_image) return result;

  ENVB_ASSIGN_OR_RETURN(result.build, build_environment_image(r.env, options));
  ImageBuild& build = *result.build;
  for (const auto& w : build.warnings) tell(r.progress, "warning: " + w);
  ENVB_ASSIGN_OR_RETURN(auto image, oci::open_store_image(build.store, *build.manifest));
  if (r.keep_image) {
    result.image = std::move(image);
    return result;
  }
  ENVB_ASSIGN_OR_RETURN(result.sbom, attach_sbom(r.tag, r.sbom_artifact, build, *image,
                                                 build.store, output_options));
  std::shared_ptr<const std::set<oci::Digest>> cached_blobs;
  if (cache) {
    image = with_cache_fallback(std::move(image), *cache, build.store);
    cached_blobs = std::make_shared<const std::set<oci::Digest>>(cache->blobs());
  }
  ENVB_TRY(write_oci_outputs(*image, oci_outputs, output_options, cache.get(), cached_blobs, r));
  if (cache_to)
    ENVB_TRY(push_cache_to(*cache_to, build, image, output_options, registry_outputs, cache.get(),
                           cached_blobs, r.progress));
  if (!r.sbom_file.empty()) ENVB_TRY(common::write_file_atomic(r.sbom_file, result.sbom));
  return result;
}

Result<oci::Descriptor> write_platform_index(const std::vector<PlatformImage>& images,
                                             const IndexRequest& request) {
  if (images.empty()) return fail(Errc::Internal, "write_platform_index: no images");
  std::vector<const oci::Image*> manifests;
  for (const auto& p : images) manifests.push_back(p.image.get());
  const oci::BlobStore& store = images.front().build.store;
  ENVB_ASSIGN_OR_RETURN(auto index, put_image_index(manifests, store));
  OutputOptions output_options = request.registry;
  output_options.artifacts_store = &store;
  for (const auto& p : images) {
    ENVB_ASSIGN_OR_RETURN(const std::string sbom,
                          attach_sbom(request.tag, request.sbom_artifact, p.build, *p.image, store,
                                      output_options));
    if (!request.sbom_file.empty())
      ENVB_TRY(common::write_file_atomic(request.sbom_file + "." + p.subdir, sbom));
  }
  for (const auto& output : request.outputs) {
    ENVB_TRY(write_index_output(manifests, index, store, output, request.tag, output_options)
                 .context("writing " + output));
    if (request.progress) request.progress("wrote " + output);
  }
  return index;
}

}  // namespace envbuild::builder
