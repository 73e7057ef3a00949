// `envbuild build -f environment.yml|--lock FILE -t NAME:TAG --output REF`: a layered,
// reproducible OCI image straight from the package cache (see builder/image/image_build.hpp).
// Prints the manifest digest on stdout; the layer table and progress go to stderr.

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/cli/progress.hpp"
#include "builder/cli/settings.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/image/image_build.hpp"
#include "builder/image/image_index.hpp"
#include "builder/image/referrers.hpp"
#include "builder/image/registry_cache.hpp"
#include "builder/image/sbom.hpp"
#include "builder/image/squashfs_build.hpp"
#include "builder/install/cache.hpp"
#include "builder/solve/channel.hpp"
#include "common/format.hpp"
#include "common/fs.hpp"
#include "conda/platform.hpp"
#include "oci/archive.hpp"
#include "oci/reference.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

struct BuildCliOptions {
  SolveCliOptions solve;  // platforms: several give an image index
  std::string lock;
  std::string lock_environment = "default";  // a pixi.lock's --environment
  std::string tag;
  std::vector<std::string> outputs;
  std::string prefix = "/opt/conda";
  size_t max_layers = 100;
  bool plan = false;
  std::string base;
  std::string entrypoint;
  std::string cmd;
  std::string workdir;
  std::string user;
  std::vector<std::string> labels;
  std::vector<std::string> annotations;
  std::string compression;  // "": gzip for OCI layers, zstd for squashfs: outputs
  std::optional<int> level;
  std::string sbom;
  bool no_sbom_artifact = false;
  bool tls_verify = true;
  std::string cert_dir;
  std::string creds;
  std::string cache_from;
  std::string cache_to;
  bool no_link_scripts = false;
  size_t jobs = 4;
  bool quiet = false;
  bool json = false;  // stdout: build_json() instead of the digest
  /// Multi-platform builds: set, it takes each platform's image instead of writing outputs.
  std::function<Result<void>(ImageBuild&, std::unique_ptr<oci::Image>&)> collect;
};

Result<int> run_multi_platform_build(const BuildCliOptions& o,
                                     const std::vector<std::string>& subdirs);

Result<std::pair<std::string, std::string>> key_value(const std::string& text,
                                                      const std::string& option) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return fail(Errc::InvalidInput, option + " '" + text + "' is not KEY=VALUE");
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

