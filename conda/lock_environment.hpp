#pragma once

// What a lock file carries of an environment besides its packages: the name, the specs as the
// user asked for them (conda-meta/history) and the `variables:`, so that `lock` then
// `build --lock` / `install --lock` gives what `build -f` / `install -f` gives.
//
// conda-lock.yml: conda-lock's `custom_metadata` (string -> string, which conda-lock itself
// reads and keeps), keys `envbuild.name`, `envbuild.specs.<platform>` (a JSON array of strings)
// and `envbuild.variables.<platform>` (a JSON object, in file order): selectors can make specs
// and variables differ per platform.
// @EXPLICIT: header comment lines `# envbuild-name: <JSON string>`, `# envbuild-specs: <JSON
// array>` and `# envbuild-variables: <JSON object>` (an explicit file has one platform).
// Locks from elsewhere have none of these: an empty LockedEnvironment.

#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"

namespace envbuild::conda {

struct LockedEnvironment {
  std::string name;
  std::vector<std::string> specs;                              // canonical MatchSpec text
  std::vector<std::pair<std::string, std::string>> variables;  // in file order
  bool operator==(const LockedEnvironment&) const = default;
};

/// Adds `env` for `platform` to the lock's custom_metadata (replacing what was there).
void put_environment(CondaLockFile& lock, const std::string& platform,
                     const LockedEnvironment& env);
/// The environment of `platform`. A value that is not the JSON it should be is an InvalidInput
/// error naming the key and `file`.
Result<LockedEnvironment> locked_environment(const CondaLockFile& lock, const std::string& platform,
                                             std::string_view file);

/// Adds `env` to the header of an explicit file (replacing envbuild's lines already there).
void put_environment(ExplicitFile& lock, const LockedEnvironment& env);
Result<LockedEnvironment> locked_environment(const ExplicitFile& lock, std::string_view file);

}  // namespace envbuild::conda
