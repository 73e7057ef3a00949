#pragma once

// Activation without conda: the environment a command sees inside a materialized prefix, and
// the exec that replaces envrun with it (exit status and signals are the command's own).

#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/cache.hpp"

namespace envbuild::runtime {

/// What execve gets.
struct LaunchPlan {
  std::string file;               // the program to execute (absolute or relative with a '/')
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> envp;  // KEY=VALUE
};

/// The activated environment, from the host's `environ`:
///  - the image config's Env (prefix already rewritten) is applied, except HOME, HOSTNAME
///    and PATH; PATH becomes the image PATH entries inside the prefix, then the host's PATH;
///  - CONDA_PREFIX = the prefix, CONDA_DEFAULT_ENV (the image's, else the prefix), CONDA_SHLVL=1;
///  - env_vars.d / conda-meta/state variables last.
std::vector<std::string> activated_environment(const EnvInfo& info,
                                               const std::vector<std::string>& host_env);

/// The command to run: `command` or, when empty, the image's Entrypoint + Cmd. Without activate.d
/// scripts the program is looked up in the activated PATH; with them the command runs as
/// `/bin/sh -c '. a.sh; . b.sh; exec "$@"' sh COMMAND ARGS...`. NotFound (exit 127 in main)
/// when the program is not on PATH; InvalidInput when there is no command at all.
Result<LaunchPlan> plan_launch(const EnvInfo& info, std::vector<std::string> command,
                               const std::vector<std::string>& host_env);

/// An interactive shell: $SHELL -i when set and executable, else /bin/sh -i.
std::vector<std::string> shell_command(const std::vector<std::string>& host_env);

/// The process environment as a vector.
std::vector<std::string> current_environment();

/// execve(plan). Returns only on failure (the error names the program).
Error exec_launch(const LaunchPlan& plan);

/// Searches `path_value` (colon-separated) for an executable `name`.
std::optional<std::string> find_in_path(const std::string& name, const std::string& path_value);

}  // namespace envbuild::runtime
