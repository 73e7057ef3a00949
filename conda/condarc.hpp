#pragma once

// conda's configuration as conda reads it: the .condarc files of its search path, then the
// CONDA_* environment variables, for the settings that matter to solving and downloading
// (channels, channel_alias, default_channels, custom_channels, channel_priority, offline,
// ssl_verify, proxy_servers, envs_dirs). Command-line flags win over all of it; the caller
// applies them.
//
// Precedence, lowest first (conda's documented search path, without conda's own install root):
//   /etc/conda/{.condarc,condarc,condarc.d/*.yml}, /var/lib/conda/{...},
//   $XDG_CONFIG_HOME/conda/{...} (else ~/.config/conda/{...}), ~/.conda/{...}, ~/.condarc,
//   $CONDA_PREFIX/{...}, $CONDARC, then CONDA_<KEY> variables.
// A scalar takes the value of the highest source; a list (channels, default_channels,
// envs_dirs) lists the higher sources' items first, without repeats, as conda merges them; a map
// (custom_channels, proxy_servers) takes each key from the highest source that has it.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

/// A value and where it came from (a file path or "CONDA_CHANNELS", for `config --show`).
template <class T>
struct Sourced {
  T value{};
  std::string source;
};

struct CondaConfig {
  std::optional<Sourced<std::vector<std::string>>> channels;
  std::optional<Sourced<std::string>> channel_alias;
  std::optional<Sourced<std::vector<std::string>>> default_channels;
  std::map<std::string, Sourced<std::string>> custom_channels;  // channel name -> base URL
  std::optional<Sourced<std::string>> channel_priority;         // strict, flexible, disabled
  std::optional<Sourced<bool>> offline;
  /// "true", "false", or the path of a CA bundle (conda's ssl_verify takes either).
  std::optional<Sourced<std::string>> ssl_verify;
  std::map<std::string, Sourced<std::string>> proxy_servers;  // scheme or scheme://host -> URL
  std::optional<Sourced<std::vector<std::string>>> envs_dirs;
  /// Every file read, in precedence order (lowest first).
  std::vector<std::string> files;
};

/// What the search depends on: the variables of the process (HOME, XDG_CONFIG_HOME,
/// CONDA_PREFIX, CONDARC and CONDA_*) and the file-system root (tests use a directory).
struct CondaConfigEnvironment {
  std::map<std::string, std::string> variables;
  std::filesystem::path root = "/";

  static CondaConfigEnvironment from_process();
};

/// The files conda would read, lowest precedence first (those that exist).
std::vector<std::filesystem::path> condarc_files(const CondaConfigEnvironment& environment);

/// Merges one .condarc's text over `config` (as a higher-precedence source named `source`).
/// Unknown keys are ignored, as conda does for keys of other tools; a known key of the wrong
/// type is InvalidInput naming `source:line:col`.
Result<void> merge_condarc(std::string_view text, const std::string& source, CondaConfig& config);

/// Reads the search path and the CONDA_* variables. A file that cannot be read or parsed is an
/// error naming it.
Result<CondaConfig> load_conda_config(const CondaConfigEnvironment& environment);

/// `envbuild config --show`: each set key as YAML, with a comment naming its source. URLs are
/// redacted (a proxy's or a channel's password, a conda token): the output is for sharing.
std::string describe(const CondaConfig& config);

}  // namespace envbuild::conda
