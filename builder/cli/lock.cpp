// `envbuild lock -f environment.yml`: solve for every platform and write a conda-lock.yml
// (CEP 37, all platforms) and/or one @EXPLICIT file per platform (CEP 23), which `envbuild
// install --lock` and `envbuild build --lock` install without solving.

#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "builder/cli/cli.hpp"
#include "builder/cli/settings.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/export/export.hpp"
#include "builder/install/cache.hpp"
#include "builder/install/package_cache.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/pypi/lock.hpp"
#include "builder/solve/channel.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/http.hpp"
#include "common/version.hpp"
#include "conda/lock_environment.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

struct LockOptions {
  SolveCliOptions solve;
  std::string output = "conda-lock.yml";
  std::string explicit_dir;
  bool no_conda_lock = false;
  bool json = false;  // stdout: what was written, as JSON, instead of "wrote" lines
};

// Dependencies first (CEP 23: explicit files SHOULD be topologically sorted), ties by name.
std::vector<const solv::SolvedRecord*> topological(const std::vector<solv::SolvedRecord>& records) {
  std::map<std::string, const solv::SolvedRecord*> by_name;
  for (const auto& r : records) by_name[r.name] = &r;
  std::vector<const solv::SolvedRecord*> out;
  std::set<std::string> done, visiting;
  std::function<void(const solv::SolvedRecord*)> visit = [&](const solv::SolvedRecord* r) {
    if (done.count(r->name) || visiting.count(r->name)) return;
    visiting.insert(r->name);
    std::set<std::string> deps;
    for (const auto& d : r->depends) deps.insert(split_dependency(d).first);
    for (const auto& name : deps)
      if (auto it = by_name.find(name); it != by_name.end()) visit(it->second);
    visiting.erase(r->name);
    done.insert(r->name);
    out.push_back(r);
  };
  for (const auto& [name, r] : by_name) visit(r);
  return out;
}

// The pip: section for one platform, after its conda part.
Result<std::vector<pypi::WheelToInstall>> lock_pip_section(const EnvironmentRequest& env,
                                                           const PlatformSolution& solution) {
  ENVB_ASSIGN_OR_RETURN(auto solved, solve_pip_section(env, solution, false));
  for (const auto& line : solved.resolution.from_conda)
    std::cerr << solution.platform << ": pip requirement met by conda: " << line << "\n";
  return std::move(solved.wheels);
}

// What the lock's content hash covers besides channels and platform: the file, or the specs
// given on the command line.
Result<std::string> spec_text_of(const EnvironmentRequest& env) {
  if (!env.file.empty()) return common::read_file(env.file);
  std::string text;
  for (const auto& spec : env.environment.specs) text += spec + "\n";
  return text;
}

