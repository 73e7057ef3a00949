#pragma once

// Host checks before launch: what the environment needs (the `__cuda`, `__glibc`, `__cuda_arch`
// constraints its packages depend on) against what this host has (CUDA driver via libcuda's
// cuDriverGetVersion, glibc via gnu_get_libc_version), honouring CONDA_OVERRIDE_* like conda.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace envbuild::runtime {

/// What was found on this host. Versions are "major.minor" strings; nullopt when absent.
struct HostFacts {
  std::optional<std::string> cuda;       // max CUDA version the driver supports
  std::optional<std::string> cuda_arch;  // lowest compute capability of the visible devices
  std::optional<std::string> glibc;
  std::string cuda_source;   // "CONDA_OVERRIDE_CUDA", "libcuda (/path)", "none: <why>"
  std::string glibc_source;  // "CONDA_OVERRIDE_GLIBC", "gnu_get_libc_version"
  std::optional<std::string> driver_version;  // e.g. "535.104.05" via NVML, for messages only
};

struct DetectOptions {
  /// The libcuda to load; empty: $ENVRUN_LIBCUDA, else libcuda.so.1 from the loader's search
  /// path and the usual driver directories.
  std::string libcuda;
  /// Where to cache the driver probe for this boot (keyed by /proc boot_id and the library's
  /// identity); empty: no caching.
  std::filesystem::path cache_dir;
  /// The probe runs in a child process (a hung driver must not hang envrun); seconds.
  int timeout_seconds = 20;
};

/// Detects CUDA (unless overridden) and glibc. Never fails for a missing driver: that is a fact
/// (cuda = nullopt), not an error.
HostFacts detect_host(const DetectOptions& options);

/// One requirement line, e.g. {"__cuda", ">=12.4"}; the spec may be empty (present at all).
struct Requirement {
  std::string name;
  std::string spec;
  auto operator<=>(const Requirement&) const = default;
};

/// Parses "__cuda >=12.4", "__glibc>=2.17,<3.0.a0", "__cuda" (a conda depends entry).
Result<Requirement> parse_requirement(const std::string& text);

/// Keeps the virtual-package depends of a set of records' depends lists, deduplicated, sorted.
std::vector<Requirement> requirements_from_depends(const std::vector<std::string>& depends);

struct CheckLine {
  Requirement requirement;
  std::string found;  // what the host has, "none" when absent
  bool ok = false;
  std::string advice;  // for a failed line: what to do
};

struct CheckReport {
  std::vector<CheckLine> lines;
  [[nodiscard]] bool ok() const;
  /// Human report, one line per requirement, with advice for failures.
  [[nodiscard]] std::string to_string() const;
};

/// Checks every requirement against the host. Unknown virtual packages (__osx on Linux, ...) fail.
Result<CheckReport> check_requirements(const std::vector<Requirement>& requirements,
                                       const HostFacts& host);

}  // namespace envbuild::runtime
