// `envbuild build -f environment.yml|--lock FILE -t NAME:TAG --output REF`: a layered,
// reproducible OCI image straight from the package cache (see builder/image_build.hpp).
// Prints the manifest digest on stdout; the layer table and progress go to stderr.

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "builder/channel.hpp"
#include "builder/cli/cli.hpp"
#include "builder/image_build.hpp"
#include "builder/image_index.hpp"
#include "builder/referrers.hpp"
#include "builder/registry_cache.hpp"
#include "builder/sbom.hpp"
#include "common/fs.hpp"
#include "conda/platform.hpp"
#include "oci/archive.hpp"
#include "oci/reference.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

struct BuildCliOptions {
  std::string file;
  std::string lock;
  std::string tag;
  std::vector<std::string> outputs;
  std::string prefix = "/opt/conda";
  std::string platform;
  size_t max_layers = 100;
  bool plan = false;
  std::string base;
  std::string entrypoint;
  std::string cmd;
  std::string workdir;
  std::string user;
  std::vector<std::string> labels;
  std::vector<std::string> annotations;
  std::string compression = "gzip";
  std::optional<int> level;
  std::string sbom;
  bool no_sbom_artifact = false;
  std::string cache_dir;
  std::vector<std::string> channels;
  std::string channel_alias = "https://conda.anaconda.org";
  bool offline = false;
  bool tls_verify = true;
  std::string cert_dir;
  std::string creds;
  std::string cache_from;
  std::string cache_to;
  bool no_link_scripts = false;
  size_t jobs = 4;
  bool quiet = false;
  /// Multi-platform builds: set, it takes each platform's image instead of writing outputs.
  std::function<Result<void>(ImageBuild&, std::unique_ptr<oci::Image>&)> collect;
};

Result<int> run_multi_platform_build(const BuildCliOptions& o);

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

Result<int> run_build(const BuildCliOptions& o) {
  if (o.file.empty() == o.lock.empty())
    return fail(Errc::InvalidInput, "give exactly one of -f/--file and --lock");
  if (o.platform.find(',') != std::string::npos) return run_multi_platform_build(o);
  if (!o.plan && o.outputs.empty() && !o.collect)
    return fail(Errc::InvalidInput,
                "give --output (oci:DIR, oci-archive:FILE, "
                "docker-archive:FILE or docker://REF), or --plan");
  const std::string subdir = o.platform.empty() ? conda::host_subdir() : o.platform;
  std::error_code ec;
  fs::path cache_root = o.cache_dir.empty() ? default_cache_root() : fs::absolute(o.cache_dir, ec);
  std::mutex out;
  auto progress = [&](const std::string& line) {
    if (o.quiet) return;
    std::lock_guard<std::mutex> lock(out);
    std::cerr << line << "\n";
  };

  EnvironmentSpec env;
  if (!o.lock.empty()) {
    ENVB_ASSIGN_OR_RETURN(env, environment_from_lock(o.lock, subdir));
  } else {
    SolveInputOptions solve;
    solve.subdir = subdir;
    solve.channels = o.channels;
    solve.channel_alias = o.channel_alias;
    solve.offline = o.offline;
    solve.repodata_cache = cache_root / "repodata";
    solve.packages.root = cache_root;
    solve.packages.offline = o.offline;
    solve.packages.jobs = std::max<size_t>(o.jobs, 4);
    ENVB_ASSIGN_OR_RETURN(env, environment_from_file(o.file, solve));
  }

  ImageBuildOptions options;
  options.prefix = o.prefix;
  options.subdir = subdir;
  options.max_layers = o.max_layers;
  if (o.compression == "gzip") {
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
  if (!o.lock.empty()) {
    ChannelOptions channel_options;
    channel_options.alias = o.channel_alias;
    options.packages.credentialed_channels = credentialed_base_urls(o.channels, channel_options);
  }
  options.packages.offline = o.offline;
  options.packages.jobs = std::max<size_t>(o.jobs, 4);
  options.image_name = o.tag;
  options.link_scripts = o.no_link_scripts ? LinkScripts::Skip : LinkScripts::Run;
  options.jobs = o.jobs;
  options.progress = progress;
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
  std::unique_ptr<oci::Image> base;
  if (!o.base.empty()) {
    ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(o.base));
    oci::OpenOptions open;
    open.scratch_dir = cache_root / "tmp";
    ENVB_TRY(common::make_dirs(open.scratch_dir));
    ENVB_ASSIGN_OR_RETURN(auto platform, oci_platform_for_subdir(subdir));
    open.platform = platform;
    if (ref.transport == oci::Transport::Registry) {
      // Only the image for this platform, every blob verified, into the cache's store (blobs
      // already there are not downloaded again).
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
    options.base = base.get();
  }

  ENVB_ASSIGN_OR_RETURN(OutputOptions output_options, output_options_for(o, cache_root));
  output_options.progress = progress;
  // docker:// outputs by host, to mount from the layer caches of the same registry.
  std::vector<oci::ImageReference> registry_outputs;
  for (const auto& output : o.outputs) {
    ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(output));
    if (ref.transport == oci::Transport::Registry) registry_outputs.push_back(ref);
  }
  std::optional<oci::ImageReference> cache_to;
  if (!o.cache_to.empty()) {
    ENVB_ASSIGN_OR_RETURN(cache_to, parse_cache_reference(o.cache_to));
  }
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
    bool all_there = registry_outputs.size() == o.outputs.size();
    for (const auto& out_ref : registry_outputs) all_there = all_there && out_ref.host == ref.host;
    if (cache_to) all_there = all_there && cache_to->host == ref.host;
    options.fetch_cached_layers = !all_there;
  }

  if (o.plan) {
    ENVB_ASSIGN_OR_RETURN(auto plan, plan_environment_image(env, options));
    std::cout << format_layer_table(plan);
    std::printf("%zu packages in %zu layers (+%zu base layers), budget %zu\n", plan.records.size(),
                plan.layers.size(), plan.base_layers, o.max_layers);
    return 0;
  }

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
  for (const auto& output : o.outputs) {
    OutputOptions this_output = output_options;
    auto ref = oci::ImageReference::parse(output);
    if (cache && ref && ref->transport == oci::Transport::Registry &&
        ref->host == cache->reference().host && ref->name != cache->reference().name) {
      this_output.mount_from = {cache->reference().name};
      this_output.mountable = cached_blobs;
    }
    ENVB_TRY(write_image_output(*image, output, o.tag, this_output).context("writing " + output));
    progress("wrote " + output);
  }
  if (cache_to) {
    auto registry = registry_options(output_options);
    // Mount from what was just pushed to the same registry, else from the layer cache there.
    for (const auto& out_ref : registry_outputs)
      if (out_ref.host == cache_to->host && out_ref.name != cache_to->name)
        registry.mount_from.push_back(out_ref.name);
    if (registry.mount_from.empty() && cache && cache->reference().host == cache_to->host &&
        cache->reference().name != cache_to->name) {
      registry.mount_from.push_back(cache->reference().name);
      registry.mountable = cached_blobs;
    }
    ENVB_ASSIGN_OR_RETURN(auto pushed,
                          push_layer_cache(
                              cache_entries_of(build, *image),
                              [&image](const oci::Descriptor& d) { return image->open_blob(d); },
                              *cache_to, registry));
    for (const auto& line : cache_push_lines(cache_to->to_string(), pushed)) progress(line);
  }
  if (!o.sbom.empty()) ENVB_TRY(common::write_file_atomic(o.sbom, sbom));
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
  std::cout << build.manifest->digest.to_string() << "\n";
  return 0;
}

