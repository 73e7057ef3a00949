#pragma once

// Wheel file names (PEP 427, with PEP 425 compressed tag sets), source distribution file names,
// and the tags a *target* environment supports, in pip's order of preference (packaging.tags
// for CPython: cpXY-cpXY-<platform>, abi3 down to cp32, none, then pyXY/pyX, then any).
// The target is the solved python and the environment's platform and __glibc, never the
// machine envbuild runs on.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "conda/pypi/marker.hpp"
#include "conda/pypi/version.hpp"

namespace envbuild::conda::pypi {

struct WheelTag {
  std::string interpreter;  // "cp311", "py3"
  std::string abi;          // "cp311", "abi3", "none"
  std::string platform;     // "manylinux_2_17_x86_64", "any"
  [[nodiscard]] std::string to_string() const { return interpreter + "-" + abi + "-" + platform; }
  bool operator==(const WheelTag&) const = default;
};

/// `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
struct WheelFilename {
  std::string name;  // as in the file name (escaped: `_` for `-`)
  Version version;
  std::string version_text;  // as in the file name
  std::optional<std::pair<uint64_t, std::string>> build;  // "1abc" -> {1, "abc"}
  std::vector<WheelTag> tags;  // compressed sets expanded: py2.py3-none-any is two tags

  /// InvalidInput naming the file when it is not a wheel name.
  static Result<WheelFilename> parse(std::string_view filename);
};

/// The version of a source distribution of `project` (normalized name) from its file name
/// (`{name}-{version}.tar.gz` or `.zip`); nullopt when the name is not one.
std::optional<Version> sdist_version(std::string_view filename, std::string_view project);

/// What wheels and markers are judged against.
struct PythonTarget {
  Version python{};                      // the solved python ("3.11.9")
  std::string implementation = "cpython";  // "cpython" or "pypy"
  std::string subdir = "linux-64";       // the environment's conda platform
  /// The environment's __glibc ("2.17"): the newest manylinux it runs. nullopt: no manylinux.
  std::optional<std::pair<int, int>> glibc;

  /// From the solved python record's version and build string (pypy builds name it) and the
  /// environment's virtual packages; InvalidInput for a python version without major.minor.
  static Result<PythonTarget> make(std::string_view python_version, std::string_view python_build,
                                   std::string_view subdir, std::string_view glibc_version);
};

/// The marker environment of a target: python_version "3.11", platform_machine from the
/// subdir ("linux-aarch64" -> "aarch64"), sys_platform "linux"/"darwin"/"win32", and so on.
MarkerEnvironment marker_environment(const PythonTarget& target);

/// The platform tags of a target, best first: manylinux_2_X (and the legacy manylinux2014,
/// manylinux2010, manylinux1 aliases) from __glibc down, then linux_<arch>; macosx and win
/// platforms for those targets.
std::vector<std::string> platform_tags(const PythonTarget& target);

/// The tags the target supports, best first, with a lookup from tag to rank.
class SupportedTags {
 public:
  explicit SupportedTags(const PythonTarget& target);
  /// The rank (0 = best) of the best tag of `wheel` this target supports; nullopt: none.
  [[nodiscard]] std::optional<size_t> rank(const WheelFilename& wheel) const;
  [[nodiscard]] const std::vector<WheelTag>& tags() const noexcept { return tags_; }

 private:
  std::vector<WheelTag> tags_;
  std::unordered_map<std::string, size_t> ranks_;
};

/// The glibc a manylinux platform tag needs ("manylinux2014_x86_64" -> 2.17,
/// "manylinux_2_28_aarch64" -> 2.28); nullopt for other platforms.
std::optional<std::pair<int, int>> manylinux_glibc(std::string_view platform_tag);

}  // namespace envbuild::conda::pypi
