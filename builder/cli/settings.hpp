#pragma once

// The one place that decides the settings a solving or fetching command uses (solve, lock,
// install, build): its command-line flags, over the CONDA_* variables, over the .condarc files
// (conda/condarc.hpp), over envbuild's defaults. `envbuild config --show` prints these same
// values, so what it shows is what a command gets.

#include <filesystem>
#include <string>
#include <vector>

#include "builder/cli/solve_options.hpp"
#include "builder/install/package_cache.hpp"
#include "builder/solve/channel.hpp"
#include "common/http.hpp"
#include "conda/condarc.hpp"

namespace envbuild::builder::cli {

/// Where a value comes from when nothing set it.
inline constexpr const char* kDefaultSource = "envbuild's default";

struct EffectiveSettings {
  /// Every setting as used, defaults included, each with the flag, variable, file or default it
  /// comes from: what `config --show` prints (conda::describe()).
  conda::CondaConfig shown;

  // What the commands take from it.
  /// Used when neither the command line nor the environment file names a channel (empty: none).
  std::vector<std::string> channels;
  ChannelOptions channel_options;  // alias, default_channels, custom_channels, --mirror
  common::HttpOptions http;        // ssl_verify, proxy_servers
  /// libsolv knows strict and flexible priority; conda's `disabled` solves as flexible.
  bool strict_channel_priority = true;
  bool offline = false;
};

/// `install -n NAME`: NAME under the first of envs_dirs (conda's default: ~/.conda/envs) that
/// is, or can be made, a writable directory. InvalidInput for a NAME that is not one path
/// segment; an error naming every directory tried when none is writable.
Result<std::filesystem::path> prefix_of_name(const std::string& name,
                                             const EffectiveSettings& settings);

/// The settings of a command with `flags`, over `config`. InvalidInput naming the flag, variable
/// or file of a value envbuild cannot use (a channel_priority, an ssl_verify CA bundle that is
/// not a file, a --mirror that is not ORIGINAL=MIRROR).
Result<EffectiveSettings> effective_settings(const SolveCliOptions& flags,
                                             const conda::CondaConfig& config);

/// The same over the configuration of this process (conda::load_conda_config()).
Result<EffectiveSettings> effective_settings(const SolveCliOptions& flags);

/// Points a package cache's downloads at the settings: offline, TLS, proxies and mirrors.
void apply_fetch_settings(const EffectiveSettings& settings, PackageCacheOptions& packages);

}  // namespace envbuild::builder::cli
