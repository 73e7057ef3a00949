#pragma once

// The part of an image build every output shares (image_build.cpp): fetching, planning every
// package for the prefix, the files that belong to no package, and what the image's config says.
// The OCI build writes layers from it, the SquashFS build (squashfs_build.cpp) one image.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/image/image_build.hpp"
#include "builder/install/install.hpp"
#include "builder/pypi/wheel_install.hpp"
#include "common/fs.hpp"
#include "common/result.hpp"
#include "oci/mutate.hpp"

namespace envbuild::builder::internal {

/// Everything a plan needs while an image is written (the staging dir holds patched copies).
struct Prepared {
  ImageBuild build;
  std::vector<PackagePlan> plans;  // parallel to build.records
  // Parallel to plans: where each package is extracted, and whether its plan is staged (its
  // patched copies written); a plan from the plan cache is not, until its files are written.
  std::vector<std::filesystem::path> extracted;
  std::vector<char> staged;
  std::unique_ptr<common::TempDir> staging;
  std::filesystem::path cache_root;
  std::optional<conda::PythonInfo> python;
  std::vector<pypi::WheelPlan> wheels;  // parallel to build.wheels
};

/// Fetches and plans the packages (through the plan cache), then the wheels of the pip:
/// section, and groups them into layers.
Result<Prepared> prepare(const EnvironmentSpec& env, const ImageBuildOptions& options);

/// Plans package k with its patched copies in the staging dir (once).
Result<void> stage_plan(Prepared& p, const ImageBuildOptions& options, size_t k);

/// The files of no package, prefix-relative with their content: conda-meta/history, state, the
/// env_vars.d file, the relocation index (the wheels' records too), and the clobber and pending link-script notes (each
/// clobber and a link script that will not run also become a warning of p.build).
std::vector<std::pair<std::string, std::string>> environment_files_of(
    Prepared& p, const EnvironmentSpec& env, const ImageBuildOptions& options);

/// The config an image of the build gets: Env (PATH and CONDA_PREFIX first, then the
/// environment's variables), created, platform, and the org.envbuild.* labels under the user's.
oci::ConfigChanges environment_config(const ImageBuild& build, const EnvironmentSpec& env,
                                      const ImageBuildOptions& options);

/// The tar mtime (and SquashFS mtime) of a build: options.source_date_epoch, else
/// $SOURCE_DATE_EPOCH, else 0.
int64_t layer_mtime(const ImageBuildOptions& options);

}  // namespace envbuild::builder::internal
