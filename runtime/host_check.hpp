#pragma once

// Host checks before launch: what the environment needs (the `__cuda`, `__glibc`, `__cuda_arch`
// constraints its packages depend on) against what this host has (conda/host_probe.hpp: CUDA
// driver via libcuda's cuDriverGetVersion, glibc via gnu_get_libc_version), honouring
// CONDA_OVERRIDE_* like conda.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "conda/host_probe.hpp"
#include "conda/image_contract.hpp"

namespace envbuild::runtime {

// The host probe is conda's (conda/host_probe.hpp), shared with the solver.
using conda::detect_host;
using conda::DetectOptions;
using conda::HostFacts;

// What an environment needs is the image contract's (conda/image_contract.hpp).
using Requirement = conda::HostRequirement;
using conda::host_requirements;

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
