// `envbuild solve -f environment.yml`: fetch repodata, solve for each platform, print the
// packages as a table or JSON.

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/cli/settings.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/install/cache.hpp"
#include "builder/install/package_cache.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/solve/channel.hpp"
#include "builder/solve/solve.hpp"
#include "common/format.hpp"
#include "conda/environment_file.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

/// One line per platform on stderr, `key=value` pairs (bench/solve.sh reads them).
void print_timings(const PlatformSolution& s) {
  const SolveStats& t = s.stats;
  const double mb = static_cast<double>(t.json_bytes) / 1e6;
  std::fprintf(stderr,
               "timings: platform=%s fetch_ms=%.1f load_ms=%.1f json_ms=%.1f json_mb=%.1f "
               "json_mb_per_s=%.1f solv_read_ms=%.1f solv_write_ms=%.1f solve_ms=%.1f "
               "prepare_ms=%.1f solver_ms=%.1f load_cpu_ms=%.1f solve_cpu_ms=%.1f "
               "records=%zu dropped=%zu solv_hits=%zu solv_writes=%zu packages=%zu\n",
               s.platform.c_str(), t.fetch_ms, t.load_ms, t.json_ms, mb,
               t.json_ms > 0 ? mb / (t.json_ms / 1000) : 0.0, t.solv_read_ms, t.solv_write_ms,
               t.solve_ms, t.prepare_ms, t.solver_ms, t.load_cpu_ms, t.solve_cpu_ms,
               t.records_loaded, t.dropped_records, t.solv_hits, t.solv_writes, s.records.size());
}

Result<int> run_solve(const SolveCliOptions& o, bool json, bool timings) {
  ENVB_ASSIGN_OR_RETURN(CacheLease cache_lease, open_cache(o.cache_dir));
  const fs::path& cache_root = cache_lease.root();
  ENVB_ASSIGN_OR_RETURN(EffectiveSettings settings, effective_settings(o));
  ENVB_ASSIGN_OR_RETURN(EnvironmentRequest request,
                        to_environment_request(o, settings, cache_root));
  ENVB_ASSIGN_OR_RETURN(auto solutions, solve_environment(request.solve));
  // The pip: section of each platform, after its conda part.
  std::vector<pypi::PipSolution> pip(solutions.size());
  if (!request.pip.empty())
    for (size_t i = 0; i < solutions.size(); ++i) {
      ENVB_ASSIGN_OR_RETURN(pip[i], solve_pip_section(request, solutions[i], true));
    }
  if (timings)
    for (const auto& s : solutions) print_timings(s);
  if (json) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& s : solutions) {
      nlohmann::json pkgs = nlohmann::json::array();
      for (const auto& r : s.records) {
        pkgs.push_back({{"name", r.name},
                        {"version", r.version},
                        {"build", r.build},
                        {"build_number", r.build_number},
                        {"channel", r.channel},
                        {"subdir", r.subdir},
                        {"url", r.url},
                        {"fn", r.fn},
                        {"md5", r.md5},
                        {"sha256", r.sha256},
                        {"size", r.size},
                        {"depends", r.depends},
                        {"constrains", r.constrains},
                        {"license", r.license},
                        {"timestamp", r.timestamp},
                        {"track_features", r.track_features}});
      }
      nlohmann::json vps = nlohmann::json::array();
      for (const auto& v : s.virtual_packages)
        vps.push_back(v.name + "=" + v.version + "=" + v.build);
      nlohmann::json wheels = nlohmann::json::array();
      for (const auto& w : pip[&s - solutions.data()].wheels)
        wheels.push_back({{"name", w.name},
                          {"version", w.version},
                          {"url", w.url},
                          {"sha256", w.sha256},
                          {"requested", w.requested},
                          {"dependencies", w.dependencies}});
      out[s.platform] = {{"packages", pkgs},
                         {"pip", wheels},
                         {"pip_from_conda", pip[&s - solutions.data()].resolution.from_conda},
                         {"virtual_packages", vps},
                         {"stats",
                          {{"fetch_ms", s.stats.fetch_ms},
                           {"load_ms", s.stats.load_ms},
                           {"solve_ms", s.stats.solve_ms},
                           {"records", s.stats.records_loaded},
                           {"solv_hits", s.stats.solv_hits}}}};
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& s : solutions) {
    uint64_t total = 0;
    std::printf("# %s: %zu packages (%zu records, fetch %.0f ms, load %.0f ms, solve %.0f ms)\n",
                s.platform.c_str(), s.records.size(), s.stats.records_loaded, s.stats.fetch_ms,
                s.stats.load_ms, s.stats.solve_ms);
    std::printf("%-32s %-16s %-28s %-24s %10s\n", "name", "version", "build", "channel", "size");
    for (const auto& r : s.records) {
      total += r.size;
      std::printf("%-32s %-16s %-28s %-24s %10s\n", r.name.c_str(), r.version.c_str(),
                  r.build.c_str(), r.channel.c_str(), human_bytes(r.size).c_str());
    }
    std::printf("# total download %s\n", human_bytes(total).c_str());
    const auto& solved = pip[&s - solutions.data()];
    if (solved.wheels.empty() && solved.resolution.from_conda.empty()) continue;
    std::printf("# %s: pip: %zu wheels\n", s.platform.c_str(), solved.wheels.size());
    for (const auto& w : solved.wheels)
      std::printf("%-32s %-16s %s\n", w.name.c_str(), w.version.c_str(), w.filename.c_str());
    for (const auto& c : solved.resolution.from_conda)
      std::printf("# met by conda: %s\n", c.c_str());
  }
  return 0;
}

}  // namespace

void register_solve(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<SolveCliOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("solve", "Solve an environment.yml and print the packages");
  add_solve_options(cmd, *options, PositionalSpecs::Yes, PlatformShortFlag::Yes);
  cmd->add_flag("--json", *json, "print JSON records");
  auto timings = std::make_shared<bool>(false);
  cmd->add_flag("--timings", *timings,
                "print fetch/load (JSON parse, .solv read/write)/solve times to stderr");
  cmd->footer(
      "Example: envbuild solve -f environment.yml -p linux-64,linux-aarch64 "
      "--virtual-package __cuda=12.4");
  cmd->callback([options, json, timings, &outcome] {
    outcome.result = run_solve(*options, *json, *timings);
  });
}

}  // namespace envbuild::builder::cli
