#pragma once

// The options every command that solves an environment.yml shares (solve, lock, install, build),
// and their translation into a SolveRequest.

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "builder/pypi/environment.hpp"
#include "builder/solve.hpp"
#include "conda/environment_file.hpp"

namespace envbuild::builder::cli {

struct SolveCliOptions {
  std::string file;
  std::vector<std::string> platforms;
  std::vector<std::string> channels;
  std::vector<std::string> virtual_packages;
  std::vector<std::string> specs;
  std::string cache_dir;
  std::string channel_alias = "https://conda.anaconda.org";
  std::string channel_priority = "strict";
  bool offline = false;
  bool no_solv_cache = false;
};

/// Adds -f/--file, -p/--platform, -c/--channel, --virtual-package, --cache-dir, --channel-alias,
/// --channel-priority, --offline, --no-solv-cache (and positional extra specs when `specs`).
void add_solve_options(CLI::App* cmd, SolveCliOptions& options, bool positional_specs = true);

/// Splits "a,b" arguments.
std::vector<std::string> split_commas(const std::vector<std::string>& in);

/// The request for the options; when a file is given, its parsed form is returned in `env`.
Result<SolveRequest> to_solve_request(const SolveCliOptions& options,
                                      std::optional<conda::EnvironmentFile>* env = nullptr);

/// The pip: section of `env` for one platform of `request`, after its conda part (`solution`),
/// with the cache, offline mode and channel credentials of `options`. `allow_source_trees`: -e
/// and local trees are listed (solve) rather than refused (lock).
Result<pypi::PipSolution> solve_pip_section(const SolveCliOptions& options,
                                            const conda::EnvironmentFile& env,
                                            const SolveRequest& request,
                                            const PlatformSolution& solution,
                                            bool allow_source_trees);

}  // namespace envbuild::builder::cli
