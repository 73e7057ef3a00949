#include "builder/cli/solve_options.hpp"
#include "builder/channel.hpp"
#include "builder/package_cache.hpp"
#include "conda/platform.hpp"

#include <iostream>

namespace envbuild::builder::cli {

void add_solve_options(CLI::App* cmd, SolveCliOptions& o, bool positional_specs) {
  cmd->add_option("-f,--file", o.file, "environment.yml");
  if (positional_specs) cmd->add_option("specs", o.specs, "extra match specs");
  // One value per occurrence, so that `-c CHANNEL SPEC` leaves SPEC positional.
  cmd->add_option("-p,--platform", o.platforms, "target platforms (comma separated)")
      ->allow_extra_args(false);
  cmd->add_option("-c,--channel", o.channels, "channels (replace the file's; repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--virtual-package", o.virtual_packages,
                  "__name=version[=build] the target provides, e.g. __cuda=12.4")
      ->allow_extra_args(false);
  cmd->add_option("--cache-dir", o.cache_dir, "repodata cache directory");
  cmd->add_option("--channel-alias", o.channel_alias, "base URL for channel names");
  cmd->add_option("--channel-priority", o.channel_priority, "strict (default) or flexible");
  cmd->add_flag("--offline", o.offline, "use cached repodata only");
  cmd->add_flag("--no-solv-cache", o.no_solv_cache, "always parse repodata JSON");
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

Result<SolveRequest> to_solve_request(const SolveCliOptions& o,
                                      std::optional<conda::EnvironmentFile>* env_out) {
  SolveRequest request;
  request.platforms = split_commas(o.platforms);
  request.channels = o.channels;
  request.specs = o.specs;
  if (!o.file.empty()) {
    auto target = conda::Platform::parse(request.platforms.empty() ? conda::host_subdir()
                                                                   : request.platforms.front());
    if (!target) return std::move(target).error();
    ENVB_ASSIGN_OR_RETURN(conda::EnvironmentFile env,
                          conda::read_environment_file(o.file, *target));
    for (const auto& w : env.warnings) std::cerr << "warning: " << w << "\n";
    add_environment(env, request);
    if (request.platforms.empty())
      for (const auto& p : env.platforms) request.platforms.push_back(p.to_string());
    if (env_out) *env_out = std::move(env);
  }
  if (request.channels.empty())
    return fail(Errc::InvalidInput, "no channels: give --channel or list them in the file");
  for (const std::string& text : o.virtual_packages) {
    ENVB_ASSIGN_OR_RETURN(VirtualPackage vp, parse_virtual_package(text));
    request.virtual_packages.push_back(vp);
  }
  if (o.channel_priority != "strict" && o.channel_priority != "flexible")
    return fail(Errc::InvalidInput, "--channel-priority must be strict or flexible");
  request.strict_channel_priority = o.channel_priority == "strict";
  request.use_solv_cache = !o.no_solv_cache;
  request.channel_options.alias = o.channel_alias;
  request.repodata.offline = o.offline;
  if (!o.cache_dir.empty()) request.repodata.cache_dir = o.cache_dir;
  return request;
}

Result<pypi::PipSolution> solve_pip_section(const SolveCliOptions& o,
                                            const conda::EnvironmentFile& env,
                                            const SolveRequest& request,
                                            const PlatformSolution& solution,
                                            bool allow_source_trees) {
  std::vector<conda::PackageRecord> records;
  for (const auto& solved : solution.records) {
    ENVB_ASSIGN_OR_RETURN(auto record, to_package_record(solved));
    records.push_back(std::move(record));
  }
  pypi::PipSolveOptions pip;
  pip.subdir = solution.platform;
  pip.glibc = pypi::glibc_version(solution.virtual_packages);
  std::error_code ec;
  pip.cache.root = o.cache_dir.empty() ? default_cache_root() : std::filesystem::absolute(o.cache_dir, ec);
  pip.cache.offline = o.offline;
  pip.cache.credentialed_channels = credentialed_base_urls(request.channels, request.channel_options);
  pip.base_dir = std::filesystem::absolute(o.file, ec).parent_path();
  pip.file_name = o.file;
  pip.allow_source_trees = allow_source_trees;
  return pypi::solve_pip_section(env.pip, records, pip).context("the pip: section for " + solution.platform);
}

}  // namespace envbuild::builder::cli
