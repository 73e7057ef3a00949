#pragma once

// pixi.lock, the lock file pixi and rattler write (rattler_lock), versions 4 to 7.
//
// Its environments (`default`, `prod`, ...) name, per platform, packages by their location
// (`- conda: URL`, `- pypi: URL or path`); the package details are listed once under
// `packages:`. Versions 4 and 5 tag each package with `kind: conda|pypi` and its `url`/`path`;
// 6 and 7 key it by `conda:`/`pypi:` and leave out the name, version and build when the file
// name gives them. Version 7 adds `conda_source:` packages, built from source by pixi: they have
// no archive to install.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

struct PixiLockPackage {
  enum class Kind { Conda, Pypi, CondaSource };
  Kind kind = Kind::Conda;
  std::string location;  // the URL (or, for pypi and conda_source, a path) as written
  std::string name;      // conda: from the entry, else from the archive's file name
  std::string version;
  std::string build;
  std::string subdir;  // conda: from the entry, else the URL's second-to-last segment
  std::optional<int64_t> build_number;
  std::string sha256;
  std::string md5;
  std::optional<int64_t> size;
  std::optional<int64_t> timestamp;
  std::vector<std::string> depends;  // conda match specs; pypi: requires_dist
  std::vector<std::string> constrains;
  std::string requires_python;  // pypi
  bool editable = false;        // pypi

  /// A URL (http, https, file, ...) rather than a path relative to the lock file.
  [[nodiscard]] bool is_url() const;
};

struct PixiLockEnvironment {
  std::string name;
  std::vector<std::string> channels;  // URLs (or names), in priority order
  std::vector<std::string> indexes;   // PyPI index URLs
  std::vector<std::string> find_links;
  struct Platform {
    std::string name;              // linux-64, osx-arm64, ...
    std::vector<size_t> packages;  // indices into PixiLockFile::packages, in file order
  };
  std::vector<Platform> platforms;
};

struct PixiLockFile {
  int version = 0;
  std::vector<PixiLockEnvironment> environments;
  std::vector<PixiLockPackage> packages;

  /// The environment called `name`; NotFound naming the ones the file has.
  Result<const PixiLockEnvironment*> environment(std::string_view name) const;
  /// The packages of `environment` for `platform`, in file order; NotFound naming the platforms
  /// the environment has.
  Result<std::vector<const PixiLockPackage*>> packages_for(const PixiLockEnvironment& environment,
                                                           std::string_view platform) const;
};

/// The versions parse_pixi_lock() reads.
inline constexpr int kPixiLockOldestVersion = 4;
inline constexpr int kPixiLockNewestVersion = 7;

/// Parses a pixi.lock. Errors (InvalidInput) start with `file:line:col:`: a version outside
/// 4..7 (Unsupported, naming it), an environment's package that the `packages:` list lacks, a
/// conda package without a URL.
Result<PixiLockFile> parse_pixi_lock(std::string_view text, std::string_view file);

/// True when `text` looks like a pixi.lock (a top-level `environments:` and `version:`), as
/// opposed to a conda-lock.yml (`metadata:` and `package:`).
bool looks_like_pixi_lock(std::string_view text);

}  // namespace envbuild::conda
