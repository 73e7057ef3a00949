#pragma once

// The root of the one cache every envbuild command uses. It lives in the lowest of builder's
// libraries (the solver) because the repodata cache is its first user; the package cache,
// plans, layers and housekeeping (builder/install/cache.hpp) are below the same root.

#include <filesystem>

#include "common/result.hpp"

namespace envbuild::builder {

/// The one cache of every envbuild command (packages, extracted/, repodata/, layers/, plans/,
/// oci/, tmp/, host/: the CUDA probe kept for the boot): $ENVBUILD_CACHE, else $XDG_CACHE_HOME/envbuild, else ~/.cache/envbuild (the
/// password database's home when HOME is unset). There is no shared fallback (/tmp): a cache
/// another user made first would be theirs to fill. Not checked; see open_cache_root().
Result<std::filesystem::path> default_cache_root();

/// The cache root a command uses: `given` (--cache-dir) made absolute, else
/// default_cache_root(); created 0700 and checked to be the user's own
/// (common::ensure_private_dir): what it holds is later trusted (extracted packages go into
/// prefixes and images), so one another user could write into is refused (InvalidInput).
Result<std::filesystem::path> open_cache_root(const std::filesystem::path& given);

/// Marks a cache entry as used now (its mtime, not following a symlink), which is what "last
/// use" and `envbuild cache prune --older-than` go by.
void touch_used(const std::filesystem::path& entry);

}  // namespace envbuild::builder
