#pragma once

// Loading only the records a solve can reach.
//
// A solution holds only packages its specs reach through "depends" (constraints restrict, they
// never add a package), so a solve needs the records of those names and no others: on a large
// channel a few percent of them. Starting from the specs' names, every source is asked for the
// records of the names not yet reached, and the names those records depend on are the next
// round's, until no new name comes; a name reached through one channel x subdir is asked of
// all. Sources: a channel's CEP 16 shards (builder/solve/shards.hpp), else its whole
// repodata.json, scanned (builder/solve/repodata_scan.hpp).
//
// Each channel x subdir's reached records are written as a repodata.json into the repodata
// cache, named by its content (<cache prefix>.subset.<sha256[:16]>.json), and the entry points
// at it: the usual loader and .solv cache read it. What a solve reached is remembered
// (reach-<key>.json: the subsets' digests) under the identities of its sources (a shard index's
// digest, a repodata.json's fingerprint) and its root names, so the next solve with the same
// ones reads no shard and scans nothing. A spec whose name is a pattern ("py*") may match any
// name: then every record is loaded, as when a source cannot be scanned. A dependency whose
// name is a pattern reaches every name of the sources it matches, and one written with a
// channel ("ch:numpy", "ch::numpy") the name after it, as libsolv reads them.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/solve/repodata.hpp"
#include "builder/solve/repodata_scan.hpp"
#include "common/result.hpp"

namespace envbuild::builder {

/// A part's reached records as a repodata.json, with its index when the source wrote it record
/// by record (then the index holds the text).
struct ReachedSubset {
  std::string text;
  std::shared_ptr<const RepodataIndex> index;
  std::string_view bytes() const { return index ? index->text() : std::string_view(text); }
};

/// Records by package name, for one or more channel x subdir entries.
class RecordSource {
 public:
  struct Part {
    size_t entry = 0;      // index into the entries
    std::string identity;  // what fixes its records (for the reach cache key)
  };
  virtual ~RecordSource() = default;
  virtual std::vector<Part> parts() const = 0;
  /// Takes the records of `names` (those it has) and adds the names they depend on to
  /// `depends` (`__` virtual names left out).
  virtual Result<void> reach(const std::vector<std::string>& names, NameSet& depends) = 0;
  /// Takes the records of every name `roots` reach, when it is the only source: by default
  /// round after round through reach(); a source that fetches may instead ask for each name as
  /// soon as it is found (no round waits for its slowest fetch).
  virtual Result<void> reach_all(const NameSet& roots);
  /// The reached records of each part, in parts() order.
  virtual Result<std::vector<ReachedSubset>> subsets() = 0;
  /// Calls `f` with every package name it has records of (a dependency whose name is a
  /// pattern reaches each one the pattern matches).
  virtual void for_each_name(const std::function<void(std::string_view)>& f) const = 0;
};

/// What `depends` (names a record depends on) reaches in `sources`: its names, and in place
/// of a pattern (names_a_pattern: "lib*", "^lib(a|b)$") every name of theirs it matches, as
/// libsolv would match it.
NameSet names_reached(const NameSet& depends, const std::vector<RecordSource*>& sources);

/// The package names `specs` start from; nullopt when one is a pattern (every record needed).
std::optional<NameSet> root_names(const std::vector<std::string>& specs);

/// Points every entry the roots can reach records of at a subset of them (see above): the
/// `shards` source's entries (when given) and those read from a whole repodata.json. An entry
/// whose repodata.json cannot be scanned keeps the whole file.
Result<void> reach_subsets(std::vector<SubdirRepodata>& entries, const NameSet& roots,
                           RecordSource* shards, const RepodataOptions& options,
                           const std::filesystem::path& cache_dir);

/// Points `entry` at its subset whose content hashes to `digest` (sha256 hex).
void point_at_subset(SubdirRepodata& entry, const std::string& digest);

/// Who reads a cache file back: everyone checks it (a shard by its hash, a reach file as JSON
/// whose subsets are checked by hash), or some do not (a subset: checked when its reach file is
/// read, then read again by the loader as it is).
enum class CacheFileReaders { AllCheck, SomeDoNot };

/// Writes a cache file that is checked by its hash when read, so without fsync: straight to its
/// name when there is none and every reader checks it, else through a temp file and a rename.
Result<void> write_hashed_cache_file(const std::filesystem::path& path, std::string_view content,
                                     CacheFileReaders readers);

}  // namespace envbuild::builder
