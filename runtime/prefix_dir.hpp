#pragma once

// Plain prefix directories as envrun targets: `envrun DIR -- cmd` runs a prefix that `envrun
// unpack` or `envbuild install` made, relocating it first when it has been moved since (its
// relocation index still names the old place), and an unpacked prefix carries a POSIX
// `bin/activate` for job scripts that `source` it.
//
// What envrun knows of an unpacked prefix beyond conda's files (the image's Env, Entrypoint, Cmd
// and requirements label) is kept inside it, in conda-meta/.envrun.json (EnvInfo's JSON), and moves
// with it: when the prefix is relocated, the paths in it are rewritten too.
//
// Between processes: conda-meta/.envrun.lock is taken exclusively while a moved prefix is
// relocated, and shared (inherited across exec) while a command runs, like a cache entry.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "common/root_dir.hpp"
#include "runtime/cache.hpp"

namespace envbuild::runtime {

/// Where an unpacked prefix keeps what envrun knows of it, relative to the prefix.
// A dot file: conda reads every conda-meta/*.json as a package record.
inline constexpr std::string_view kPrefixInfoPath = "conda-meta/.envrun.json";

/// What a launch needs that a prefix's own files say: env vars (etc/conda/env_vars.d/*.json,
/// then conda-meta/state), activate.d scripts (absolute paths for where the prefix will be), and
/// the virtual-package requirements of its conda-meta records. Read beneath the prefix: a
/// symlink, FIFO or device where a file belongs is an error, never followed or waited on.
struct PrefixFacts {
  std::vector<std::pair<std::string, std::string>> env_vars;
  std::vector<std::string> activate_scripts;
  std::vector<std::string> requirements;
};
Result<PrefixFacts> read_prefix_facts(const common::RootDir& prefix,
                                      const std::filesystem::path& final_path);

/// True when `argument` names an existing directory holding conda-meta/ (a prefix), rather than
/// an image reference.
bool is_prefix_directory(const std::string& argument);

/// Writes conda-meta/.envrun.json and, when the environment has none of its own, bin/activate,
/// beneath `prefix` (whose files sit wherever the prefix is staged; `info.prefix` is where it
/// will be).
Result<void> write_prefix_files(const common::RootDir& prefix, const EnvInfo& info);

/// The POSIX sh script `bin/activate` holds: `. PREFIX/bin/activate` sets what `envrun PREFIX --`
/// would (PATH, CONDA_PREFIX, CONDA_DEFAULT_ENV, the image's Env, env_vars.d and state variables),
/// sources activate.d, and defines `deactivate`. It refuses to activate a prefix that was moved
/// since it was written (bash and zsh can tell) and says how to relocate it.
std::string activate_script(const EnvInfo& info);

/// Makes the prefix at `dir` ready to run and holds it in use: relocated to where it is now when
/// it was moved (all files by their records, conda-meta/.envrun.json and bin/activate rewritten),
/// its env vars, activate.d scripts and requirements read. A prefix `envbuild install` made (no
/// envrun.json) gets PATH=<prefix>/bin and its records' requirements.
Result<Materialized> open_prefix_directory(const std::filesystem::path& dir);

}  // namespace envbuild::runtime