Result<int> run_lock(const LockOptions& o) {
  ENVB_ASSIGN_OR_RETURN(CacheLease cache_lease, open_cache(o.solve.cache_dir));
  const fs::path& cache_root = cache_lease.root();
  ENVB_ASSIGN_OR_RETURN(EffectiveSettings settings, effective_settings(o.solve));
  ENVB_ASSIGN_OR_RETURN(EnvironmentRequest env,
                        to_environment_request(o.solve, settings, cache_root));
  const SolveRequest& request = env.solve;
  const std::string source = env.file.empty() ? "command-line specs" : env.file.string();
  ENVB_ASSIGN_OR_RETURN(auto solutions, solve_environment(request));
  const bool has_pip = !env.pip.empty();
  if (has_pip && !o.explicit_dir.empty())
    std::cerr << "warning: @EXPLICIT files hold conda packages only (CEP 23); the pip: section "
                 "is locked in "
              << (o.no_conda_lock ? "no file (--no-conda-lock)" : o.output) << "\n";
  ENVB_ASSIGN_OR_RETURN(std::string spec_text, spec_text_of(env));

  conda::CondaLockFile lock;
  for (const auto& channel : request.channels) {
    if (channel == "nodefaults") continue;
    // A lock file is shared and committed: it names the channel without its credentials
    // (user:***@, /t/***/); `install --lock -c URL` or ~/.netrc supplies them again.
    lock.metadata.channels.push_back({common::redact_url(channel), {}});
  }
  if (!env.file.empty()) lock.metadata.sources.push_back(env.file.string());
  // lock --json: each file written, and each platform's packages.
  nlohmann::json written = nlohmann::json::array();
  nlohmann::json platforms = nlohmann::json::object();
  for (const auto& solution : solutions) {
    lock.metadata.platforms.push_back(solution.platform);
    // conda-lock hashes the spec per platform; ours covers the file, channels and platform.
    std::string basis = spec_text + "\n" + solution.platform;
    // Redacted: a hash over a known text and a password is a dictionary attack's oracle.
    for (const auto& c : request.channels) basis += "\n" + common::redact_url(c);
    lock.metadata.content_hash.emplace_back(solution.platform, common::sha256_hex(basis));
    // What the environment says besides its packages goes with them, so that `build --lock`
    // and `install --lock` give what `-f` gives (the name, history, variables).
    const conda::LockedEnvironment locked{env.environment.name, env.environment.specs,
                                          env.environment.variables};
    conda::put_environment(lock, solution.platform, locked);

    conda::ExplicitFile explicit_file;
    explicit_file.header = {"# Generated by envbuild " + std::string(kVersion) + " from " +
                                (env.file.empty() ? source : env.file.filename().string()),
                            "# platform: " + solution.platform};
    conda::put_environment(explicit_file, locked);
    for (const auto* r : topological(solution.records)) {
      conda::CondaLockPackage package;
      package.name = r->name;
      package.version = r->version;
      package.platform = solution.platform;
      for (const auto& d : r->depends) {
        auto [name, constraint] = split_dependency(d);
        if (name.rfind("__", 0) == 0) continue;  // virtual packages are not locked
        package.dependencies.emplace_back(name, constraint);
      }
      package.url = r->url;
      package.md5 = r->md5;
      package.sha256 = r->sha256;
      platforms[solution.platform].push_back({{"name", r->name},
                                              {"version", r->version},
                                              {"build", r->build},
                                              {"channel", r->channel},
                                              {"url", r->url},
                                              {"sha256", r->sha256}});
      lock.packages.push_back(std::move(package));
      conda::ExplicitEntry entry;
      entry.url = r->url;
      entry.sha256 = r->sha256;
      if (entry.sha256.empty()) entry.md5 = r->md5;
      explicit_file.entries.push_back(std::move(entry));
    }
    if (has_pip) {
      ENVB_ASSIGN_OR_RETURN(auto wheels, lock_pip_section(env, solution));
      for (const auto& w : wheels) lock.packages.push_back(pypi::lock_entry(w, solution.platform));
      pypi::add_requested(lock.metadata, wheels);
    }
    if (!o.explicit_dir.empty()) {
      ENVB_TRY(common::make_dirs(o.explicit_dir));
      fs::path file = fs::path(o.explicit_dir) / ("conda-" + solution.platform + ".lock");
      ENVB_TRY(common::write_file_atomic(file, conda::to_string(explicit_file)));
      written.push_back({{"path", file.string()}, {"format", "explicit"}});
      if (!o.json)
        std::cout << "wrote " << file.string() << " (" << explicit_file.entries.size()
                  << " packages)\n";
    }
  }
  if (!o.no_conda_lock) {
    ENVB_TRY(common::write_file_atomic(o.output, conda::to_string(lock)));
    written.push_back({{"path", o.output}, {"format", "conda-lock"}});
    if (!o.json)
      std::cout << "wrote " << o.output << " (" << lock.packages.size() << " packages, "
                << solutions.size() << " platform(s))\n";
  }
  if (o.json)
    std::cout << nlohmann::json{{"files", written},
                                {"name", env.environment.name},
                                {"platforms", platforms}}
                     .dump(2)
              << "\n";
  return 0;
}

}  // namespace

void register_lock(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<LockOptions>();
  CLI::App* cmd = app.add_subcommand(
      "lock", "Solve an environment.yml and write conda-lock.yml and/or @EXPLICIT files");
  add_solve_options(cmd, options->solve, PositionalSpecs::Yes, PlatformShortFlag::Yes);
  cmd->add_option("-o,--output", options->output, "conda-lock.yml to write (all platforms)");
  cmd->add_option("--explicit", options->explicit_dir,
                  "also write DIR/conda-<platform>.lock @EXPLICIT files");
  cmd->add_flag("--no-conda-lock", options->no_conda_lock, "write only the @EXPLICIT files");
  cmd->add_flag("--json", options->json, "print the files written and the packages as JSON");
  cmd->footer(
      "Example: envbuild lock -f environment.yml -p linux-64,linux-aarch64 --explicit locks/");
  cmd->callback([options, &outcome] { outcome.result = run_lock(*options); });
}

}  // namespace envbuild::builder::cli
