#pragma once

// The preparation both ways of placing an environment share: install_environment() into a
// directory (install.cpp) and the image builder into layers (builder/image/). Each completes
// the record of every fetched package the same way, and reads the same two facts off the plans
// in link order: the paths two packages both install (clobbers: the later package wins, as in
// conda) and the link scripts they carry. One home, so that a prefix and an image of the same
// environment say the same in conda-meta/envbuild-clobbers and envbuild-pending-scripts.

#include <string>
#include <vector>

#include "builder/install/install.hpp"
#include "builder/install/package_cache.hpp"
#include "common/result.hpp"
#include "conda/package_record.hpp"

namespace envbuild::builder {

/// "name-version-build": how messages and the clobber notes name a package.
std::string package_label(const conda::PackageRecord& record);

/// The record a fetched package is installed with (installed_record()), once its own
/// info/index.json is read and agrees with the name `given` asks for (an empty name asks for
/// none, as a lock file's URL-only entry). A different name is an Integrity error naming the
/// archive: a lock or repodata that points a name at another package's file.
Result<conda::PackageRecord> complete_record(const conda::PackageRecord& given,
                                             const PackageRef& ref, const CachedPackage& cached);

/// A path that two packages both install.
struct Clobber {
  std::string path;     // prefix-relative
  std::string earlier;  // package_label() of the package that loses it
  std::string later;    // ... of the package that keeps it (the later in link order)
  /// "path: earlier, then later (kept)": one line of conda-meta/envbuild-clobbers.
  std::string note() const;
};

/// A link script one package carries.
struct LinkScript {
  std::string package;  // the package's name
  std::string path;     // prefix-relative ("bin/.demo-post-link.sh")
  /// "pre-link" or "post-link", from the script's name.
  std::string kind() const;
  /// "name: post-link (bin/.demo-post-link.sh)": one line of envbuild-pending-scripts.
  std::string note() const;
};

/// What a set of plans in link order means for the environment as a whole.
struct PreparedEnvironment {
  /// In link order, each package's files in its plan's (path) order; a path that three packages
  /// install is two clobbers.
  std::vector<Clobber> clobbers;
  std::vector<LinkScript> link_scripts;  // in link order, each package's in its plan's order
};

/// Reads the clobbers and link scripts off `plans` (in link order). Pure: nothing is touched.
PreparedEnvironment prepare_environment(const std::vector<PackagePlan>& plans);

}  // namespace envbuild::builder
