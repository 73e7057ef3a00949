#pragma once

// The tail of a run shared by the warm path (launch_warm.cpp) and the cold one (launch.cpp).

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/cache.hpp"
#include "runtime/launch.hpp"

namespace envbuild::runtime::internal {

/// The host check of `requirements` unless options.check is Skip (probe cached in <root>/host).
Result<void> enforce_host_check(const std::vector<std::string>& requirements,
                                const RunOptions& options, const std::filesystem::path& root);

/// The error with its exit code.
RunFailure failure_of(Error e);

/// Checks the host, activates and execs; returns only on failure.
RunFailure launch_materialized(Materialized env, std::vector<std::string> command,
                               const RunOptions& options, const std::filesystem::path& root);

}  // namespace envbuild::runtime::internal