// A JSON array ('["python","-c","1"]') or words split on spaces ("python -c 1").
Result<std::vector<std::string>> argv_of(const std::string& text, const std::string& option) {
  if (!text.empty() && text.front() == '[') {
    try {
      return nlohmann::json::parse(text).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      return fail(Errc::InvalidInput, option + ": not a JSON array of strings: " + e.what());
    }
  }
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

/// Where outputs are staged and how registries (outputs, base, layer caches) are reached.
Result<OutputOptions> output_options_for(const BuildCliOptions& o, const fs::path& cache_root) {
  OutputOptions options;
  options.scratch_dir = cache_root / "tmp";
  options.tls_verify = o.tls_verify;
  options.cert_dir = o.cert_dir;
  if (!o.creds.empty()) {
    ENVB_ASSIGN_OR_RETURN(options.credentials, oci::registry::parse_creds(o.creds));
  }
  return options;
}

/// `--output squashfs:FILE`: the environment as one SquashFS image
/// (builder/image/squashfs_build.hpp); its sha256 goes to stdout when it is the only output.
Result<void> write_squashfs_output(const EnvironmentSpec& env, const ImageBuildOptions& options,
                                   const BuildCliOptions& o, const std::string& file) {
  if (file.empty()) return fail(Errc::InvalidInput, "--output squashfs: needs a FILE");
  SquashfsOutputOptions output;
  if (!o.compression.empty()) {
    ENVB_ASSIGN_OR_RETURN(output.compression, squashfs::parse_compression(o.compression));
  }
  output.level = o.level;
  ENVB_ASSIGN_OR_RETURN(auto built, build_environment_squashfs(env, options, output, file));
  if (options.progress)
    for (const auto& w : built.build.warnings) options.progress("warning: " + w);
  if (!o.quiet)
    std::fprintf(stderr,
                 "wrote squashfs:%s: %zu packages, %llu files, %llu directories, %llu symlinks, "
                 "%s (%s, %llu bytes of content) (fetch %.0f ms, plan %.0f ms, write %.0f ms)\n",
                 file.c_str(), built.build.records.size(),
                 static_cast<unsigned long long>(built.written.files),
                 static_cast<unsigned long long>(built.written.directories),
                 static_cast<unsigned long long>(built.written.symlinks),
                 human_bytes(built.written.size).c_str(),
                 std::string(squashfs::to_string(output.compression)).c_str(),
                 static_cast<unsigned long long>(built.written.content_bytes), built.build.fetch_ms,
                 built.build.plan_ms, built.write_ms);
  if (o.outputs.size() == 1) std::cout << "sha256:" << built.sha256 << "\n";
  return ok();
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

// The bytes of an image's blobs (config and layers): what a push sends at most.
uint64_t image_bytes(const oci::Image& image) {
  uint64_t total = static_cast<uint64_t>(image.manifest().config.size);
  for (const auto& layer : image.manifest().layers) total += static_cast<uint64_t>(layer.size);
  return total;
}

// An image without --base holds the environment alone: no libc, no shell. envrun brings what
// it needs, but `docker load` + `docker run` of a docker-archive fails with "no such file or
// directory", so say it when an output is meant for Docker or Podman.
void warn_without_base(const BuildCliOptions& o) {
  if (!o.base.empty() || o.quiet) return;
  for (const auto& output : o.outputs)
    if (output.starts_with("docker-archive:")) {
      std::cerr << "warning: " << output
                << " has no base image, so no libc or shell: docker run and podman run "
                   "cannot start its programs (envrun can)\n"
                   "hint: give a base with the libc the packages need, e.g. --base "
                   "docker://docker.io/library/debian:12-slim\n";
      return;
    }
}

// What build --json (and build --plan --json) prints: the image digest (null for a plan), the
// layers bottom first with their packages, and the outputs written.
nlohmann::json build_json(const ImageBuild& build, const std::vector<std::string>& outputs) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : build.layers) {
    nlohmann::json packages = nlohmann::json::array();
    for (size_t i : layer.packages)
      packages.push_back({{"name", build.records[i].name},
                          {"version", build.records[i].version.to_string()},
                          {"build", build.records[i].build},
                          {"channel", build.records[i].channel}});
    nlohmann::json entry = {{"packages", packages}, {"size", layer.size}, {"reason", layer.reason}};
    if (layer.info) {
      entry["digest"] = layer.info->descriptor.digest.to_string();
      entry["compressed_size"] = layer.info->descriptor.size;
      entry["reused"] = layer.reused;
    }
    layers.push_back(std::move(entry));
  }
  return {{"digest", build.manifest ? nlohmann::json(build.manifest->digest.to_string())
                                    : nlohmann::json(nullptr)},
          {"platform", build.platform.to_string()},
          {"packages", build.records.size()},
          {"base_layers", build.base_layers},
          {"layers", layers},
          {"requirements", build.requirements},
          {"outputs", outputs}};
}

