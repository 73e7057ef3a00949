#pragma once

// Python distributions a conda package installs: the `*.dist-info` and `*.egg-info` entries of
// its site-packages (conda-meta `files` / info/paths.json), so that the PyPI part of an
// environment takes them as installed (conda first) and never installs them again.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace envbuild::conda::pypi {

/// Where one distribution's metadata sits in a package.
struct DistributionMetadataPath {
  std::string path;  // package-relative: ".../site-packages/x-1.0.dist-info/METADATA",
                     // ".../x-1.0-py3.11.egg-info/PKG-INFO", or an egg-info file itself
  std::string name_hint;     // normalized name from the directory name
  std::string version_hint;  // version text from the directory name ("" when it has none)
};

/// The metadata files of the distributions among `paths` (a package's files, '/'-separated):
/// one per `<site-packages>/<dir>.dist-info/METADATA`, `<dir>.egg-info/PKG-INFO` and
/// `<file>.egg-info` directly in a site-packages directory (any lib/pythonX.Y/site-packages,
/// noarch's site-packages/, or CEP 17's python_site_packages_path).
std::vector<DistributionMetadataPath> distribution_metadata_paths(
    const std::vector<std::string>& paths);

}  // namespace envbuild::conda::pypi
