#pragma once

// Virtual packages (`__cuda`, `__glibc`, `__linux`, `__unix`, `__osx`, `__win`, `__archspec`): what
// a platform offers the solver, detected on this host by the one host probe (host_probe.hpp) when
// the platform is the host's, then CONDA_OVERRIDE_*, then what the user gave, as conda does.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

struct VirtualPackage {
  std::string name;  // "__cuda"
  std::string version;
  std::string build = "0";
  auto operator<=>(const VirtualPackage&) const = default;
};

/// "__cuda=12.4", "__archspec=1=x86_64_v3", "__unix".
Result<VirtualPackage> parse_virtual_package(std::string_view text);

/// Reads an environment variable; std::nullopt when unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

/// The virtual packages of `platform`: detected when it is the host's, then CONDA_OVERRIDE_*,
/// then `explicit_packages`. Sorted by name. The host's CUDA driver is asked only when neither
/// replaces its answer, and its answer is kept in `probe_cache_dir` for this boot (as envrun
/// keeps it: conda/host_probe.hpp) where one is given, so that a solve does not load libcuda
/// each time.
std::vector<VirtualPackage> virtual_packages_for(
    std::string_view platform, const std::vector<VirtualPackage>& explicit_packages,
    const EnvLookup& env, const std::filesystem::path& probe_cache_dir = {});

}  // namespace envbuild::conda
