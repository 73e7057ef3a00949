// `envbuild install --prefix DIR (-f environment.yml | --lock FILE)`: solve or read the lock,
// fetch through the package cache, and install into DIR (files patched for DIR itself).

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/cli/progress.hpp"
#include "builder/cli/settings.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/image/image_build.hpp"
#include "builder/install/cache.hpp"
#include "builder/install/install.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/solve/channel.hpp"
#include "builder/solve/solve.hpp"
#include "common/format.hpp"
#include "common/fs.hpp"
#include "conda/match_spec.hpp"
#include "conda/platform.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

struct InstallCliOptions {
  std::string prefix;
  std::string name;  // -n: under envs_dirs
  std::string lock;
  std::string lock_environment = "default";  // a pixi.lock's --environment
  SolveCliOptions solve;
  size_t jobs = 8;
  bool no_link_scripts = false;
  bool no_pyc = false;
  bool quiet = false;
  bool json = false;
  bool force = false;
  bool dry_run = false;
};

// What the pip: section holds beyond wheels: local source trees and -e (the environment's own
// pip builds them once everything else is installed), and the requirements conda met.
struct PipExtras {
  std::vector<conda::pypi::PipEntry> source_trees;
  std::vector<std::string> from_conda;
};

// The lock's packages and wheels for one platform: the same reader as `envbuild build`.
Result<EnvironmentSpec> from_lock(const InstallCliOptions& o, const EffectiveSettings& settings,
                                  const std::string& platform) {
  ENVB_ASSIGN_OR_RETURN(EnvironmentSpec env, environment_from_lock(o.lock, platform, o.lock_environment));
  // A lock holds redacted URLs: -c URLs with credentials supply them.
  env.credentialed_channels = credentialed_base_urls(o.solve.channels, settings.channel_options);
  return env;
}

// The conda part solved, then the pip: section after it. Local source trees and -e are allowed
// here (`extras`): the environment's own pip builds them once everything else is installed.
Result<EnvironmentSpec> from_environment(const InstallCliOptions& o,
                                         const EffectiveSettings& settings,
                                         const fs::path& cache_root, PipExtras& extras) {
  ENVB_ASSIGN_OR_RETURN(EnvironmentRequest request,
                        to_environment_request(o.solve, settings, cache_root));
  request.packages.jobs = o.jobs;
  ENVB_ASSIGN_OR_RETURN(auto solutions, solve_environment(request.solve).context("solving"));
  EnvironmentRequest conda_part = request;
  conda_part.pip.clear();
  ENVB_ASSIGN_OR_RETURN(EnvironmentSpec env, environment_of(conda_part, solutions.front()));
  if (request.pip.empty()) return env;
  ENVB_ASSIGN_OR_RETURN(auto solved, solve_pip_section(request, solutions.front(), true));
  env.wheels = std::move(solved.wheels);
  extras.source_trees = std::move(solved.source_entries);
  extras.from_conda = std::move(solved.resolution.from_conda);
  env.credentialed_channels.insert(env.credentialed_channels.end(),
                                   solved.credentialed_origins.begin(),
                                   solved.credentialed_origins.end());
  return env;
}

// Package name -> spec as requested, for the records' requested_spec.
std::map<std::string, std::string> requested_by_name(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> out;
  for (const auto& text : specs)
    if (auto spec = conda::MatchSpec::parse(text)) out[spec->name()] = text;
  return out;
}

std::vector<std::string> wheel_names(const std::vector<pypi::WheelToInstall>& wheels) {
  std::vector<std::string> out;
  for (const auto& w : wheels) out.push_back(w.name + "==" + w.version);
  return out;
}

// Runs argv, inheriting stderr; stdout goes to stderr too (ours is for --json).
Result<void> run_process(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) return common::errno_error("fork", argv.front(), errno);
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return fail(Errc::Io,
                cmd + ": exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return ok();
}

// Local source trees, -e and VCS requirements need a build backend: the environment's own pip
// builds and installs them (without dependencies: the resolution already has those it names),
// the one thing envbuild hands to pip.
Result<void> build_source_trees(const fs::path& prefix,
                                const std::vector<conda::pypi::PipEntry>& entries) {
  const fs::path python = prefix / "bin" / "python";
  std::error_code ec;
  if (!fs::exists(prefix / "bin" / "pip", ec))
    return fail(Errc::InvalidInput, entries.front().origin + ": '" + entries.front().location +
                                        "' needs a build backend, and the environment has no pip")
        .with_hint("add pip to the conda dependencies, or build a wheel of it and list the .whl");
  std::vector<std::string> argv = {python.string(), "-m", "pip", "install", "--no-deps",
                                   "--disable-pip-version-check"};
  for (const auto& e : entries) {
    if (e.kind == conda::pypi::PipEntry::Kind::Editable) argv.push_back("-e");
    argv.push_back(e.location);
  }
  return run_process(argv).context("building local source trees with the environment's pip");
}

