#pragma once

// The package cache: archives content-addressed by sha256 (md5 when that is all a lock has),
// verified before anything uses them, and their extracted trees. Shareable between users and CI
// jobs: every write is atomic, and a per-package lock file makes concurrent envbuild processes
// download and extract each package once.
//
//   <root>/pkgs/<key>/<fn>        verified archive (<key> = sha256 hex, or "md5-<hex>")
//   <root>/pkgs/<key>/<fn>.md5    its md5, when a ref without one needed it (a sha256-only lock)
//   <root>/extracted/<key>/       extracted tree (renamed into place when complete)
//   <root>/locks/<key>.lock       flock(2) held while one process fetches/extracts

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "builder/solve/cache_root.hpp"
#include "builder/solve/channel.hpp"
#include "common/http.hpp"
#include "common/limits.hpp"
#include "common/result.hpp"
#include "conda/package_record.hpp"

namespace envbuild::builder {

/// What to fetch: from a solve or a lock file.
struct PackageRef {
  std::string url;  // http(s)://, file:// or a local path
  std::string fn;   // archive file name ("zlib-1.3-h0_0.conda"); derived from url when empty
  std::string sha256;
  std::string md5;
  std::optional<uint64_t> size;
};

struct CachedPackage {
  std::filesystem::path archive;
  std::filesystem::path extracted;
  std::string sha256;       // of the archive (computed when the ref had only md5)
  std::string md5;          // of the archive (the ref's, else computed once: <archive>.md5)
  uint64_t size = 0;        // of the archive
  bool downloaded = false;  // false: it was already in the cache
  bool extracted_now = false;
};

struct PackageCacheOptions {
  std::filesystem::path root;  // default_cache_root() when empty
  size_t jobs = 8;             // parallel downloads + extractions
  bool offline = false;        // never download: a missing package is an error naming it
  common::HttpOptions http;
  /// Channel base URLs with credentials (builder/solve/channel.hpp credentialed_base_urls()): a
  /// package URL under the redacted form of one is downloaded with its credentials.
  std::vector<std::string> credentialed_channels;
  /// Mirrors (builder/solve/channel.hpp): a package URL under a mirror's original is downloaded from
  /// the mirror; the cache key (the sha256) is the same.
  std::vector<Mirror> mirrors;
  /// Called with each chunk of archive bytes as it arrives (progress); from any thread.
  std::function<void(uint64_t bytes)> on_bytes;
  /// Bounds on extracting a package; unset: the defaults with ENVBUILD_MAX_* applied.
  std::optional<common::UnpackLimits> limits;
  /// Called on the worker thread after package `index` is ready, before that worker takes the
  /// next package: progress output, or work on the package (planning its installation) that
  /// then overlaps the other downloads. May be called from any thread; an error stops the batch
  /// like a failed download.
  std::function<Result<void>(size_t index, const PackageRef&, const CachedPackage&)> on_ready;
};

class PackageCache {
 public:
  explicit PackageCache(PackageCacheOptions options);

  /// Downloads (unless cached), verifies and extracts every package. `jobs` workers download;
  /// each verified archive goes to a pool of extraction workers (one per CPU, at most `jobs`)
  /// while the downloads go on. The longest jobs start first: .tar.bz2 archives (bzip2
  /// decompresses many times slower than zstd) and big packages where sizes are known. The
  /// first error stops the batch (archives already downloaded are still extracted into the
  /// cache); the error names the package and URL.
  Result<std::vector<CachedPackage>> fetch(const std::vector<PackageRef>& packages) const;

  /// One package, on the calling thread.
  Result<CachedPackage> fetch_one(const PackageRef& package, common::HttpClient& client) const;

  [[nodiscard]] const std::filesystem::path& root() const noexcept { return options_.root; }

 private:
  struct Held;  // a verified archive in the cache, its key's lock still held
  Result<Held> acquire(const PackageRef& package, common::HttpClient& client) const;
  Result<void> extract(Held& held) const;
  Result<std::filesystem::path> download(const PackageRef& package, const std::string& key,
                                         common::HttpClient& client, bool& downloaded) const;
  PackageCacheOptions options_;
  std::optional<Error> root_error_;  // no root given and none by default: every fetch fails
};

/// info/index.json of an extracted package, read beneath it without following a symlink (the
/// tree is an untrusted package's).
Result<conda::PackageRecord> extracted_index_record(const std::filesystem::path& extracted);

/// The cache key of a ref: its sha256, else "md5-<md5>"; empty when it has neither.
std::string cache_key(const PackageRef& package);
/// The archive name of a ref: fn, else the last URL segment.
std::string archive_name(const PackageRef& package);

}  // namespace envbuild::builder