// build --plan: from the records when they give sizes (nothing downloaded), else by fetching
// and planning the packages.
Result<int> print_plan(const EnvironmentSpec& env, const ImageBuildOptions& options,
                       const BuildCliOptions& o) {
  ENVB_ASSIGN_OR_RETURN(std::optional<ImageBuild> plan, estimate_environment_image(env, options));
  const bool estimated = plan.has_value();
  if (!plan) {
    ENVB_ASSIGN_OR_RETURN(plan, plan_environment_image(env, options));
  }
  if (o.json) {
    nlohmann::json out = build_json(*plan, {});
    out["sizes"] = estimated ? "download" : "installed";
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << format_layer_table(*plan);
  std::printf(
      "%zu packages in %zu layers (+%zu base layers), budget %zu%s\n", plan->records.size(),
      plan->layers.size(), plan->base_layers, o.max_layers,
      estimated ? "; sizes are the repodata's download sizes (nothing was downloaded)" : "");
  return 0;
}

using Progress = std::function<void(const std::string&)>;

// The environment to build: a lock file's, else the solve of -f/specs for `subdir`.
Result<EnvironmentSpec> read_environment(const BuildCliOptions& o, const std::string& subdir,
                                         const EffectiveSettings& settings,
                                         const fs::path& cache_root) {
  EnvironmentSpec env;
  if (!o.lock.empty()) {
    ENVB_ASSIGN_OR_RETURN(env, environment_from_lock(o.lock, subdir, o.lock_environment));
  } else {
    SolveCliOptions one = o.solve;
    one.platforms = {subdir};
    ENVB_ASSIGN_OR_RETURN(EnvironmentRequest request,
                          to_environment_request(one, settings, cache_root));
    request.packages.jobs = std::max<size_t>(o.jobs, 4);
    ENVB_ASSIGN_OR_RETURN(auto solutions, solve_environment(request.solve).context("solving"));
    ENVB_ASSIGN_OR_RETURN(env, environment_of(request, solutions.front()));
  }
  return env;
}

// The image build's options from the command line's (all but --base and --cache-from).
Result<ImageBuildOptions> image_options_of(const BuildCliOptions& o, const std::string& subdir,
                                           const EffectiveSettings& settings,
                                           const fs::path& cache_root, const EnvironmentSpec& env,
                                           FetchProgress& fetch_progress) {
  ImageBuildOptions options;
  options.prefix = o.prefix;
  options.subdir = subdir;
  options.max_layers = o.max_layers;
  if (o.compression.empty() || o.compression == "gzip") {
    options.compression = oci::Compression::Gzip;
  } else if (o.compression == "zstd") {
    options.compression = oci::Compression::Zstd;
  } else {
    return fail(Errc::InvalidInput, "--compression must be gzip or zstd, not " + o.compression);
  }
  options.level = o.level;
  options.cache_root = cache_root;
  options.packages.root = cache_root;
  // A lock holds redacted URLs: -c URLs with credentials supply them.
  options.packages.credentialed_channels = env.credentialed_channels;
  apply_fetch_settings(settings, options.packages);
  if (!o.lock.empty())
    options.packages.credentialed_channels =
        credentialed_base_urls(o.solve.channels, settings.channel_options);
  fetch_progress.attach(options.packages);
  options.packages.jobs = std::max<size_t>(o.jobs, 4);
  options.image_name = o.tag;
  options.link_scripts = o.no_link_scripts ? LinkScripts::Skip : LinkScripts::Run;
  options.jobs = o.jobs;
  options.progress = [&fetch_progress](const std::string& line) { fetch_progress.line(line); };
  if (!o.entrypoint.empty()) {
    ENVB_ASSIGN_OR_RETURN(options.config.entrypoint, argv_of(o.entrypoint, "--entrypoint"));
  }
  if (!o.cmd.empty()) {
    ENVB_ASSIGN_OR_RETURN(options.config.cmd, argv_of(o.cmd, "--cmd"));
  }
  if (!o.workdir.empty()) options.config.working_dir = o.workdir;
  if (!o.user.empty()) options.config.user = o.user;
  for (const auto& l : o.labels) {
    ENVB_ASSIGN_OR_RETURN(auto kv, key_value(l, "--label"));
    options.config.labels[kv.first] = kv.second;
  }
  for (const auto& a : o.annotations) {
    ENVB_ASSIGN_OR_RETURN(auto kv, key_value(a, "--annotation"));
    options.annotations[kv.first] = kv.second;
  }
  return options;
}

// --base: a registry's image for this platform is pulled into the cache's store (every blob
// verified, those already there not downloaded again); any other is opened where it is.
Result<std::unique_ptr<oci::Image>> open_base(const BuildCliOptions& o, const std::string& subdir,
                                              const fs::path& cache_root,
                                              const Progress& progress) {
  std::unique_ptr<oci::Image> base;
  if (o.base.empty()) return base;
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(o.base));
  oci::OpenOptions open;
  open.scratch_dir = cache_root / "tmp";
  ENVB_TRY(common::make_dirs(open.scratch_dir));
  ENVB_ASSIGN_OR_RETURN(auto platform, oci_platform_for_subdir(subdir));
  open.platform = platform;
  if (ref.transport == oci::Transport::Registry) {
    ENVB_ASSIGN_OR_RETURN(OutputOptions registry, output_options_for(o, cache_root));
    oci::BlobStore store(cache_root / "oci");
    ENVB_ASSIGN_OR_RETURN(auto pulled,
                          oci::registry::pull(ref, platform, store, registry_options(registry))
                              .context("pulling base " + o.base));
    progress("base " + ref.to_string() + ": " + pulled.manifest.digest.short_string() + ", " +
             std::to_string(pulled.uploaded) + " blobs downloaded, " +
             std::to_string(pulled.existed) + " cached");
    ENVB_ASSIGN_OR_RETURN(
        base, oci::open_store_image(store, pulled.manifest).context("opening base " + o.base));
  } else {
    ENVB_ASSIGN_OR_RETURN(base, oci::open_image(ref, open).context("opening base " + o.base));
  }
  return base;
}