// --platform A,B: each platform solved and built on its own (same cache), then one image index
// over the images, each with its SBOM attached; --sbom FILE writes FILE.<platform> per platform.
Result<int> run_multi_platform_build(const BuildCliOptions& o) {
  std::vector<std::string> subdirs;
  for (size_t i = 0; i <= o.platform.size();) {
    size_t j = std::min(o.platform.find(',', i), o.platform.size());
    std::string s = o.platform.substr(i, j - i);
    if (s.empty()) return fail(Errc::InvalidInput, "--platform '" + o.platform + "': empty entry");
    if (std::find(subdirs.begin(), subdirs.end(), s) == subdirs.end()) subdirs.push_back(s);
    i = j + 1;
  }
  if (!o.plan && o.outputs.empty())
    return fail(Errc::InvalidInput,
                "give --output (oci:DIR, oci-archive:FILE or docker://REF), "
                "or --plan");
  struct Built {
    std::string subdir;
    ImageBuild build;
    std::unique_ptr<oci::Image> image;
  };
  std::vector<Built> built;
  for (const auto& subdir : subdirs) {
    BuildCliOptions one = o;
    one.platform = subdir;
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
  std::error_code ec;
  fs::path cache_root = o.cache_dir.empty() ? default_cache_root() : fs::absolute(o.cache_dir, ec);
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
  std::cout << index.digest.to_string() << "\n";
  return 0;
}

}  // namespace

void register_build(CLI::App& app, Outcome& outcome) {
  auto o = std::make_shared<BuildCliOptions>();
  CLI::App* cmd = app.add_subcommand("build", "Build a layered OCI image of a conda environment");
  cmd->add_option("-f,--file", o->file, "environment.yml (solved)");
  cmd->add_option("--lock", o->lock, "conda-lock.yml or @EXPLICIT file (no solve)");
  cmd->add_option("-t,--tag", o->tag, "image name, NAME[:TAG]")->required();
  cmd->add_option("-o,--output", o->outputs,
                  "oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE[:NAME:TAG], docker://REF "
                  "(repeatable)");
  cmd->add_option("--prefix", o->prefix, "environment prefix in the image (default /opt/conda)");
  cmd->add_option("--platform", o->platform,
                  "conda platform (default: this host's); several, comma-separated, give an "
                  "image index (linux-64,linux-aarch64)");
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
  cmd->add_option("--compression", o->compression, "gzip (default) or zstd");
  cmd->add_option("--level", o->level, "compression level");
  cmd->add_option("--sbom", o->sbom, "write an SPDX 2.3 JSON SBOM of the packages to FILE");
  cmd->add_flag("--no-sbom-artifact", o->no_sbom_artifact,
                "do not attach the SBOM to the image (an OCI artifact whose subject is the image)");
  cmd->add_option("--cache-dir", o->cache_dir,
                  "cache root: packages, repodata/, layers/, oci/ (default ~/.cache/envbuild)");
  cmd->add_option("-c,--channel", o->channels, "channels (replace the file's)");
  cmd->add_option("--channel-alias", o->channel_alias, "base URL for channel names");
  cmd->add_flag("--offline", o->offline, "use only cached repodata and packages");
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
  cmd->callback([o, &outcome] { outcome.result = run_build(*o); });
}

}  // namespace envbuild::builder::cli
