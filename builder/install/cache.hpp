#pragma once

// The envbuild cache as a whole: one root for every command (builder/install/package_cache.hpp
// open_cache_root), held for as long as a command uses it, and housekeeping.
//
//   <root>/locks/cache.lock   flock: every command holds it shared while it runs; taking it
//                             exclusively means no other envbuild process uses the cache
//
// Nothing an interrupted command leaves blocks the next one (every write is a temp file or dir
// renamed into place, and package downloads resume), but temp files and dirs of a killed
// process would waste space: the first command that finds the cache free (the exclusive lock
// taken without waiting) removes them before it starts. `envbuild cache prune` also needs the
// cache to itself, so it never removes what a running build or install is using.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "common/result.hpp"

namespace envbuild::builder {

/// The cache in use by this process: its root (checked to be the user's own) and the shared
/// lock that tells prune and the leftover sweep that it is in use. Move-only; the lock goes
/// with it.
class CacheLease {
 public:
  [[nodiscard]] const std::filesystem::path& root() const noexcept { return root_; }
  /// Leftovers of killed processes removed when this lease was taken (0 when the cache was in
  /// use by another process).
  [[nodiscard]] size_t swept() const noexcept { return swept_; }

 private:
  friend Result<CacheLease> open_cache(const std::filesystem::path&);
  CacheLease(std::filesystem::path root, common::FileLock lock, size_t swept)
      : root_(std::move(root)), lock_(std::move(lock)), swept_(swept) {}
  std::filesystem::path root_;
  common::FileLock lock_;
  size_t swept_ = 0;
};

/// Opens the cache for a command: open_cache_root(given), then its lock, shared. When no other
/// envbuild process holds it, the leftovers of interrupted ones are removed first (never
/// waiting for anyone: a process that holds the lock exclusively only ever sweeps or prunes).
Result<CacheLease> open_cache(const std::filesystem::path& given);

/// Removes the temp files and dirs of interrupted processes: everything in tmp/, and the
/// `.<name>.tmp.*` siblings of atomic writes anywhere in the cache. Unfinished downloads
/// (`pkgs/<key>/.<fn>.part`) are kept: the next fetch of the package resumes them. Only call it
/// with the cache lock held exclusively. Returns how many entries went.
Result<size_t> sweep_leftovers(const std::filesystem::path& root);

/// One kind of thing the cache holds.
struct CacheCategory {
  std::string name;         // "packages", "repodata", "layers", "plans", "blobs", "tmp"
  std::string description;  // what it is, for the table
  size_t entries = 0;
  uint64_t bytes = 0;  // on disk (hard links counted once)
  std::optional<std::chrono::system_clock::time_point> last_use;  // newest entry's
};

/// What the cache under `root` holds, by category. Reads only; needs no lock.
Result<std::vector<CacheCategory>> list_cache(const std::filesystem::path& root);

struct PruneOptions {
  /// Entries whose last use is older than this go; none: every entry (--all).
  std::optional<std::chrono::seconds> older_than;
  bool dry_run = false;
  /// Wait for the other envbuild processes that use the cache; false: an error when some do.
  bool wait = true;
  std::function<void(const std::string&)> progress;
};

struct PruneReport {
  size_t entries = 0;
  uint64_t bytes = 0;
  std::vector<CacheCategory> removed;  // by category
};

/// Removes what the options say, with the cache lock held exclusively (no build or install is
/// using anything it removes), and the leftovers of interrupted processes. A blob is removed
/// only when no remaining layer entry refers to it.
Result<PruneReport> prune_cache(const std::filesystem::path& root, const PruneOptions& options);

}  // namespace envbuild::builder
