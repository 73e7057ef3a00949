#pragma once

// Real processes for tests that run envrun (and what it execs) concurrently: started with a
// changed environment, output captured in a file, waited for by pid.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace envbuild::testing {

struct Spawned {
  pid_t pid = -1;
  std::filesystem::path output;
};

/// The environment changes of a spawn: KEY -> value, or nullopt to unset KEY.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

/// Starts `argv` (argv[0] a path) with stdout+stderr to `output`, stdin from /dev/null, and this
/// process's environment changed by `env`.
Spawned spawn_process(const std::vector<std::string>& argv, const EnvChanges& env,
                      const std::filesystem::path& output);

/// Waits for it (EINTR retried); the raw wait status.
int wait_status(const Spawned& s);

/// Runs `argv` to the end: the raw wait status and the captured output.
struct Finished {
  int status = 0;
  std::string output;
  [[nodiscard]] int exit_code() const;
};
Finished run_process(const std::vector<std::string>& argv, const EnvChanges& env,
                     const std::filesystem::path& output);

}  // namespace envbuild::testing