// install --dry-run: what would be installed and downloaded; the prefix is not touched.
Result<int> print_dry_run(const EnvironmentSpec& in, const fs::path& prefix,
                          const std::string& platform, const fs::path& cache_root, bool json) {
  nlohmann::json packages = nlohmann::json::array();
  uint64_t download_bytes = 0;
  size_t to_download = 0;
  for (size_t i : topological_order(in.records)) {
    const auto& r = in.records[i];
    const PackageRef ref{r.url, r.fn, r.sha256, r.md5, r.size};
    const std::string key = cache_key(ref);
    std::error_code ec;
    const bool cached =
        !key.empty() && fs::exists(cache_root / "pkgs" / key / archive_name(ref), ec);
    if (!cached) {
      ++to_download;
      download_bytes += r.size.value_or(0);
    }
    packages.push_back({{"name", r.name},
                        {"version", r.version.to_string()},
                        {"build", r.build},
                        {"channel", r.channel},
                        {"fn", archive_name(ref)},
                        {"size", r.size ? nlohmann::json(*r.size) : nlohmann::json(nullptr)},
                        {"cached", cached}});
  }
  if (json) {
    std::cout << nlohmann::json{{"prefix", prefix.string()},
                                {"platform", platform},
                                {"dry_run", true},
                                {"packages", packages},
                                {"to_download", to_download},
                                {"download_bytes", download_bytes},
                                {"pip", wheel_names(in.wheels)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  for (const auto& p : packages)
    std::printf("  %-32s %-16s %-24s %s\n", p["name"].get<std::string>().c_str(),
                p["version"].get<std::string>().c_str(), p["build"].get<std::string>().c_str(),
                p["cached"].get<bool>() ? "cached" : "download");
  std::printf("would install %zu packages into %s (%zu to download, %s); nothing was changed\n",
              packages.size(), prefix.c_str(), to_download, human_bytes(download_bytes).c_str());
  return 0;
}

// The request that installs `in` (its records moved out) into `prefix`: packages and then wheels
// through the command's package cache, link scripts, variables and history as the options say,
// progress through `fetch_progress`. `request` must stay where it is: its wheel step refers to it.
void fill_install_request(EnvironmentInstallRequest& request, EnvironmentSpec& in,
                          const InstallCliOptions& o, const fs::path& prefix,
                          const std::string& platform, const fs::path& cache_root,
                          const EffectiveSettings& settings) {
  request.records = std::move(in.records);
  request.requested_specs = requested_by_name(in.specs);
  request.prefix_dir = prefix;
  request.subdir = platform;
  request.jobs = o.jobs;
  request.cache.root = cache_root;
  request.cache.jobs = o.jobs;
  request.cache.credentialed_channels = in.credentialed_channels;
  apply_fetch_settings(settings, request.cache);
  if (!in.wheels.empty()) {
    // Wheels are planned once the packages are: none may overwrite a package's file.
    request.plan_wheels = [&request, wheels = in.wheels](const std::vector<PackagePlan>& packages,
                                                         const InstallTarget& target)
        -> Result<std::vector<WheelContent>> {
      ENVB_ASSIGN_OR_RETURN(auto plans,
                            pypi::fetch_and_plan_wheels(wheels, packages, target, request.cache));
      std::vector<WheelContent> out;
      for (auto& p : plans) out.push_back(std::move(p.content));
      return out;
    };
  }
  request.install.link_scripts = o.no_link_scripts ? LinkScripts::Skip : LinkScripts::Run;
  request.install.compile_pyc = !o.no_pyc;
  for (const auto& [k, v] : in.variables) request.install.variables[k] = v;
  request.install.environment_name = in.name;
  request.install.requested_specs = in.specs;
  request.install.warn = [mutex = std::make_shared<std::mutex>()](const std::string& m) {
    std::lock_guard<std::mutex> lock(*mutex);
    std::cerr << "warning: " << m << "\n";
  };
}

// What was installed: a JSON summary on stdout (--json), else one line on stderr.
void print_install(const EnvironmentInstallReport& report, const EnvironmentSpec& in,
                   const PipExtras& extras, const fs::path& prefix, const std::string& platform,
                   const InstallCliOptions& o) {
  if (o.json) {
    nlohmann::json packages = nlohmann::json::array();
    for (const auto& r : report.records)
      packages.push_back({{"name", r.name},
                          {"version", r.version.to_string()},
                          {"build", r.build},
                          {"channel", r.channel},
                          {"fn", r.fn},
                          {"sha256", r.sha256}});
    nlohmann::json summary = {
        {"prefix", prefix.string()},
        {"platform", platform},
        {"packages", packages},
        {"downloaded", report.downloaded},
        {"extracted", report.extracted},
        {"download_bytes", report.download_bytes},
        {"files", report.prefix.files},
        {"hardlinked", report.prefix.hardlinked},
        {"copied", report.prefix.copied},
        {"patched", report.relocations},
        {"pyc_compiled", report.prefix.pyc_compiled},
        {"clobbered", report.prefix.clobbered},
        {"scripts_run", report.prefix.scripts_run},
        {"scripts_pending", report.prefix.scripts_pending},
        {"pip", wheel_names(in.wheels)},
        {"pip_from_conda", extras.from_conda},
        {"timings_ms",
         {{"fetch", report.fetch_ms}, {"plan", report.plan_ms}, {"link", report.link_ms}}}};
    std::cout << summary.dump(2) << "\n";
  } else if (!o.quiet) {
    std::fprintf(stderr,
                 "installed %zu packages and %zu wheels into %s (fetch %.0f ms, plan %.0f ms, link "
                 "%.0f ms)\n",
                 report.records.size(), in.wheels.size(), prefix.c_str(), report.fetch_ms,
                 report.plan_ms, report.link_ms);
  }
}

Result<int> run_install(const InstallCliOptions& o) {
  if (o.prefix.empty() && o.name.empty())
    return fail(Errc::InvalidInput, "--prefix DIR or -n NAME is required: where to install");
  const std::vector<std::string> platforms = split_commas(o.solve.platforms);
  if (platforms.size() > 1)
    return fail(Errc::InvalidInput,
                "install takes one --platform, not " + std::to_string(platforms.size()));
  if (!o.lock.empty() && (!o.solve.file.empty() || !o.solve.specs.empty()))
    return fail(Errc::InvalidInput, "give --lock, or -f/specs, not both");
  const std::string platform = platforms.empty() ? conda::host_subdir() : platforms.front();
  ENVB_ASSIGN_OR_RETURN(CacheLease cache_lease, open_cache(o.solve.cache_dir));
  const fs::path& cache_root = cache_lease.root();
  ENVB_ASSIGN_OR_RETURN(EffectiveSettings settings, effective_settings(o.solve));
  std::string target = o.prefix;
  if (!o.name.empty()) {
    ENVB_ASSIGN_OR_RETURN(fs::path named, prefix_of_name(o.name, settings));
    target = named.string();
  }
  std::error_code ec;
  fs::path prefix = fs::absolute(target, ec).lexically_normal();
  if (prefix.has_filename() == false) prefix = prefix.parent_path();
  EnvironmentSpec in;
  PipExtras extras;
  if (!o.lock.empty()) {
    ENVB_ASSIGN_OR_RETURN(in, from_lock(o, settings, platform));
  } else {
    ENVB_ASSIGN_OR_RETURN(in, from_environment(o, settings, cache_root, extras));
  }
  if (o.dry_run) return print_dry_run(in, prefix, platform, cache_root, o.json);
  if (o.force && fs::exists(prefix, ec)) ENVB_TRY(common::remove_all(prefix));

  EnvironmentInstallRequest request;
  fill_install_request(request, in, o, prefix, platform, cache_root, settings);
  FetchProgress fetch_progress(request.records, in.wheels.size(), o.quiet);
  fetch_progress.attach(request.cache);
  request.progress = [&](const std::string& line) { fetch_progress.line(line); };
  ENVB_ASSIGN_OR_RETURN(auto report, install_environment(request));
  fetch_progress.finish();

  if (!extras.source_trees.empty()) ENVB_TRY(build_source_trees(prefix, extras.source_trees));
  print_install(report, in, extras, prefix, platform, o);
  return 0;
}

}  // namespace

void register_install(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<InstallCliOptions>();
  CLI::App* cmd = app.add_subcommand("install", "Install an environment into a directory");
  auto* prefix =
      cmd->add_option("-p,--prefix", options->prefix, "target directory (created; must be empty)");
  cmd->add_option("-n,--name", options->name,
                  "install into NAME under the first writable of .condarc's envs_dirs (default "
                  "~/.conda/envs)")
      ->excludes(prefix);
  add_solve_options(cmd, options->solve, PositionalSpecs::Yes, PlatformShortFlag::No);
  cmd->add_option("--lock", options->lock,
                  "conda-lock.yml, @EXPLICIT file or pixi.lock (no solve)");
  cmd->add_option("--environment", options->lock_environment,
                  "the environment of a pixi.lock to use (default: default)");
  cmd->add_option("-j,--jobs", options->jobs, "parallel downloads/extractions (default 8)");
  cmd->add_flag("--no-link-scripts", options->no_link_scripts, "record link scripts, never run");
  cmd->add_flag("--no-pyc", options->no_pyc,
                "do not compile noarch python packages' .py files (python does it on import)");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress lines");
  cmd->add_flag("--json", options->json, "print a JSON summary on stdout");
  cmd->add_flag("--dry-run", options->dry_run,
                "print what would be installed and downloaded; change nothing");
  cmd->add_flag("--force", options->force, "remove the prefix first if it exists");
  cmd->callback([options, &outcome] { outcome.result = run_install(*options); });
}

}  // namespace envbuild::builder::cli
