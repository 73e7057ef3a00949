// `envbuild install --prefix DIR (-f environment.yml | --lock FILE)`: solve or read the lock,
// fetch through the package cache, and install into DIR (files patched for DIR itself).

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "builder/channel.hpp"
#include "builder/cli/cli.hpp"
#include "builder/image_build.hpp"
#include "builder/install.hpp"
#include "builder/package_cache.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/solve.hpp"
#include "common/fs.hpp"
#include "conda/environment_file.hpp"
#include "conda/platform.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

struct InstallCliOptions {
  std::string prefix;
  std::string file;
  std::string lock;
  std::string platform;
  std::vector<std::string> channels;
  std::string cache_dir;
  std::string channel_alias = "https://conda.anaconda.org";
  std::string pip_find_links;
  size_t jobs = 8;
  bool no_link_scripts = false;
  bool no_pyc = false;
  bool offline = false;
  bool quiet = false;
  bool json = false;
  bool force = false;
};

struct Inputs {
  std::vector<conda::PackageRecord> records;
  std::map<std::string, std::string> requested;
  std::map<std::string, std::string> variables;
  std::vector<std::string> specs;
  std::vector<pypi::WheelToInstall> wheels;         // the pip: section's
  std::vector<conda::pypi::PipEntry> source_trees;  // -e, local trees: the environment's pip
  std::vector<std::string> from_conda;              // pip requirements conda met
  std::string name;
  std::vector<std::string> credentialed_channels;  // for the downloads only: never print
};

// The lock's packages and wheels for one platform: the same reader as `envbuild build`.
Result<Inputs> from_lock(const InstallCliOptions& o, const std::string& platform) {
  ENVB_ASSIGN_OR_RETURN(EnvironmentSpec env, environment_from_lock(o.lock, platform));
  Inputs in;
  in.records = std::move(env.records);
  in.wheels = std::move(env.wheels);
  // A lock holds redacted URLs: -c URLs with credentials supply them.
  ChannelOptions channel_options;
  channel_options.alias = o.channel_alias;
  in.credentialed_channels = credentialed_base_urls(o.channels, channel_options);
  return in;
}

fs::path cache_root_of(const InstallCliOptions& o) {
  std::error_code ec;
  return o.cache_dir.empty() ? default_cache_root() : fs::absolute(o.cache_dir, ec);
}

// The pip: section after the conda part. Local source trees and -e are allowed here: the
// environment's own pip builds them once everything else is installed.
Result<void> solve_pip(const InstallCliOptions& o, const conda::EnvironmentFile& env,
                       const std::string& platform, const std::vector<VirtualPackage>& virtuals,
                       Inputs& in) {
  std::vector<conda::PipRequirement> lines = env.pip;
  if (!o.pip_find_links.empty()) lines.push_back({"--find-links " + o.pip_find_links, 0});
  pypi::PipSolveOptions pip;
  pip.subdir = platform;
  pip.glibc = pypi::glibc_version(virtuals);
  pip.cache.root = cache_root_of(o);
  pip.cache.offline = o.offline;
  pip.cache.jobs = o.jobs;
  pip.cache.credentialed_channels = in.credentialed_channels;
  std::error_code ec;
  pip.base_dir = fs::absolute(o.file, ec).parent_path();
  pip.file_name = o.file;
  pip.allow_source_trees = true;
  ENVB_ASSIGN_OR_RETURN(auto solved, pypi::solve_pip_section(lines, in.records, pip));
  in.wheels = std::move(solved.wheels);
  in.source_trees = std::move(solved.source_entries);
  in.from_conda = std::move(solved.resolution.from_conda);
  in.credentialed_channels.insert(in.credentialed_channels.end(),
                                  solved.credentialed_origins.begin(),
                                  solved.credentialed_origins.end());
  return ok();
}

