#pragma once

// What a launch reads from a prefix's own files (an unpacked image, or a mounted SquashFS image):
// the activation variables and scripts and the records' host requirements. The prefix is
// untrusted: every file is read beneath it, regular files only, size-bounded, no symlink followed.

#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "common/root_dir.hpp"

namespace envbuild::runtime::internal {

/// The `__` depends of every conda-meta/*.json record of the prefix ("__glibc >=2.17").
Result<std::vector<std::string>> record_requirements(const common::RootDir& prefix);

/// etc/conda/env_vars.d/*.json then conda-meta/state's "env_vars" (conda's order: later wins).
Result<std::vector<std::pair<std::string, std::string>>> read_env_vars(
    const common::RootDir& prefix);

/// The names of etc/conda/activate.d/*.sh, sorted.
Result<std::vector<std::string>> activate_script_names(const common::RootDir& prefix);

}  // namespace envbuild::runtime::internal