// --cache-from: the registry's layer cache, which the build takes layers from.
Result<std::unique_ptr<RegistryLayerCache>> open_layer_cache(
    const BuildCliOptions& o, const OutputOptions& output_options,
    const std::vector<oci::ImageReference>& registry_outputs, size_t squashfs_outputs,
    const std::optional<oci::ImageReference>& cache_to, ImageBuildOptions& options,
    const Progress& progress) {
  std::unique_ptr<RegistryLayerCache> cache;
  if (!o.cache_from.empty() && !o.plan) {
    ENVB_ASSIGN_OR_RETURN(auto ref, parse_cache_reference(o.cache_from));
    ENVB_ASSIGN_OR_RETURN(cache, RegistryLayerCache::open(ref, registry_options(output_options)));
    progress("layer cache " + ref.to_string() + ": " + std::to_string(cache->keys()) + " layers, " +
             std::to_string(cache->blobs().size()) + " blobs in " +
             std::to_string(cache->manifests()) + " manifests");
    options.cache_from = cache.get();
    // Cached layers stay in the registry only when everything the image goes to is on that
    // registry (and mounts them); a local output needs their bytes here.
    bool all_there = registry_outputs.size() == o.outputs.size() - squashfs_outputs;
    for (const auto& out_ref : registry_outputs) all_there = all_there && out_ref.host == ref.host;
    if (cache_to) all_there = all_there && cache_to->host == ref.host;
    options.fetch_cached_layers = !all_there;
  }
  return cache;
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
  for (const auto& line : cache_push_lines(cache_to.to_string(), pushed)) progress(line);
  return ok();
}

// The OCI outputs, each docker:// one with its push progress, mounting from the --cache-from
// cache when it is on the same registry.
Result<void> write_oci_outputs(const oci::Image& image, const std::vector<std::string>& oci_outputs,
                               const OutputOptions& output_options, const RegistryLayerCache* cache,
                               const std::shared_ptr<const std::set<oci::Digest>>& cached_blobs,
                               const BuildCliOptions& o, const Progress& progress) {
  for (const auto& output : oci_outputs) {
    OutputOptions this_output = output_options;
    auto ref = oci::ImageReference::parse(output);
    if (cache && ref && ref->transport == oci::Transport::Registry &&
        ref->host == cache->reference().host && ref->name != cache->reference().name) {
      this_output.mount_from = {cache->reference().name};
      this_output.mountable = cached_blobs;
    }
    std::shared_ptr<common::TransferProgress> push;  // a docker:// output's, for its push
    if (ref && ref->transport == oci::Transport::Registry) {
      push = attach_push_progress(this_output.on_bytes, this_output.on_blob, "pushing " + output,
                                  image_bytes(image), o.quiet);
      if (push) this_output.progress = [&push](const std::string& line) { push->line(line); };
    }
    ENVB_TRY(write_image_output(image, output, o.tag, this_output).context("writing " + output));
    if (push) push->finish();
    progress("wrote " + output);
  }
  return ok();
}

// The layer table and timings (stderr, unless --quiet), then the digest or --json (stdout).
void print_build(const ImageBuild& build, const BuildCliOptions& o) {
  if (!o.quiet) {
    std::cerr << format_layer_table(build);
    std::fprintf(
        stderr,
        "built %s: %zu packages (%zu plans cached, %zu staged), %zu layers (%zu written, %zu "
        "reused%s, +%zu base) (fetch %.0f ms, plan %.0f ms, layers %.0f ms)\n",
        o.tag.c_str(), build.records.size(), build.plans_cached, build.plans_staged,
        build.layers.size(), build.layers_written, build.layers_reused,
        build.layers_from_registry
            ? (" (" + std::to_string(build.layers_from_registry) + " from the registry)").c_str()
            : "",
        build.base_layers, build.fetch_ms, build.plan_ms, build.layers_ms);
  }
  if (o.json) {
    std::cout << build_json(build, o.outputs).dump(2) << "\n";
  } else {
    std::cout << build.manifest->digest.to_string() << "\n";
  }
}

