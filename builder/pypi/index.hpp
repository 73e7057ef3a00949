#pragma once

// Where wheels and their metadata come from, without pip: simple indexes (PEP 691 JSON or
// PEP 503 HTML, by content negotiation), find-links directories and pages, PEP 658/714 metadata
// files when an index serves them, else the wheel's own METADATA (read in place for a local
// wheel; a remote one is downloaded, verified, into the package cache, where installing finds it
// again).
//
// Credentials: an index URL may hold `user:password@`; links on that index's host carry it
// redacted (`user:***@`, what lock files record) and downloads put it back (with_credentials);
// links to any other host get none. Hosts in ~/.netrc get theirs from curl.

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "builder/install/package_cache.hpp"
#include "builder/pypi/simple_index.hpp"
#include "common/http.hpp"
#include "common/result.hpp"
#include "conda/pypi/metadata.hpp"

namespace envbuild::builder::pypi {

/// Where a resolver gets distribution files and their metadata: the index below, or a table in
/// memory (tests).
class DistributionSource {
 public:
  virtual ~DistributionSource() = default;
  /// Every file of `project` (a normalized name) the sources list, wheels and sdists alike;
  /// an unknown project has none.
  virtual Result<std::vector<DistributionFile>> files(const std::string& project) = 0;
  /// The core metadata of a wheel.
  virtual Result<conda::pypi::CoreMetadata> metadata(const DistributionFile& wheel) = 0;
};

inline constexpr std::string_view kDefaultIndexUrl = "https://pypi.org/simple";

struct IndexOptions {
  /// Simple API roots, the primary (--index-url) first; may hold credentials.
  std::vector<std::string> index_urls{std::string(kDefaultIndexUrl)};
  /// Directories (absolute) or URLs of pages that link to distribution files.
  std::vector<std::string> find_links;
  /// The package cache: downloaded wheels go there, metadata under <root>/pypi-metadata.
  PackageCacheOptions cache;
};

/// The real source. One request at a time (a resolver asks one question after the other); the
/// pages of a run are kept in memory, metadata on disk by the wheel's sha256.
class PackageIndex final : public DistributionSource {
 public:
  explicit PackageIndex(IndexOptions options);
  ~PackageIndex() override;

  Result<std::vector<DistributionFile>> files(const std::string& project) override;
  Result<conda::pypi::CoreMetadata> metadata(const DistributionFile& wheel) override;

  /// The origins (scheme://user:password@host) whose credentials downloads put back: give them
  /// to PackageCacheOptions::credentialed_channels. May hold secrets: never print.
  [[nodiscard]] const std::vector<std::string>& credentialed_origins() const noexcept {
    return credentialed_;
  }
  /// Counters for --timings and tests.
  struct Stats {
    size_t pages = 0;           // project pages fetched
    size_t metadata_files = 0;  // PEP 658 files fetched
    size_t wheels_read = 0;     // METADATA read from a wheel (local or downloaded)
    size_t metadata_cached = 0;
  };
  [[nodiscard]] Stats stats() const;

 private:
  Result<std::vector<DistributionFile>> index_page(const std::string& root,
                                                   const std::string& project);
  Result<std::vector<DistributionFile>> find_links_files(const std::string& location);
  Result<std::string> get(const std::string& url, std::string* content_type);

  IndexOptions options_;
  std::vector<std::string> credentialed_;
  mutable std::mutex mutex_;  // guards everything below
  std::unique_ptr<common::HttpClient> client_;
  std::map<std::string, std::vector<DistributionFile>> pages_;       // project -> files
  std::map<std::string, std::vector<DistributionFile>> find_links_;  // location -> files
  Stats stats_;
};

/// A wheel file of the index in the package cache (downloaded, verified, extracted): the ref to
/// give PackageCache (sha256 computed first for a file an index lists without one, which only a
/// local file or a find-links page can do).
Result<PackageRef> package_ref(const DistributionFile& wheel, const PackageCacheOptions& cache);

/// file:///x -> /x; a plain path stays; nullopt for other URLs.
std::optional<std::filesystem::path> local_path(std::string_view url);

}  // namespace envbuild::builder::pypi
