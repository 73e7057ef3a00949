#pragma once

// The PyPI part of an environment, after its conda part (conda first): the pip: section parsed,
// the Python distributions the solved conda packages install found in those packages (fetched
// through the package cache, which installing and building use next anyway), and the rest
// resolved against the section's indexes and find-links. The answer is a list of wheels that
// `lock` writes as `manager: pip` entries and `install` and `build` put into the prefix.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "builder/install/package_cache.hpp"
#include "builder/pypi/resolver.hpp"
#include "builder/pypi/wheel_install.hpp"
#include "common/result.hpp"
#include "conda/environment_file.hpp"
#include "conda/package_record.hpp"
#include "conda/pypi/pip_section.hpp"
#include "conda/virtual_package.hpp"

namespace envbuild::builder::pypi {

struct PipSolveOptions {
  std::string subdir;       // the environment's platform
  std::string glibc;        // its __glibc ("2.17"); empty: no manylinux wheel fits
  PackageCacheOptions cache;  // where conda packages and wheels go
  std::filesystem::path base_dir;  // the environment file's directory (-r, relative paths)
  std::string file_name = "environment.yml";
  /// Local source trees, -e and VCS requirements: for `install` the environment's own pip
  /// builds them afterwards; for images and lock files they are an error.
  bool allow_source_trees = false;
  /// Not empty: these find-links locations instead of the section's (as -c replaces the
  /// file's channels), e.g. where a build system put the wheels.
  std::vector<std::string> find_links;
};

struct PipSolution {
  conda::pypi::PipSection section;
  Resolution resolution;
  std::vector<WheelToInstall> wheels;  // sorted by name, sha256 always known
  std::vector<conda::pypi::PipEntry> source_entries;  // when allowed
  /// Origins with credentials (the section's index URLs): give them to the package cache
  /// as credentialed_channels. Secrets: never print.
  std::vector<std::string> credentialed_origins;
};

/// Solves `lines` (an environment file's pip: list) for an environment whose conda part is
/// `records` (solved: name, version, build, depends, url, sha256). Errors: InvalidInput for the
/// section (file:line) and for source trees where not allowed (naming them), Unsatisfiable
/// with the resolver's explanation, and whatever fetching says.
Result<PipSolution> solve_pip_section(const std::vector<conda::PipRequirement>& lines,
                                      const std::vector<conda::PackageRecord>& records,
                                      const PipSolveOptions& options);

/// The distributions `records` install, read from their extracted packages (`extracted`,
/// parallel to `records`): by normalized name.
Result<std::map<std::string, CondaDistribution>> conda_distributions(
    const std::vector<conda::PackageRecord>& records,
    const std::vector<std::filesystem::path>& extracted);

/// The wheels of `wheels` fetched into the package cache (verified by sha256, extracted) and
/// planned for `target` (one staging dir each under target.staging); the overwrites of conda
/// files in `packages` or of each other are an error naming both.
Result<std::vector<WheelPlan>> fetch_and_plan_wheels(const std::vector<WheelToInstall>& wheels,
                                                     const std::vector<PackagePlan>& packages,
                                                     const InstallTarget& target,
                                                     const PackageCacheOptions& cache);

/// The version of the __glibc among a solve's virtual packages ("" when there is none).
std::string glibc_version(const std::vector<conda::VirtualPackage>& virtual_packages);

/// The python of the records (its version and build) and the glibc as a wheel target.
Result<conda::pypi::PythonTarget> python_target(const std::vector<conda::PackageRecord>& records,
                                                const std::string& subdir,
                                                const std::string& glibc);

}  // namespace envbuild::builder::pypi
