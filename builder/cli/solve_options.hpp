#pragma once

// The options every command that solves an environment shares (solve, lock, install, build):
// one set, one meaning, so that what `solve` prints is what `build` gets; and the cache root
// every command uses.

#include <CLI/CLI.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "builder/image/image_build.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/solve/solve.hpp"
#include "conda/environment_file.hpp"

namespace envbuild::builder::cli {

struct EffectiveSettings;

struct SolveCliOptions {
  std::string file;
  std::vector<std::string> platforms;
  std::vector<std::string> channels;
  std::vector<std::string> virtual_packages;
  std::vector<std::string> specs;
  std::vector<std::string> mirrors;  // ORIGINAL=MIRROR
  std::vector<std::string> pip_find_links;  // replace the pip: section's --find-links
  // Empty: not given, the configuration's or the default applies (builder/cli/settings.hpp).
  std::string channel_alias;
  std::string channel_priority;
  bool offline = false;
  bool no_solv_cache = false;
  bool no_shards = false;
  std::string cache_dir;
};

/// Whether `-p` means --platform (solve, lock) or is another option's (install's --prefix,
/// as in conda).
enum class PlatformShortFlag : bool { No, Yes };
/// Whether the command takes match specs as positional arguments.
enum class PositionalSpecs : bool { No, Yes };

/// Adds -f/--file, --platform, -c/--channel, --virtual-package, --channel-alias, --mirror,
/// --channel-priority, --offline, --no-solv-cache, --no-shards, --cache-dir and, with PositionalSpecs::Yes,
/// match specs as arguments.
void add_solve_options(CLI::App* cmd, SolveCliOptions& options, PositionalSpecs specs,
                       PlatformShortFlag short_platform);

/// Adds --cache-dir alone (commands that use the cache but solve nothing).
void add_cache_option(CLI::App* cmd, std::string& cache_dir);

/// Splits "a,b" arguments.
std::vector<std::string> split_commas(const std::vector<std::string>& in);

/// The environment the options describe: -f FILE, else the specs given, else ./environment.yml
/// when there is one (an error naming all three otherwise), read for the first platform (or
/// the host's); the solve options, with the repodata cache under the cache root `cache_root`,
/// and `settings` (flags, CONDA_*, .condarc): its channels when neither the command line nor
/// the file names one. The file's warnings go to stderr.
Result<EnvironmentRequest> to_environment_request(const SolveCliOptions& options,
                                                  const EffectiveSettings& settings,
                                                  const std::filesystem::path& cache_root);

/// The pip: section of `request` for one platform, after its conda part (`solution`), through
/// the request's package cache. `allow_source_trees`: -e and local trees are listed (solve)
/// rather than refused (lock, build).
Result<pypi::PipSolution> solve_pip_section(const EnvironmentRequest& request,
                                            const PlatformSolution& solution,
                                            bool allow_source_trees);

}  // namespace envbuild::builder::cli
