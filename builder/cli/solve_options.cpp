#include "builder/cli/solve_options.hpp"

#include <iostream>

#include "builder/cli/settings.hpp"
#include "builder/install/package_cache.hpp"
#include "builder/solve/channel.hpp"
#include "conda/platform.hpp"

namespace envbuild::builder::cli {

namespace fs = std::filesystem;

void add_solve_options(CLI::App* cmd, SolveCliOptions& o, PositionalSpecs specs,
                       PlatformShortFlag short_platform) {
  cmd->add_option("-f,--file", o.file,
                  "environment.yml (default: ./environment.yml when no spec is given)");
  if (specs == PositionalSpecs::Yes)
    cmd->add_option("specs", o.specs, "match specs, as in a file (\"xz[version='>=5']\")");
  // One value per occurrence, so that `-c CHANNEL SPEC` leaves SPEC positional.
  cmd->add_option(short_platform == PlatformShortFlag::Yes ? "-p,--platform" : "--platform",
                  o.platforms, "target platforms, comma separated (default: this host's)")
      ->allow_extra_args(false);
  cmd->add_option("-c,--channel", o.channels, "channels (replace the file's; repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--virtual-package", o.virtual_packages,
                  "__name=version[=build] the target provides, e.g. __cuda=12.4 (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--channel-alias", o.channel_alias,
                  "base URL for channel names (default: .condarc's channel_alias, else "
                  "https://conda.anaconda.org)");
  cmd->add_option("--mirror", o.mirrors,
                  "ORIGINAL=MIRROR: download channel ORIGINAL (or every channel under that URL) "
                  "from MIRROR; records, locks and images keep ORIGINAL (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--channel-priority", o.channel_priority,
                  "strict, flexible or disabled (solved as flexible) (default: .condarc's "
                  "channel_priority, else strict)");
  cmd->add_flag("--offline", o.offline,
                "use only the cache (repodata, packages) (default: .condarc's offline)");
  cmd->add_flag("--no-solv-cache", o.no_solv_cache, "always parse repodata JSON");
  cmd->add_flag("--no-shards", o.no_shards,
                "load every record of the whole repodata.json: no CEP 16 shards, no "
                "picking out the records the specs reach");
  cmd->add_option("--pip-find-links", o.pip_find_links,
                  "look for the pip: section's wheels in DIR or URL instead of its --find-links "
                  "locations (repeatable), as -c replaces its channels")
      ->allow_extra_args(false);
  add_cache_option(cmd, o.cache_dir);
}

void add_cache_option(CLI::App* cmd, std::string& cache_dir) {
  cmd->add_option("--cache-dir", cache_dir,
                  "cache root: packages, repodata, layers, plans, blobs (default "
                  "$ENVBUILD_CACHE, else ~/.cache/envbuild)");
}

std::vector<std::string> split_commas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const std::string& s : in) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      if (comma > start) out.push_back(s.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

namespace {

// -f FILE, else nothing when specs are given, else ./environment.yml when present.
Result<std::string> environment_file(const SolveCliOptions& o) {
  if (!o.file.empty() || !o.specs.empty()) return o.file;
  std::error_code ec;
  if (fs::is_regular_file("environment.yml", ec)) return std::string("environment.yml");
  return fail(Errc::InvalidInput, "no environment given")
      .with_hint("give -f environment.yml, match specs, or run where environment.yml is");
}

}  // namespace

Result<EnvironmentRequest> to_environment_request(const SolveCliOptions& o,
                                                  const EffectiveSettings& settings,
                                                  const fs::path& cache_root) {
  SolveRequest base;
  base.platforms = split_commas(o.platforms);
  base.channels = o.channels;
  for (const std::string& text : o.virtual_packages) {
    ENVB_ASSIGN_OR_RETURN(VirtualPackage vp, parse_virtual_package(text));
    base.virtual_packages.push_back(vp);
  }
  base.strict_channel_priority = settings.strict_channel_priority;
  base.use_solv_cache = !o.no_solv_cache;
  base.channel_options = settings.channel_options;
  base.repodata.offline = settings.offline;
  base.repodata.shards = !o.no_shards;
  base.repodata.http.tls = settings.http.tls;
  base.repodata.http.proxies = settings.http.proxies;
  base.repodata.cache_dir = cache_root / "repodata";
  base.host_cache_dir = cache_root / "host";
  ENVB_ASSIGN_OR_RETURN(std::string file, environment_file(o));
  const std::string subdir = base.platforms.empty() ? conda::host_subdir() : base.platforms.front();
  ENVB_ASSIGN_OR_RETURN(
      EnvironmentRequest request,
      environment_request(
          file, o.specs, subdir, std::move(base),
          [](const std::string& w) { std::cerr << "warning: " << w << "\n"; }, settings.channels));
  // The pip: section's conda packages (those that may install Python distributions) go
  // through the command's package cache.
  request.packages.root = cache_root;
  apply_fetch_settings(settings, request.packages);
  for (const std::string& dir : o.pip_find_links) {
    std::error_code ec;
    // A URL stays as given; a directory is taken from where the command runs, not from the
    // environment file's folder.
    request.pip_find_links.push_back(dir.find("://") != std::string::npos
                                         ? dir
                                         : fs::absolute(dir, ec).lexically_normal().string());
  }
  return request;
}

Result<pypi::PipSolution> solve_pip_section(const EnvironmentRequest& request,
                                            const PlatformSolution& solution,
                                            bool allow_source_trees) {
  std::vector<conda::PackageRecord> records;
  for (const auto& solved : solution.records) {
    ENVB_ASSIGN_OR_RETURN(auto record, to_package_record(solved));
    records.push_back(std::move(record));
  }
  pypi::PipSolveOptions pip = pip_solve_options(request, solution);
  pip.allow_source_trees = allow_source_trees;
  return pypi::solve_pip_section(request.pip, records, pip)
      .context("the pip: section for " + solution.platform);
}

}  // namespace envbuild::builder::cli
