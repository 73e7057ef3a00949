#pragma once

// Safe, atomic extraction of a conda package into a directory (what `cph x` does, but streamed
// through libarchive and hardened against hostile archives).

#include <cstdint>
#include <filesystem>

#include "common/limits.hpp"
#include "common/result.hpp"
#include "conda/package_archive.hpp"

namespace envbuild::conda {

struct ExtractOptions {
  Components components = Components::All;
  /// Decompression bombs and floods (size, expansion over the package file's size, entries,
  /// path length): an Integrity error naming the limit, checked before any byte of the entry
  /// is written. envbuild takes them from ENVBUILD_MAX_* (UnpackLimits::from_environment).
  common::UnpackLimits limits;
};

struct ExtractStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t bytes = 0;  // file data written
};

/// Extracts `package` into `destination`.
///
/// The tree is built in a temporary sibling and renamed into place only when complete, so a
/// reader never sees a half-extracted package; on error the temporary tree is removed.
/// `destination` must not exist or be an empty directory.
///
/// Safety: every path is created relative to an open directory descriptor with O_NOFOLLOW, so a
/// symlink in the archive is never followed; `..`, absolute paths, device nodes, duplicate
/// entries, symlinks whose target leaves the package (resolved through the package's other
/// symlinks: `a/b/l -> ../..` makes `c -> a/b/l/../x` leave it) and hard links to anything but an
/// earlier regular file are Integrity errors. setuid/setgid/sticky bits are stripped; files are
/// always owner-readable and -writable, directories are 0755.
Result<ExtractStats> extract_package(const std::filesystem::path& package,
                                     const std::filesystem::path& destination,
                                     const ExtractOptions& options = {});

}  // namespace envbuild::conda
