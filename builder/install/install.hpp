#pragma once

// Installing a solved environment, in two steps so that image builds never copy a prefix:
//  1. plan_package(): for one extracted package, decide every installed path (noarch python
//     remapping, entry points), patch the files that hold the placeholder into private copies
//     (with relocation records), and write its conda-meta record. The plan points at the files;
//     it copies nothing that needs no patching.
//  2. install_to_prefix() materializes plans in a directory (hard links from the cache,
//     patched copies, symlinks), detects clobbers, runs link scripts, and writes the
//     environment-level files; the image builder instead turns each plan into a layer.

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/install/package_cache.hpp"
#include "common/result.hpp"
#include "conda/noarch_python.hpp"
#include "conda/package_record.hpp"
#include "conda/prefix_replace.hpp"

namespace envbuild::builder {

/// One path a package puts in the prefix.
struct PlannedFile {
  enum class Kind { File, Symlink };
  std::string path;  // prefix-relative, '/'-separated
  Kind kind = Kind::File;
  std::filesystem::path source;  // File: in the extracted cache (unpatched) or the staging dir
  std::string target;            // Symlink: link text
  bool private_copy = false;     // source is ours (patched or generated): may be moved
  bool no_link = false;          // paths.json no_link: copy, never hard link
};

/// Everything one package contributes to an environment.
struct PackagePlan {
  conda::PackageRecord record;
  std::vector<PlannedFile> files;  // sorted by path; includes conda-meta/<name>-<v>-<b>.json
  std::vector<conda::RelocationRecord> relocations;  // one per patched file, path prefix-relative
  std::vector<std::string> link_scripts;             // e.g. "bin/.pkg-post-link.sh"
  std::filesystem::path staging;  // the target's staging dir (private copies live under it)
  std::filesystem::path extracted;  // the extracted package the other files come from
  bool noarch_python = false;     // its .py files are compiled to .pyc after linking
};

struct InstallTarget {
  std::string prefix;  // absolute prefix the files are patched for ("/opt/conda")
  std::string subdir;  // the environment's platform ("linux-64"): decides the rules
  std::optional<conda::PythonInfo> python;  // from the python record of the same solve
  std::filesystem::path staging;  // where this plan's patched copies and generated files go
};

/// Plans one package extracted at `extracted`. Requires info/ from the extraction. A noarch
/// python package without a python in the environment is an InvalidInput error naming it. The
/// extracted tree is read beneath it without following a symlink: a path of paths.json that
/// passes through one (or is unsafe, or is one of envbuild's `.envbuild-*` names) is an
/// Integrity error. Paths come out normalized ("./a//b" is "a/b").
Result<PackagePlan> plan_package(const conda::PackageRecord& record,
                                 const std::filesystem::path& extracted,
                                 const std::string& requested_spec, const InstallTarget& target);

/// The python of an environment: from its `python` record, if any.
Result<std::optional<conda::PythonInfo>> python_of(
    const std::vector<conda::PackageRecord>& records);

enum class LinkScripts { Run, Skip };

/// What one wheel of the pip: section puts in the prefix (planned by
/// builder/pypi/wheel_install.hpp): no conda-meta record (its .dist-info is its record), no
/// link scripts.
struct WheelContent {
  std::string label;               // "rich-13.7.1 (wheel)", for messages
  std::vector<PlannedFile> files;  // sorted by path
  std::vector<conda::RelocationRecord> relocations;  // its scripts' shebangs
  std::filesystem::path staging;  // its private copies live under it
};

struct PrefixInstallOptions {
  LinkScripts link_scripts = LinkScripts::Run;
  /// Compile the .py files of noarch python packages with the environment's python
  /// (`python -m compileall`, as conda does) when the platform is the host's; the .pyc files
  /// are added to the packages' conda-meta records.
  bool compile_pyc = true;
  std::map<std::string, std::string> variables;  // environment.yml `variables:`
  std::string environment_name;
  std::vector<std::string> requested_specs;  // for conda-meta/history
  /// Threads that link files (when no package has a pre-link script: those go one package
  /// after the other).
  size_t jobs = 8;
  /// Warnings (clobbers, skipped scripts) go here; default: stderr.
  std::function<void(const std::string&)> warn;
  /// Wheels, placed once every package is linked and its scripts ran (as pip runs after
  /// conda), before the environment files; their relocation records join the index. A path
  /// they share with a package was refused when they were planned.
  std::vector<WheelContent> wheels;
};

struct PrefixInstallReport {
  size_t files = 0;
  size_t hardlinked = 0;
  size_t copied = 0;
  std::vector<std::string> clobbered;        // "path: pkgA, then pkgB (kept)"
  std::vector<std::string> scripts_run;      // "demo-tools: post-link"
  std::vector<std::string> scripts_pending;  // recorded, not run (other platform, or skipped)
  size_t pyc_compiled = 0;                   // .pyc files written for noarch python packages
};

/// Materializes plans (in the given, topological, order) into `prefix_dir`, which must be the
/// plans' target prefix for the result to run in place. Files are hard-linked from the package
/// cache (copied across file systems, or when paths.json says no_link); private copies are
/// moved, so a plan is used up by installing it. Pre-link scripts run before a package's files
/// are linked, post-link scripts after all packages are (conda runs them with bash and PREFIX,
/// PKG_NAME, PKG_VERSION, PKG_BUILDNUM; their stdout goes to stderr; $PREFIX/.messages.txt is
/// shown and removed). A path in two packages is a clobber: warned, the later package wins, and
/// it is recorded in conda-meta/envbuild-clobbers. Writes conda-meta/history,
/// conda-meta/state and etc/conda/env_vars.d/ (variables), and the relocation index
/// (conda-meta/envbuild-relocations.json). Link scripts run only when the environment's platform
/// is the host's.
///
/// Untrusted trees: every file operation (links, renames, copies, symlinks, directories,
/// clobbers, .pyc bookkeeping, .messages.txt) acts beneath the prefix's and the packages'
/// directory descriptors without following a symlink (common::RootDir). Packages' symlinks are
/// created, never followed: a path that lies below another package's symlink (or file) is an
/// Integrity error naming both, raised before anything is placed. conda would follow the
/// symlink and write wherever it points.
Result<PrefixInstallReport> install_to_prefix(const std::vector<PackagePlan>& plans,
                                              const std::filesystem::path& prefix_dir,
                                              const std::string& subdir,
                                              const PrefixInstallOptions& options);

/// The files every environment gets besides its packages (history, state, env_vars,
/// relocation index, with the records of options.wheels), as (path, content): shared by
/// install_to_prefix and the image builder.
std::vector<std::pair<std::string, std::string>> environment_files(
    const std::vector<PackagePlan>& plans, const std::string& prefix,
    const PrefixInstallOptions& options);

/// "linux-64" etc. for this host.
std::string host_subdir();

/// Topological order of records (dependencies first), ties by name: the order conda links in.
std::vector<size_t> topological_order(const std::vector<conda::PackageRecord>& records);

/// What `envbuild install` needs once the packages are known (from a solve or a lock file).
struct EnvironmentInstallRequest {
  /// The packages, each with url and sha256 or md5 (and size when known). Fields the source
  /// lacks (a lock file knows only URLs and hashes) are read from the package's info/index.json.
  std::vector<conda::PackageRecord> records;
  std::map<std::string, std::string> requested_specs;  // package name -> spec as requested
  std::filesystem::path prefix_dir;                    // absolute; created; must be empty or absent
  std::string subdir;                                  // the environment's platform
  PackageCacheOptions cache;
  PrefixInstallOptions install;
  size_t jobs = 8;  // planning (patching) threads; downloads use cache.jobs
  /// Progress lines ("fetched 3/25 ..."); may be called from any thread, one call at a time.
  std::function<void(const std::string&)> progress;
  /// Plans the wheels of the pip: section once the packages are planned (they may not overwrite
  /// a package's file): its answer becomes install.wheels. `target` is the prefix's, with a
  /// staging dir of their own.
  std::function<Result<std::vector<WheelContent>>(const std::vector<PackagePlan>& packages,
                                                  const InstallTarget& target)>
      plan_wheels;
};

struct EnvironmentInstallReport {
  std::vector<conda::PackageRecord> records;  // as installed, in link order
  size_t downloaded = 0;  // packages fetched now (the others came from the cache)
  size_t extracted = 0;   // packages extracted now
  uint64_t download_bytes = 0;
  size_t relocations = 0;  // patched files
  double fetch_ms = 0, plan_ms = 0, link_ms = 0;
  PrefixInstallReport prefix;
};

/// Fetches (through the cache), plans and installs an environment into request.prefix_dir.
/// Patched copies are staged in <prefix_dir>/.envbuild-staging (removed afterwards), so that
/// installing moves them instead of copying.
Result<EnvironmentInstallReport> install_environment(const EnvironmentInstallRequest& request);

/// The record of an installed package (its conda-meta/<name>-<version>-<build>.json, and so its
/// image layer): the package's own info/index.json, where it was downloaded from (`given`'s url
/// and fn, and as channel the url's directory above the subdir), and the archive's sha256, md5
/// and size. Nothing else of what named the package goes in (a solve's repodata, which may
/// patch depends, or a lock that knows only url and hashes): the same archive at the same url
/// gives the same record whichever input named it.
conda::PackageRecord installed_record(const conda::PackageRecord& given,
                                      const conda::PackageRecord& index,
                                      const CachedPackage& archive);

/// The channel part of a package URL: everything before /<subdir>/<file>
/// ("https://conda.anaconda.org/conda-forge" for .../conda-forge/linux-64/x-1-0.conda).
std::string channel_of_url(std::string_view url);

}  // namespace envbuild::builder
