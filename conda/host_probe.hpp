#pragma once

// What this host offers an environment: the CUDA driver's version (cuDriverGetVersion from
// libcuda, asked in a forked child with a timeout, so a hung driver cannot hang the caller), the
// lowest compute capability of its GPUs, glibc and the kernel, with CONDA_OVERRIDE_* honoured as
// conda does. The one host probe: the solver's virtual packages (virtual_package.hpp) and envrun's
// check before launch both ask it.

#include <filesystem>
#include <optional>
#include <string>

namespace envbuild::conda {

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
  /// The probe runs in a child process (a hung driver must not hang the caller); seconds.
  int timeout_seconds = 20;
  /// Apply CONDA_OVERRIDE_CUDA / _CUDA_ARCH / _GLIBC from the process environment. Off for
  /// callers that apply overrides from an environment of their own (the solver's tests).
  bool honour_overrides = true;
};

/// Detects CUDA (unless overridden) and glibc. Never fails for a missing driver: that is a fact
/// (cuda = nullopt), not an error.
HostFacts detect_host(const DetectOptions& options);

/// The running kernel's version ("6.1.0"): the leading digits and dots of uname's release.
std::string kernel_release();

/// glibc's version as major.minor ("2.36").
std::string glibc_major_minor();

}  // namespace envbuild::conda