Result<int> run_build(const BuildCliOptions& o) {
  if (!o.lock.empty() && (!o.solve.file.empty() || !o.solve.specs.empty()))
    return fail(Errc::InvalidInput, "give --lock, or -f/specs, not both");
  const std::vector<std::string> platforms = split_commas(o.solve.platforms);
  if (platforms.size() > 1) return run_multi_platform_build(o, platforms);
  if (!o.plan && o.outputs.empty() && !o.collect)
    return fail(Errc::InvalidInput,
                "give --output (oci:DIR, oci-archive:FILE, "
                "docker-archive:FILE, docker://REF or squashfs:FILE), or --plan");
  const std::string subdir = platforms.empty() ? conda::host_subdir() : platforms.front();
  ENVB_ASSIGN_OR_RETURN(CacheLease cache_lease, open_cache(o.solve.cache_dir));
  const fs::path& cache_root = cache_lease.root();
  ENVB_ASSIGN_OR_RETURN(EffectiveSettings settings, effective_settings(o.solve));
  ENVB_ASSIGN_OR_RETURN(EnvironmentSpec env, read_environment(o, subdir, settings, cache_root));

  // Every progress line goes above the download status line (a terminal's).
  FetchProgress fetch_progress(env.records, env.wheels.size(), o.quiet);
  auto progress = [&](const std::string& line) { fetch_progress.line(line); };

  ENVB_ASSIGN_OR_RETURN(ImageBuildOptions options,
                        image_options_of(o, subdir, settings, cache_root, env, fetch_progress));
  ENVB_ASSIGN_OR_RETURN(std::unique_ptr<oci::Image> base,
                        open_base(o, subdir, cache_root, progress));
  options.base = base.get();

  ENVB_ASSIGN_OR_RETURN(OutputOptions output_options, output_options_for(o, cache_root));
  output_options.progress = progress;
  // docker:// outputs by host, to mount from the layer caches of the same registry.
  std::vector<oci::ImageReference> registry_outputs;
  size_t squashfs_outputs = 0;
  for (const auto& output : o.outputs) {
    if (output.starts_with(kSquashfsOutput)) {
      ++squashfs_outputs;
      continue;
    }
    ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(output));
    if (ref.transport == oci::Transport::Registry) registry_outputs.push_back(ref);
  }
  warn_without_base(o);
  std::optional<oci::ImageReference> cache_to;
  if (!o.cache_to.empty()) {
    ENVB_ASSIGN_OR_RETURN(cache_to, parse_cache_reference(o.cache_to));
  }
  ENVB_ASSIGN_OR_RETURN(std::unique_ptr<RegistryLayerCache> cache,
                        open_layer_cache(o, output_options, registry_outputs, squashfs_outputs,
                                         cache_to, options, progress));

  if (o.plan) return print_plan(env, options, o);

  std::vector<std::string> oci_outputs;
  for (const auto& output : o.outputs) {
    if (!output.starts_with(kSquashfsOutput)) {
      oci_outputs.push_back(output);
      continue;
    }
    ENVB_TRY(write_squashfs_output(env, options, o, output.substr(kSquashfsOutput.size())));
  }
  if (oci_outputs.empty() && !o.collect) return 0;

  ENVB_ASSIGN_OR_RETURN(auto build, build_environment_image(env, options));
  for (const auto& w : build.warnings) progress("warning: " + w);
  ENVB_ASSIGN_OR_RETURN(auto image, oci::open_store_image(build.store, *build.manifest));
  if (o.collect) {
    ENVB_TRY(o.collect(build, image));
    return 0;
  }
  SbomInfo sbom_info;
  sbom_info.name = o.tag;
  sbom_info.created = image->config().created;
  sbom_info.image_digest = build.manifest->digest.to_string();
  const std::string sbom = spdx_sbom(build.records, sbom_info, build.wheels);
  if (!o.no_sbom_artifact) {
    ENVB_ASSIGN_OR_RETURN(auto artifact, put_artifact(build.store, *build.manifest, kSpdxJson, sbom,
                                                      "sbom.spdx.json", sbom_info.created));
    output_options.artifacts.push_back(artifact);
    output_options.artifacts_store = &build.store;
  }
  std::shared_ptr<const std::set<oci::Digest>> cached_blobs;
  if (cache) {
    image = with_cache_fallback(std::move(image), *cache, build.store);
    cached_blobs = std::make_shared<const std::set<oci::Digest>>(cache->blobs());
  }
  ENVB_TRY(write_oci_outputs(*image, oci_outputs, output_options, cache.get(), cached_blobs, o,
                             progress));
  if (cache_to)
    ENVB_TRY(push_cache_to(*cache_to, build, image, output_options, registry_outputs, cache.get(),
                           cached_blobs, progress));
  if (!o.sbom.empty()) ENVB_TRY(common::write_file_atomic(o.sbom, sbom));
  print_build(build, o);
  return 0;
}

