#pragma once

// Solving an environment: channels -> repodata (fetched, cached) -> libsolv pool (through a .solv
// cache) -> records, once per target platform.
//
// Virtual packages: for the host platform they are detected (__glibc from gnu_get_libc_version,
// __linux from uname, __unix, __archspec=1=<machine>, __cuda from libcuda.so.1's
// cuDriverGetVersion, loaded with dlopen, only if present). For any platform the
// CONDA_OVERRIDE_<NAME> variables and explicit --virtual-package values come on top (explicit
// wins; an empty override removes the package). A non-host linux platform gets __unix, __linux
// and __glibc=2.17 (conda's default) unless overridden; __cuda only when given.
//
// .solv cache: <repodata cache prefix>.<sha256(libsolv version, envbuild version, URL,
// fingerprint)[:16]>.<i>.solv, one per piece a large repodata.json is parsed in
// (builder/solve/repodata_load.cpp), and .pieces saying how many; written with repo_write after
// a JSON load, read with repo_add_solv.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/solve/channel.hpp"
#include "builder/solve/repodata.hpp"
#include "builder/solve/solv/pool.hpp"
#include "common/result.hpp"
#include "conda/environment_file.hpp"
#include "conda/package_record.hpp"
#include "conda/virtual_package.hpp"

namespace envbuild::builder {

using conda::EnvLookup;
using conda::parse_virtual_package;
using conda::process_env;
using conda::virtual_packages_for;
using conda::VirtualPackage;

struct SolveRequest {
  std::vector<std::string> specs;
  std::vector<std::string> channels;   // as written: names, URLs, paths, defaults, nodefaults
  std::vector<std::string> platforms;  // empty: the host platform
  std::vector<VirtualPackage> virtual_packages;
  bool strict_channel_priority = true;
  bool use_solv_cache = true;
  ChannelOptions channel_options;
  RepodataOptions repodata;
  EnvLookup env;  // empty: the process environment
  /// Where the host's CUDA driver probe is kept for this boot (<cache root>/host, as envrun
  /// keeps it); empty: probed each time.
  std::filesystem::path host_cache_dir;
};

struct SolveStats {
  double fetch_ms = 0;
  double load_ms = 0;
  double solve_ms = 0;
  size_t records_loaded = 0;
  size_t solv_hits = 0;    // repos read from .solv
  size_t solv_writes = 0;  // repos parsed from JSON and written to .solv
  uint64_t bytes_transferred = 0;
  // The parts of load_ms (for `envbuild solve --timings` and bench/solve.sh).
  uint64_t json_bytes = 0;   // repodata.json bytes parsed (0 when every repo came from .solv)
  double json_ms = 0;        // repo_add_conda + internalize + base_url lookup (for a file
                             // parsed in pieces: cutting, parsing and writing the pieces)
  double solv_read_ms = 0;   // repo_add_solv
  double solv_write_ms = 0;  // repo_write of new .solv files (of files parsed whole)
  // The parts of solve_ms, and CPU time (user + system, the whole process) of load and solve:
  // on a busy machine wall time says little.
  double prepare_ms = 0;       // whatprovides index and jobs
  double solver_ms = 0;        // libsolv's solver_solve
  size_t dropped_records = 0;  // reachable records no solution can hold, left out
  double load_cpu_ms = 0;
  double solve_cpu_ms = 0;
};

struct PlatformSolution {
  std::string platform;
  std::vector<VirtualPackage> virtual_packages;
  std::vector<solv::SolvedRecord> records;  // sorted by name
  SolveStats stats;
};

/// Solves the request for every platform. No solution is an Unsatisfiable error whose message
/// explains the conflict (the specs and rules involved), with a hint for virtual packages.
Result<std::vector<PlatformSolution>> solve_environment(const SolveRequest& request);

/// The solver's form of a match spec (`channel::name version build`): what libsolv evaluates,
/// with the channel that restricts it. Files and the command line go through it alike.
std::string solver_spec(const conda::MatchSpec& spec);

/// Adds an environment.yml's dependencies (channel::spec kept) to `request`, and its channels
/// (with nodefaults) unless the request already names channels (--channel replaces the file's).
void add_environment(const conda::EnvironmentFile& env, SolveRequest& request);

/// The repodata record of a solved package.
Result<conda::PackageRecord> to_package_record(const solv::SolvedRecord& solved);

/// .solv pieces a solve wrote without a sync, listed once synced by its later work: until then
/// another load of the same solve (a second platform's noarch) reads them as the cache, and
/// nothing removes them. Used on the solve's own thread only.
struct PieceSealing {
  common::LaterWork* later = nullptr;
  std::map<std::string, size_t> unsealed;  // the cache's stem -> pieces
};

/// Loads repodata into a pool through the .solv cache (exposed for benchmarks and tests).
/// Pieces parsed now are cached unsynced and made durable (then listed) by `sealing`'s later
/// work when given, else before this returns.
Result<void> load_repodata(solv::Pool& pool, const std::vector<SubdirRepodata>& repodata,
                           bool use_solv_cache, SolveStats& stats,
                           PieceSealing* sealing = nullptr);

/// Turns a Conflict into the condensed human explanation used in errors.
std::string explain_conflict(const solv::Conflict& conflict, size_t max_lines = 12);

}  // namespace envbuild::builder
