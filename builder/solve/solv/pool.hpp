#pragma once

// A thin owner of a libsolv pool in conda mode. Public headers never include libsolv (pimpl).
// A pool is single-threaded: each solve gets its own.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder::solv {

/// One solvable chosen by a solve, as libsolv sees it.
struct SolvedPackage {
  std::string name;
  std::string version;
  std::string build;
  std::string repo;  // the name given to add_repodata_*
  auto operator<=>(const SolvedPackage&) const = default;
};

/// A request libsolv could not satisfy, with its problems in words.
struct Conflict {
  std::vector<std::string> problems;  // one headline per problem (solver_problem2str)
  /// Per problem, the rules involved in words, deduplicated ("package a-1 requires b >=2, but
  /// none of the providers can be installed").
  std::vector<std::vector<std::string>> details;
};

using SolveOutcome = std::variant<std::vector<SolvedPackage>, Conflict>;

/// A strong handle to a repo inside one Pool.
struct RepoId {
  int value = -1;
  auto operator<=>(const RepoId&) const = default;
};

/// Where a repo's records come from; copied into every record solved from it.
struct RepoInfo {
  std::string channel;   // channel name as it goes into lock files ("conda-forge", URL)
  std::string subdir;    // the directory the records sit in (linux-64, noarch)
  std::string base_url;  // <channel url>: record url = base_url/subdir/fn (redacted form)
  int priority = 0;      // higher wins; strict priority keeps a name to its best channel
  int subpriority = 0;   // inside one channel: platform subdir above noarch
};

/// A whole repodata record of a solved package.
struct SolvedRecord {
  std::string name;
  std::string version;
  std::string build;
  uint64_t build_number = 0;
  std::string channel;
  std::string subdir;  // the record's own "subdir" (may be noarch inside linux-64/)
  std::string url;
  std::string fn;
  std::string md5;
  std::string sha256;
  uint64_t size = 0;
  std::vector<std::string> depends;
  std::vector<std::string> constrains;
  std::vector<std::string> track_features;
  std::string license;
  uint64_t timestamp = 0;  // milliseconds since the epoch (libsolv keeps seconds)
};

struct SolveJob {
  /// Conda match specs; "channel::spec" restricts the spec to that channel.
  std::vector<std::string> specs;
  bool strict_channel_priority = true;
};

using RecordOutcome = std::variant<std::vector<SolvedRecord>, Conflict>;

/// Where the time of the last solve went (milliseconds of wall time).
struct SolvePhases {
  double prepare_ms = 0;  // pool_createwhatprovides and the jobs
  double solver_ms = 0;   // solver_solve (and problem rules when unsatisfiable)
  double result_ms = 0;   // transaction and records
  size_t dropped_records = 0;  // reachable records no solution can hold, left out of the solve
};

/// The linked libsolv's version ("0.7.23"); part of .solv cache keys.
std::string libsolv_version();

class Pool {
 public:
  Pool();
  ~Pool();
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Loads a repodata.json document (CEP: conda repodata) as a repo named `name`. Higher
  /// priority wins under strict channel priority.
  Result<void> add_repodata_json(const std::string& name, const std::string& json,
                                 int priority = 0);
  Result<void> add_repodata_file(const std::string& name, const std::string& path,
                                 int priority = 0);
  /// Loads one channel/subdir from a repodata.json file.
  Result<RepoId> add_repo_json_file(const RepoInfo& info, const std::filesystem::path& path);
  /// Loads one channel/subdir from repodata.json text, as add_repo_json_file would from a file
  /// holding it; errors name `what`.
  Result<RepoId> add_repo_json_text(const RepoInfo& info, std::string text,
                                    const std::string& what);
  /// Loads one channel/subdir from a .solv file written by write_repo_solv.
  Result<RepoId> add_repo_solv_file(const RepoInfo& info, const std::filesystem::path& path);
  /// Writes a repo in libsolv's binary form (and its records' meta file beside it),
  /// atomically: temp file + rename, each synced, or with Sync::Later not (the caller syncs
  /// them, common::sync_file, before anything names them as whole).
  enum class Sync { Now, Later };
  Result<void> write_repo_solv(RepoId repo, const std::filesystem::path& path,
                               Sync sync = Sync::Now) const;
  /// The file write_repo_solv writes beside `solv` with the records' meta (one may not be there).
  static std::filesystem::path meta_path_of(const std::filesystem::path& solv);
  /// Number of solvables in a repo (0 once removed).
  [[nodiscard]] size_t repo_size(RepoId repo) const;
  /// Takes a repo and its records out of the pool (a cache found damaged part way through);
  /// its id stays unused.
  void remove_repo(RepoId repo);

  /// A virtual package (__glibc, __cuda, ...) the target provides. Every solve installs the
  /// virtual packages (conda and mamba lock them as installed ones): they are always present, so
  /// a `constrains` on them (cuda-version's `__cuda >=12.4`) applies even when nothing
  /// requires them, and no solution removes or replaces them.
  void add_virtual_package(const std::string& name, const std::string& version,
                           const std::string& build = "0");

  /// Installs every spec (conda match spec syntax) and returns the whole resulting set, sorted by
  /// name; virtual packages are not part of it.
  Result<SolveOutcome> solve(const std::vector<std::string>& specs);
  /// Solves and returns full records, sorted by name. A spec libsolv cannot parse, or one naming
  /// an unknown channel, is an InvalidInput error; no solution is a Conflict.
  Result<RecordOutcome> solve_records(const SolveJob& job);
  /// Phase times of the last solve_records.
  [[nodiscard]] const SolvePhases& last_phases() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace envbuild::builder::solv
