#pragma once

// Installing a wheel the way pypa/installer does (PEP 427, the "binary distribution format"
// specification), planned like a conda package so that `install` links it from the package
// cache and `build` writes it straight into a layer:
//   - the root and .data/purelib, .data/platlib go to the environment's site-packages (conda
//     has one), .data/scripts to bin/ (a `#!python` first line becomes the environment's
//     python), .data/headers to include/pythonX.Y/<name>/, .data/data to the prefix itself;
//   - console and GUI entry points become bin/ launchers with a shebang to the environment's
//     python; shebangs get relocation records (the same as conda's), so moved prefixes and
//     envrun keep working;
//   - the .dist-info gets INSTALLER, REQUESTED (a requirement of the pip: section),
//     direct_url.json (PEP 610, for `name @ URL` and wheel paths) and a rewritten RECORD.
// No .pyc is written: python compiles on import where the prefix is writable.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "builder/install/install.hpp"
#include "common/result.hpp"

namespace envbuild::builder::pypi {

/// A wheel of the environment, from a resolution or a lock file.
struct WheelToInstall {
  std::string name;  // normalized
  std::string version;
  std::string filename;
  std::string url;  // as locked: credentials redacted
  std::string sha256;
  bool requested = false;
  bool direct_url = false;
  /// What it requires (normalized name -> specifier): lock files record it, image layering
  /// orders by it.
  std::vector<std::pair<std::string, std::string>> dependencies;
  bool operator==(const WheelToInstall&) const = default;
};

struct WheelPlan {
  WheelToInstall wheel;
  WheelContent content;
  uint64_t size = 0;  // installed bytes
};

/// Plans the wheel extracted at `extracted` for `target` (its python must be known). A wheel
/// whose .dist-info does not match its name, with a path that leaves the prefix, a .data
/// scheme PEP 427 does not define, or a symlink, is an error naming it.
Result<WheelPlan> plan_wheel(const WheelToInstall& wheel, const std::filesystem::path& extracted,
                             const InstallTarget& target);

/// A path that two of them would install: an InvalidInput error naming the path and both
/// owners (a wheel never overwrites a conda package's file, nor another wheel's).
Result<void> check_overwrites(const std::vector<PackagePlan>& packages,
                              const std::vector<WheelPlan>& wheels);

/// "rich-13.7.1 (wheel)".
std::string wheel_label(const WheelToInstall& wheel);

}  // namespace envbuild::builder::pypi
