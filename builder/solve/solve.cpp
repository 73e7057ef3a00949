#include "builder/solve/solve.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>

#include "common/clock.hpp"
#include "common/heap.hpp"
#include "common/hash.hpp"
#include "common/parallel.hpp"
#include "common/version.hpp"
#include "conda/platform.hpp"

namespace envbuild::builder {

namespace {

using common::Clock;
using common::ms_since;

/// CPU time (user + system) of the process so far, in milliseconds.
double process_cpu_ms() {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

std::string explain_conflict(const solv::Conflict& conflict, size_t max_lines) {
  std::string out;
  size_t lines = 0;
  for (size_t i = 0; i < conflict.problems.size(); ++i) {
    out += "\n  problem " + std::to_string(i + 1) + ": " + conflict.problems[i];
    if (i < conflict.details.size()) {
      for (const std::string& d : conflict.details[i]) {
        if (d == conflict.problems[i]) continue;
        if (++lines > max_lines) break;
        out += "\n    - " + d;
      }
    }
  }
  if (lines > max_lines)
    out += "\n    (" + std::to_string(lines - max_lines) + "+ more rules left out)";
  return out;
}

Result<std::vector<PlatformSolution>> solve_environment(const SolveRequest& request) {
  std::vector<std::string> platforms = request.platforms;
  if (platforms.empty()) platforms.push_back(conda::host_subdir());
  for (const std::string& p : platforms)
    if (!is_known_platform(p) || p == "noarch")
      return fail(Errc::InvalidInput, "unknown platform '" + p + "'")
          .with_hint("platforms are conda subdirs: linux-64, linux-aarch64, osx-arm64, ...");
  if (request.specs.empty()) return fail(Errc::InvalidInput, "nothing to solve: no specs");
  common::back_heap_with_huge_pages();
  ENVB_ASSIGN_OR_RETURN(auto channels, resolve_channels(request.channels, request.channel_options));

  std::vector<std::string> subdirs = platforms;
  subdirs.push_back("noarch");
  // The host's virtual packages first: probing the host forks, which is only safe while no
  // other thread runs (the cache writes below run on one).
  std::vector<std::vector<conda::VirtualPackage>> virtual_packages;
  for (const std::string& platform : platforms)
    virtual_packages.push_back(
        virtual_packages_for(platform, request.virtual_packages, request.env,
                             request.host_cache_dir));
  // Shards fetched are cached, and .solv pieces parsed now synced and listed, once the pool is
  // loaded, on the core the one-threaded solve leaves idle; every write is done when this
  // returns. (solve_cpu_ms, the whole process's CPU time, counts them too.)
  common::LaterWork later_cache_writes;
  PieceSealing sealing{&later_cache_writes, {}};
  RepodataOptions repodata_options = request.repodata;
  repodata_options.later_cache_writes = &later_cache_writes;
  auto fetch_start = Clock::now();
  ENVB_ASSIGN_OR_RETURN(auto repodata,
                        fetch_repodata(channels, subdirs, repodata_options, request.specs));
  const double fetch_ms = ms_since(fetch_start);
  uint64_t bytes = 0;
  for (const auto& r : repodata) bytes += r.bytes_transferred;

  std::vector<PlatformSolution> out;
  for (size_t platform_index = 0; platform_index < platforms.size(); ++platform_index) {
    const std::string& platform = platforms[platform_index];
    PlatformSolution solution;
    solution.platform = platform;
    solution.stats.fetch_ms = fetch_ms;
    solution.stats.bytes_transferred = bytes;
    std::vector<SubdirRepodata> mine;
    bool any = false;
    for (const auto& r : repodata) {
      if (r.subdir != platform && r.subdir != "noarch") continue;
      mine.push_back(r);
      any = any || !r.missing;
    }
    solv::Pool pool;
    auto load_start = Clock::now();
    const double load_cpu_start = process_cpu_ms();
    ENVB_TRY(load_repodata(pool, mine, request.use_solv_cache, solution.stats, &sealing));
    solution.stats.load_ms = ms_since(load_start);
    solution.stats.load_cpu_ms = process_cpu_ms() - load_cpu_start;
    solution.virtual_packages = virtual_packages[platform_index];
    for (const auto& vp : solution.virtual_packages)
      pool.add_virtual_package(vp.name, vp.version, vp.build);
    later_cache_writes.start();
    auto solve_start = Clock::now();
    const double solve_cpu_start = process_cpu_ms();
    ENVB_ASSIGN_OR_RETURN(auto outcome,
                          pool.solve_records({request.specs, request.strict_channel_priority})
                              .context("solving for " + platform));
    solution.stats.solve_ms = ms_since(solve_start);
    solution.stats.solve_cpu_ms = process_cpu_ms() - solve_cpu_start;
    solution.stats.prepare_ms = pool.last_phases().prepare_ms;
    solution.stats.solver_ms = pool.last_phases().solver_ms;
    solution.stats.dropped_records = pool.last_phases().dropped_records;
    if (auto* conflict = std::get_if<solv::Conflict>(&outcome)) {
      std::string text = explain_conflict(*conflict);
      Error error = fail(Errc::Unsatisfiable,
                         "no set of packages satisfies the specs for " + platform + ":" + text);
      std::string hint;
      for (auto [vp, variable] : {std::pair{"__cuda", "CUDA"}, std::pair{"__glibc", "GLIBC"},
                                  std::pair{"__osx", "OSX"}, std::pair{"__linux", "LINUX"}}) {
        if (text.find(vp) != std::string::npos) {
          hint = "a package needs the virtual package " + std::string(vp) +
                 ": set it with --virtual-package " + vp + "=<version> or CONDA_OVERRIDE_" +
                 variable;
          break;
        }
      }
      if (hint.empty() && text.find("nothing in channel ") != std::string::npos)
        hint =
            "that channel has no package matching the spec: check its version and build, "
            "or drop the channel:: prefix to let any channel provide it";
      if (hint.empty() && request.strict_channel_priority && channels.size() > 1)
        hint =
            "with several channels, strict channel priority keeps each package name to the "
            "first channel that has it; --channel-priority flexible relaxes that";
      if (!any) hint = "no channel has any repodata for " + platform;
      if (!hint.empty()) return std::move(error).with_hint(hint);
      return error;
    }
    solution.records = std::get<std::vector<solv::SolvedRecord>>(std::move(outcome));
    out.push_back(std::move(solution));
  }
  return out;
}

void add_environment(const conda::EnvironmentFile& env, SolveRequest& request) {
  if (request.channels.empty()) {
    for (const auto& c : env.channels) request.channels.push_back(c.location());
    if (env.nodefaults) request.channels.push_back("nodefaults");
  }
  for (const auto& spec : env.dependencies) request.specs.push_back(solver_spec(spec));
}

std::string solver_spec(const conda::MatchSpec& spec) {
  std::string text = spec.to_libsolv_string();
  if (spec.channel()) text = spec.channel()->location() + "::" + text;
  return text;
}

Result<conda::PackageRecord> to_package_record(const solv::SolvedRecord& s) {
  conda::PackageRecord r;
  r.name = s.name;
  ENVB_ASSIGN_OR_RETURN(r.version, conda::Version::parse(s.version));
  r.build = s.build;
  r.build_number = s.build_number;
  r.channel = s.channel;
  r.subdir = s.subdir;
  r.url = s.url;
  r.fn = s.fn;
  r.md5 = s.md5;
  r.sha256 = s.sha256;
  if (s.size) r.size = s.size;
  r.depends = s.depends;
  r.constrains = s.constrains;
  r.track_features = s.track_features;
  r.license = s.license;
  if (s.timestamp) r.timestamp = static_cast<int64_t>(s.timestamp);
  return r;
}

}  // namespace envbuild::builder
