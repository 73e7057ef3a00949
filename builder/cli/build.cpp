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
#include "builder/image/build_request.hpp"
#include "builder/image/image_build.hpp"
#include "builder/image/image_index.hpp"
#include "builder/image/referrers.hpp"
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

/// `--output squashfs:FILE` written: its line (stderr, unless --quiet), and its sha256 on stdout
/// when it is the only output.
void print_squashfs(const std::string& file, const SquashfsBuild& built,
                    const SquashfsOutputOptions& output, const BuildCliOptions& o) {
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

// build --plan: the plan as a table, or as JSON.
int print_plan(const ImageBuild& plan, bool estimated, const BuildCliOptions& o) {
  if (o.json) {
    nlohmann::json out = build_json(plan, {});
    out["sizes"] = estimated ? "download" : "installed";
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << format_layer_table(plan);
  std::printf(
      "%zu packages in %zu layers (+%zu base layers), budget %zu%s\n", plan.records.size(),
      plan.layers.size(), plan.base_layers, o.max_layers,
      estimated ? "; sizes are the repodata's download sizes (nothing was downloaded)" : "");
  return 0;
}

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

using Progress = std::function<void(const std::string&)>;

// The library's request for what the command line asks of one platform (builder/image/
// build_request.hpp): pushes and squashfs: outputs report through this command's printing.
Result<BuildRequest> build_request_of(const BuildCliOptions& o, EnvironmentSpec env,
                                      ImageBuildOptions options, const fs::path& cache_root,
                                      const Progress& progress) {
  BuildRequest request;
  ENVB_ASSIGN_OR_RETURN(request.registry, output_options_for(o, cache_root));
  // image_options_of() took only gzip or zstd, which squashfs: outputs read the same way.
  if (!o.compression.empty()) {
    ENVB_ASSIGN_OR_RETURN(request.squashfs.compression, squashfs::parse_compression(o.compression));
  }
  request.squashfs.level = o.level;
  request.env = std::move(env);
  request.options = std::move(options);
  request.tag = o.tag;
  request.outputs = o.outputs;
  request.base = o.base;
  request.cache_from = o.cache_from;
  request.cache_to = o.cache_to;
  request.plan = o.plan;
  request.sbom_artifact = !o.no_sbom_artifact;
  request.sbom_file = o.sbom;
  request.keep_image = static_cast<bool>(o.collect);
  request.progress = progress;
  const bool quiet = o.quiet;
  request.push_progress = [quiet](OutputOptions& output, const std::string& what,
                                  uint64_t total) -> std::function<void()> {
    auto push = attach_push_progress(output.on_bytes, output.on_blob, what, total, quiet);
    if (!push) return nullptr;
    output.progress = [push](const std::string& line) { push->line(line); };
    return [push] { push->finish(); };
  };
  request.squashfs_written = [&o](const std::string& file, const SquashfsBuild& built,
                                  const SquashfsOutputOptions& output) {
    print_squashfs(file, built, output, o);
  };
  return request;
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
  ENVB_ASSIGN_OR_RETURN(
      BuildRequest request,
      build_request_of(o, std::move(env), std::move(options), cache_root, progress));
  ENVB_ASSIGN_OR_RETURN(BuildResult result, build_image(request));
  if (o.plan) return print_plan(*result.build, result.estimated, o);
  if (!result.build) return 0;  // squashfs: outputs only
  if (o.collect) {
    ENVB_TRY(o.collect(*result.build, result.image));
    return 0;
  }
  print_build(*result.build, o);
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
  std::vector<PlatformImage> built;
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
  ENVB_ASSIGN_OR_RETURN(CacheLease cache_lease, open_cache(o.solve.cache_dir));
  IndexRequest request;
  request.tag = o.tag;
  request.outputs = o.outputs;
  ENVB_ASSIGN_OR_RETURN(request.registry, output_options_for(o, cache_lease.root()));
  request.sbom_artifact = !o.no_sbom_artifact;
  request.sbom_file = o.sbom;
  request.progress = [&o](const std::string& line) {
    if (!o.quiet) std::cerr << line << "\n";
  };
  ENVB_ASSIGN_OR_RETURN(oci::Descriptor index, write_platform_index(built, request));
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