// --platform A,B: each platform solved and built on its own (same cache), then one image index
// over the images, each with its SBOM attached; --sbom FILE writes FILE.<platform> per platform.
Result<int> run_multi_platform_build(const BuildCliOptions& o,
                                     const std::vector<std::string>& subdirs) {
  if (!o.plan && o.outputs.empty())
    return fail(Errc::InvalidInput,
                "give --output (oci:DIR, oci-archive:FILE or docker://REF), "
                "or --plan");
  for (const auto& output : o.outputs)
    if (output.starts_with(kSquashfsOutput))
      return fail(Errc::InvalidInput, "a squashfs: output holds one platform, not several");
  struct Built {
    std::string subdir;
    ImageBuild build;
    std::unique_ptr<oci::Image> image;
  };
  std::vector<Built> built;
  for (const auto& subdir : subdirs) {
    BuildCliOptions one = o;
    one.solve.platforms = {subdir};
    one.outputs.clear();
    one.sbom.clear();
    one.collect = [&](ImageBuild& build, std::unique_ptr<oci::Image>& image) -> Result<void> {
      built.push_back({subdir, std::move(build), std::move(image)});
      return ok();
    };
    if (o.plan && !o.quiet) std::cout << "platform " << subdir << ":\n";
    ENVB_ASSIGN_OR_RETURN(int rc, run_build(one).context("platform " + subdir));
    if (rc != 0) return rc;
  }
  if (o.plan) return 0;
  std::vector<const oci::Image*> images;
  for (const auto& b : built) images.push_back(b.image.get());
  const oci::BlobStore& store = built.front().build.store;
  ENVB_ASSIGN_OR_RETURN(auto index, put_image_index(images, store));
  ENVB_ASSIGN_OR_RETURN(CacheLease cache_lease, open_cache(o.solve.cache_dir));
  const fs::path& cache_root = cache_lease.root();
  ENVB_ASSIGN_OR_RETURN(OutputOptions output_options, output_options_for(o, cache_root));
  output_options.artifacts_store = &store;
  for (const auto& b : built) {
    SbomInfo info;
    info.name = o.tag;
    info.created = b.image->config().created;
    info.image_digest = b.build.manifest->digest.to_string();
    const std::string sbom = spdx_sbom(b.build.records, info, b.build.wheels);
    if (!o.no_sbom_artifact) {
      oci::Descriptor subject = *b.build.manifest;
      ENVB_ASSIGN_OR_RETURN(auto artifact, put_artifact(store, subject, kSpdxJson, sbom,
                                                        "sbom.spdx.json", info.created));
      output_options.artifacts.push_back(artifact);
    }
    if (!o.sbom.empty()) ENVB_TRY(common::write_file_atomic(o.sbom + "." + b.subdir, sbom));
  }
  for (const auto& output : o.outputs) {
    ENVB_TRY(write_index_output(images, index, store, output, o.tag, output_options)
                 .context("writing " + output));
    if (!o.quiet) std::cerr << "wrote " << output << "\n";
  }
  if (!o.quiet)
    for (const auto& b : built)
      std::fprintf(stderr, "%s: %s, %zu packages, %zu layers (%zu written, %zu reused)\n",
                   b.subdir.c_str(), b.build.manifest->digest.to_string().c_str(),
                   b.build.records.size(), b.build.layers.size(), b.build.layers_written,
                   b.build.layers_reused);
  if (o.json) {
    nlohmann::json images = nlohmann::json::array();
    for (const auto& b : built) images.push_back(build_json(b.build, {}));
    std::cout << nlohmann::json{{"digest", index.digest.to_string()},
                                {"images", images},
                                {"outputs", o.outputs}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << index.digest.to_string() << "\n";
  }
  return 0;
}

}  // namespace

