#pragma once

// environment.yml (CEP 24; landscape.md 4.7).

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "conda/channel_spec.hpp"
#include "conda/match_spec.hpp"
#include "conda/platform.hpp"

namespace envbuild::conda {

/// One line of the `pip:` subsection, kept verbatim: a requirement (`requests==2.31`,
/// `pkg @ https://...`, `git+https://...`) or a pip option (`-r file.txt`, `-e .`,
/// `--index-url ...`). pip entries are not match specs.
struct PipRequirement {
  std::string text;
  int line = 0;  // 1-based line in the file, for messages
  bool operator==(const PipRequirement&) const = default;
};

struct EnvironmentFile {
  std::string name;
  std::string prefix;
  std::vector<UnresolvedChannel> channels;
  bool nodefaults = false;  // `nodefaults` was listed: do not add the default channels
  std::vector<MatchSpec> dependencies;
  std::vector<PipRequirement> pip;
  std::vector<std::pair<std::string, std::string>> variables;  // in file order
  std::vector<Platform> platforms;                             // conda-lock extension
  std::string category;                                        // conda-lock extension
  /// Non-fatal findings, each "file:line:col: text" (e.g. an ignored conda-lock key).
  std::vector<std::string> warnings;
};

struct EnvironmentFileOptions {
  /// Selectors (`# [linux]` comments, mamba's `sel(linux): spec` items) are evaluated for it.
  Platform target;
  /// Used in messages: `environment.yml:7:3: ...`.
  std::string file_name = "environment.yml";
};

/// Parses an environment file. Errors are InvalidInput and start with `file:line:col:`, with a
/// hint where one helps (`unknown key 'dependncies'` gets "did you mean 'dependencies'?").
///
/// Selectors: a line ending in `# [expr]` is dropped when `expr` is false for the target (see
/// evaluate_selector); the removal keeps line numbers. An unsupported selector is an error.
/// Keys conda-lock adds (`allow-pypi-requests`, `pip-repositories`) give a warning and are
/// otherwise ignored; any other unknown key, and any dependencies subsection other than `pip`,
/// is an error.
Result<EnvironmentFile> parse_environment_file(std::string_view text,
                                               const EnvironmentFileOptions& options);
/// Reads and parses `path` (file_name in messages is the path as given).
Result<EnvironmentFile> read_environment_file(const std::filesystem::path& path,
                                              const Platform& target);

}  // namespace envbuild::conda
