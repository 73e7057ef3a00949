// `envbuild export -p PREFIX | --lock FILE | --image IMAGE`: an installed environment, a lock or
// the environment in an image written back as an environment.yml (conda env export), an
// @EXPLICIT file (conda list --explicit) or a conda-lock.yml. The reading and writing live in
// builder/export; this is the command line.

#include <iostream>
#include <memory>

#include "builder/cli/cli.hpp"
#include "builder/cli/image_source.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/export/export.hpp"
#include "builder/install/cache.hpp"
#include "common/fs.hpp"

namespace envbuild::builder::cli {

namespace {

struct ExportOptions {
  std::string prefix;
  std::string lock;
  std::string image;
  std::string image_prefix;
  std::string cache_dir;
  ImageSourceCliOptions source;         // --image; its platform is the first --platform
  std::string environment = "default";  // pixi.lock
  std::vector<std::string> platforms;
  std::string format = "environment";
  std::string output;
  bool md5 = false;
  EnvironmentYmlOptions yml;
};

Result<std::vector<ExportedEnvironment>> read_sources(const ExportOptions& o) {
  if (int(!o.prefix.empty()) + int(!o.lock.empty()) + int(!o.image.empty()) != 1)
    return fail(Errc::InvalidInput, "export needs exactly one source")
        .with_hint("give -p PREFIX (an installed environment), --lock FILE or --image IMAGE");
  std::vector<ExportedEnvironment> envs;
  if (!o.image.empty()) {
    if (o.platforms.size() > 1)
      return fail(Errc::InvalidInput, "an image holds one platform's environment")
          .with_hint("give one --platform (an index's image for it), or none for the host's");
    ENVB_ASSIGN_OR_RETURN(CacheLease cache, open_cache(o.cache_dir));
    ImageSourceCliOptions source = o.source;
    if (!o.platforms.empty()) source.platform = o.platforms.front();
    ENVB_ASSIGN_OR_RETURN(auto image,
                          open_image_source(o.image, source, cache.root(), RegistryLayers::Fetch)
                              .context("exporting " + o.image));
    ENVB_ASSIGN_OR_RETURN(auto env,
                          read_image_environment(*image, cache.root() / "tmp", o.image_prefix)
                              .context("exporting " + o.image));
    envs.push_back(std::move(env));
    return envs;
  }
  if (!o.prefix.empty()) {
    ENVB_ASSIGN_OR_RETURN(auto env, read_prefix_environment(o.prefix));
    envs.push_back(std::move(env));
    return envs;
  }
  std::vector<std::string> platforms = o.platforms;
  if (platforms.empty()) platforms.emplace_back();  // the lock's only platform
  for (const auto& platform : platforms) {
    ENVB_ASSIGN_OR_RETURN(auto env, read_lock_environment(o.lock, platform, o.environment));
    envs.push_back(std::move(env));
  }
  return envs;
}

Result<std::string> render(const ExportOptions& o, const std::vector<ExportedEnvironment>& envs) {
  if (o.format == "conda-lock") {
    size_t left_out = 0;
    ENVB_ASSIGN_OR_RETURN(auto lock, to_conda_lock(envs, &left_out));
    if (left_out > 0)
      std::cerr << "warning: " << left_out
                << " wheel(s) of the pip: section are not in the conda-lock.yml: an installed "
                   "environment records no wheel URL or hash (lock the environment.yml instead)\n";
    return conda::to_string(lock);
  }
  if (envs.size() != 1)
    return fail(Errc::InvalidInput, "--format " + o.format + " holds one platform")
        .with_hint("give one --platform, or --format conda-lock for several");
  if (o.format == "explicit") {
    if (!envs.front().wheels.empty())
      std::cerr << "warning: @EXPLICIT files hold conda packages only (CEP 23): the pip: "
                   "section's wheels are left out (--format conda-lock keeps them)\n";
    ENVB_ASSIGN_OR_RETURN(auto file, to_explicit_file(envs.front(), o.md5));
    return conda::to_string(file);
  }
  return to_environment_yml(envs.front(), o.yml);
}

Result<int> run_export(const ExportOptions& o) {
  ENVB_ASSIGN_OR_RETURN(auto envs, read_sources(o));
  ENVB_ASSIGN_OR_RETURN(std::string text, render(o, envs));
  if (o.output.empty() || o.output == "-") {
    std::cout << text;
    std::cout.flush();
    if (!std::cout) return fail(Errc::Io, "writing the export to stdout failed");
    return 0;
  }
  ENVB_TRY(common::write_file_atomic(o.output, text));
  std::cerr << "wrote " << o.output << " (" << envs.front().packages.size() << " packages)\n";
  return 0;
}

}  // namespace

void register_export(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Write an installed environment or a lock as environment.yml, @EXPLICIT or "
      "conda-lock.yml");
  cmd->add_option("-p,--prefix", options->prefix, "installed environment to export");
  cmd->add_option("--lock", options->lock, "conda-lock.yml, @EXPLICIT file or pixi.lock");
  cmd->add_option("--image", options->image,
                  "the environment in an image: oci:DIR[:TAG], oci-archive:FILE, "
                  "docker-archive:FILE or docker://REF (its layers are read, nothing is run)");
  cmd->add_option("--image-prefix", options->image_prefix,
                  "--image: where the environment lives in it (default: its org.envbuild.prefix "
                  "label, else /opt/conda)");
  add_registry_read_options(cmd, options->source);
  add_cache_option(cmd, options->cache_dir);
  cmd->add_option("--environment", options->environment, "pixi.lock environment (default)");
  cmd->add_option("--platform", options->platforms,
                  "platform of the lock to export (repeatable for --format conda-lock); of an "
                  "--image index: its image for that platform");
  cmd->add_option("--format", options->format, "environment (default), explicit or conda-lock")
      ->check(CLI::IsMember({"environment", "explicit", "conda-lock"}));
  cmd->add_option("-o,--output", options->output, "file to write atomically (default stdout)");
  cmd->add_flag("--md5", options->md5, "@EXPLICIT: #md5 instead of #sha256:");
  cmd->add_flag("--no-builds", options->yml.no_builds, "environment.yml: name=version only");
  cmd->add_flag("--from-history", options->yml.from_history,
                "environment.yml: only the specs that were asked for");
  cmd->add_option("-c,--channel", options->yml.extra_channels,
                  "environment.yml: channel to list first (repeatable)");
  cmd->add_flag("--override-channels", options->yml.override_channels,
                "environment.yml: list only the -c channels");
  cmd->footer(
      "Exit codes: 2 invalid input (a damaged record, a lock that is not one, a missing "
      "--platform), 3 not found (no conda-meta/, no such pixi.lock environment or platform, "
      "no environment in the image).\n"
      "Examples: envbuild export -p /opt/env --from-history -o environment.yml\n"
      "          envbuild export --image docker://ghcr.io/org/train:1 --format conda-lock");
  cmd->callback([options, &outcome] { outcome.result = run_export(*options); });
}

}  // namespace envbuild::builder::cli