void register_build(CLI::App& app, Outcome& outcome) {
  auto o = std::make_shared<BuildCliOptions>();
  CLI::App* cmd = app.add_subcommand("build", "Build a layered OCI image of a conda environment");
  add_solve_options(cmd, o->solve, PositionalSpecs::Yes, PlatformShortFlag::No);
  cmd->add_option("--lock", o->lock, "conda-lock.yml, @EXPLICIT file or pixi.lock (no solve)");
  cmd->add_option("--environment", o->lock_environment,
                  "the environment of a pixi.lock to use (default: default)");
  cmd->add_option("-t,--tag", o->tag, "image name, NAME[:TAG]")->required();
  cmd->add_option("-o,--output", o->outputs,
                  "oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE[:NAME:TAG], docker://REF, "
                  "or squashfs:FILE (one SquashFS image of the prefix, for envrun) (repeatable)");
  cmd->add_option("--prefix", o->prefix, "environment prefix in the image (default /opt/conda)");
  cmd->add_option("--max-layers", o->max_layers, "layer budget, base layers included (100)");
  cmd->add_flag("--plan", o->plan, "print the layer plan and stop");
  cmd->add_option("--base", o->base,
                  "base image: oci:DIR[:TAG], oci-archive:F, docker-archive:F or docker://REF "
                  "(only the --platform image of an index is pulled)");
  cmd->add_option("--entrypoint", o->entrypoint, "JSON array or space-separated words");
  cmd->add_option("--cmd", o->cmd, "JSON array or space-separated words");
  cmd->add_option("--workdir", o->workdir, "working directory");
  cmd->add_option("--user", o->user, "user[:group]");
  cmd->add_option("--label", o->labels, "config label KEY=VALUE (repeatable)");
  cmd->add_option("--annotation", o->annotations, "manifest annotation KEY=VALUE (repeatable)");
  cmd->add_option("--compression", o->compression,
                  "gzip or zstd (default: gzip for OCI layers, zstd for squashfs:)");
  cmd->add_option("--level", o->level, "compression level");
  cmd->add_option("--sbom", o->sbom, "write an SPDX 2.3 JSON SBOM of the packages to FILE");
  cmd->add_flag("--no-sbom-artifact", o->no_sbom_artifact,
                "do not attach the SBOM to the image (an OCI artifact whose subject is the image)");
  cmd->add_option("--tls-verify", o->tls_verify,
                  "registries (outputs, caches, base): verify TLS (false: also plain http)")
      ->default_str("true");
  cmd->add_option("--cert-dir", o->cert_dir, "docker:// outputs: CA and client certificates");
  cmd->add_option("--creds", o->creds,
                  "USERNAME:PASSWORD for the registries (outputs, caches, base; default: "
                  "podman/docker stored logins)");
  cmd->add_option("--cache-from", o->cache_from,
                  "docker://HOST/REPO[:TAG]: a registry layer cache (see --cache-to); layers "
                  "it knows are not built, and are mounted, not uploaded, to that registry");
  cmd->add_option("--cache-to", o->cache_to,
                  "docker://HOST/REPO[:TAG]: push the image's layers and their keys there, in "
                  "a manifest tagged TAG-<digest> (TAG default envbuild-cache), for later "
                  "--cache-from");
  cmd->add_flag("--no-link-scripts", o->no_link_scripts,
                "do not warn about link scripts (they are recorded, never run, in images)");
  cmd->add_option("-j,--jobs", o->jobs, "parallel planning and compression (default 4)");
  cmd->add_flag("-q,--quiet", o->quiet, "no progress or table");
  cmd->add_flag("--json", o->json,
                "print the digest, layers (with their packages) and outputs as JSON on stdout");
  cmd->callback([o, &outcome] { outcome.result = run_build(*o); });
}

}  // namespace envbuild::builder::cli
