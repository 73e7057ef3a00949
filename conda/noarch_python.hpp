#pragma once

// `noarch: python` packages (conda common/path/python.py, gateways/disk/create.py): where their
// files go in a given environment and the launcher scripts for their entry points. Pure
// functions over strings: the installer writes what they return.

#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "conda/package_metadata.hpp"
#include "conda/prefix_replace.hpp"

namespace envbuild::conda {

/// The environment's python, from the python record of the same solve.
struct PythonInfo {
  int major = 3;
  int minor = 0;
  /// The record's `python_site_packages_path` (CEP 17) when present, e.g. for free-threaded
  /// builds; otherwise lib/pythonX.Y/site-packages (Unix) or Lib/site-packages (Windows).
  std::string site_packages_path;
  /// From a version such as "3.11.9" or "3.13.0rc1".
  static Result<PythonInfo> from_version(std::string_view version,
                                         std::string site_packages_path = {});
  [[nodiscard]] std::string site_packages(TargetOs target) const;
};

/// Maps a package path to its place in the environment: site-packages/ -> the python's
/// site-packages, python-scripts/ -> bin/ (Scripts/ on Windows); other paths are unchanged.
std::string noarch_python_target_path(std::string_view package_path, const PythonInfo& python,
                                      TargetOs target = TargetOs::Linux);

/// The __pycache__ file a .py compiles to: "a/b.py" -> "a/__pycache__/b.cpython-311.pyc";
/// nullopt for files that are not .py.
std::optional<std::string> pyc_path(std::string_view py_path, const PythonInfo& python);

/// A file the installer must create.
struct GeneratedFile {
  std::string path;  // prefix-relative
  std::string content;
  unsigned mode = 0755;
};

/// The first line(s) that make a script run with `<prefix>/bin/python`: `#!<python>` when that
/// is at most 127 bytes (Linux; 512 macOS) and has no spaces, otherwise a /bin/sh polyglot whose
/// second line the shell runs as `exec <python> "$0" "$@"` and python reads as a string.
std::string python_shebang(std::string_view prefix, TargetOs target = TargetOs::Linux);

/// The launcher script for one entry point (Unix targets): bin/<command>, mode 0755. Windows
/// targets (Scripts/<command>-script.py + a launcher .exe) are Unsupported.
Result<GeneratedFile> entry_point_script(const EntryPoint& entry_point, std::string_view prefix,
                                         TargetOs target = TargetOs::Linux);

}  // namespace envbuild::conda