Result<Inputs> from_environment_file(const InstallCliOptions& o, const std::string& platform) {
  Inputs in;
  ENVB_ASSIGN_OR_RETURN(auto target, conda::Platform::parse(platform));
  ENVB_ASSIGN_OR_RETURN(auto env, conda::read_environment_file(o.file, target));
  for (const auto& w : env.warnings) std::cerr << "warning: " << w << "\n";
  for (const auto& [k, v] : env.variables) in.variables[k] = v;
  in.name = env.name;
  SolveRequest request;
  request.platforms = {platform};
  request.channels = o.channels;
  add_environment(env, request);
  for (const auto& spec : env.dependencies) {
    in.requested[spec.name()] = spec.to_string();
    in.specs.push_back(spec.to_string());
  }
  if (request.channels.empty())
    return fail(Errc::InvalidInput, o.file + ": no channels: give --channel or list them");
  request.channel_options.alias = o.channel_alias;
  request.repodata.offline = o.offline;
  if (!o.cache_dir.empty()) request.repodata.cache_dir = fs::path(o.cache_dir) / "repodata";
  ENVB_ASSIGN_OR_RETURN(auto solutions, solve_environment(request).context("solving " + o.file));
  in.credentialed_channels = credentialed_base_urls(request.channels, request.channel_options);
  for (const auto& solved : solutions.front().records) {
    ENVB_ASSIGN_OR_RETURN(auto record, to_package_record(solved));
    in.records.push_back(std::move(record));
  }
  if (!env.pip.empty())
    ENVB_TRY(solve_pip(o, env, platform, solutions.front().virtual_packages, in));
  return in;
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

Result<int> run_install(const InstallCliOptions& o) {
  if (o.file.empty() == o.lock.empty())
    return fail(Errc::InvalidInput, "give exactly one of -f/--file and --lock");
  const std::string platform = o.platform.empty() ? conda::host_subdir() : o.platform;
  std::error_code ec;
  fs::path prefix = fs::absolute(o.prefix, ec).lexically_normal();
  if (prefix.has_filename() == false) prefix = prefix.parent_path();
  Inputs in;
  if (!o.lock.empty()) {
    ENVB_ASSIGN_OR_RETURN(in, from_lock(o, platform));
  } else {
    ENVB_ASSIGN_OR_RETURN(in, from_environment_file(o, platform));
  }
  if (o.force && fs::exists(prefix, ec)) ENVB_TRY(common::remove_all(prefix));

  EnvironmentInstallRequest request;
  request.records = std::move(in.records);
  request.requested_specs = in.requested;
  request.prefix_dir = prefix;
  request.subdir = platform;
  request.jobs = o.jobs;
  request.cache.jobs = o.jobs;
  request.cache.offline = o.offline;
  request.cache.credentialed_channels = in.credentialed_channels;
  request.cache.root = cache_root_of(o);
  if (!in.wheels.empty()) {
    // Wheels are planned once the packages are: none may overwrite a package's file.
    request.plan_wheels = [&](const std::vector<PackagePlan>& packages,
                              const InstallTarget& target)
        -> Result<std::vector<WheelContent>> {
      ENVB_ASSIGN_OR_RETURN(auto plans,
                            pypi::fetch_and_plan_wheels(in.wheels, packages, target, request.cache));
      std::vector<WheelContent> out;
      for (auto& p : plans) out.push_back(std::move(p.content));
      return out;
    };
  }
  request.install.link_scripts = o.no_link_scripts ? LinkScripts::Skip : LinkScripts::Run;
  request.install.compile_pyc = !o.no_pyc;
  request.install.variables = in.variables;
  request.install.environment_name = in.name;
  request.install.requested_specs = in.specs;
  std::mutex out;
  request.install.warn = [&](const std::string& m) {
    std::lock_guard<std::mutex> lock(out);
    std::cerr << "warning: " << m << "\n";
  };
  if (!o.quiet)
    request.progress = [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(out);
      std::cerr << line << "\n";
    };
  ENVB_ASSIGN_OR_RETURN(auto report, install_environment(request));

  if (!in.source_trees.empty()) ENVB_TRY(build_source_trees(prefix, in.source_trees));

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
        {"pip_from_conda", in.from_conda},
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
  return 0;
}

}  // namespace

void register_install(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<InstallCliOptions>();
  CLI::App* cmd = app.add_subcommand("install", "Install an environment into a directory");
  cmd->add_option("-p,--prefix", options->prefix, "target directory (created; must be empty)")
      ->required();
  cmd->add_option("-f,--file", options->file, "environment.yml (solved)");
  cmd->add_option("--lock", options->lock, "conda-lock.yml or @EXPLICIT file (no solve)");
  cmd->add_option("--platform", options->platform, "target platform (default: this host's)");
  cmd->add_option("-c,--channel", options->channels, "channels (replace the file's)");
  cmd->add_option("--cache-dir", options->cache_dir,
                  "package cache (and repodata cache under repodata/)");
  cmd->add_option("--channel-alias", options->channel_alias, "base URL for channel names");
  cmd->add_option("--pip-find-links", options->pip_find_links,
                  "also look for the pip: section's wheels in DIR (as --find-links in it)");
  cmd->add_option("-j,--jobs", options->jobs, "parallel downloads/extractions (default 8)");
  cmd->add_flag("--no-link-scripts", options->no_link_scripts, "record link scripts, never run");
  cmd->add_flag("--no-pyc", options->no_pyc,
                "do not compile noarch python packages' .py files (python does it on import)");
  cmd->add_flag("--offline", options->offline, "use only cached repodata and packages");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress lines");
  cmd->add_flag("--json", options->json, "print a JSON summary on stdout");
  cmd->add_flag("--force", options->force, "remove the prefix first if it exists");
  cmd->callback([options, &outcome] { outcome.result = run_install(*options); });
}

}  // namespace envbuild::builder::cli
