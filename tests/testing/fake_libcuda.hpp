#pragma once

// A fake CUDA driver library, so that the CUDA probe (conda/host_probe) and the checks built on
// it are tested without a GPU: built with cc and chosen with ENVRUN_LIBCUDA or
// DetectOptions::libcuda.

#include <filesystem>
#include <optional>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {

struct FakeLibcuda {
  /// What cuDriverGetVersion answers (12020 is CUDA 12.2); none: it is not exported, as in a
  /// broken driver.
  std::optional<int> version = 12020;
  bool init_fails = false;  // cuInit answers CUDA_ERROR_NO_DEVICE (100)
  int devices = 1;          // device d has compute capability (8 + d).6
  /// Created when the library is loaded, where given: shows whether the probe loaded it.
  std::filesystem::path mark;
};

/// Builds `lib` (its C source beside it, as <lib>.c) from `fake`.
CommandResult build_fake_libcuda(const std::filesystem::path& lib, const FakeLibcuda& fake);

}  // namespace envbuild::testing
