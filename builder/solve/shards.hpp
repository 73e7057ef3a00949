#pragma once

// Sharded repodata (CEP 16): where a channel serves `<subdir>/repodata_shards.msgpack.zst`, only
// the shards a solve can reach are fetched and parsed, instead of the whole repodata.json.
//
// The index is a msgpack map {version, info {base_url, shards_base_url, subdir}, shards {name ->
// sha256 (32 bytes)}}; a shard, `<shards_base_url><sha256 hex>.msgpack.zst`, is a msgpack map
// {packages, packages.conda (file name -> record), removed}, its sha256 that of the compressed
// file. The shards of the names a solve reaches (builder/solve/reach.hpp) are fetched round by
// round (one round per dependency level, each in parallel over all sharded subdirs).
//
// Cache (<cache root>/repodata):
//   <key>.shards.msgpack.zst    the index as served, revalidated like repodata.json (ETag /
//   <key>.shards.info.json      Last-Modified); a 404 is remembered for a day ("shards": false)
//   shards/<sha256>.msgpack.zst a shard, content-addressed: verified by its hash when read, so
//                               never revalidated; a damaged one is fetched again
// The reached records go into a subset repodata.json like those of a whole one
// (builder/solve/reach.hpp).
// A shard interrupted mid-body is resumed with a Range request.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "builder/solve/dependency_names.hpp"
#include "builder/solve/reach.hpp"
#include "builder/solve/repodata.hpp"
#include "common/http.hpp"
#include "common/result.hpp"

namespace envbuild::builder {

/// The largest compressed index or shard read (conda-forge's linux-64 index is ~1 MiB).
inline constexpr size_t kMaxShardCompressedBytes = 64u << 20;
/// The largest decompressed index or shard parsed.
inline constexpr size_t kMaxShardBytes = 256u << 20;

/// The package name a match spec or dependency names: "python >=3.11" -> "python",
/// "conda-forge::numpy=1.26" -> "numpy", "pkg[version='>1']" -> "pkg".
std::string_view spec_package_name(std::string_view spec);

/// Adds the package names a record's dependency can require to `depends` (`__` virtual names
/// left out): spec_package_name in lower case ("PyYAML >=5" -> "pyyaml"), and libsolv's own
/// reading where it differs (its name starts after the last ':', so "ch:numpy" is "numpy").
/// A name that is a pattern to libsolv ("lib*", "^lib(a|b)$") is added as it is: the walk
/// reaches every name it matches (names_a_pattern, NamePattern).
void add_dependency(std::string_view spec, NameSet& depends);

/// One shard's records, as repodata.json has them (sha256 and md5 in hex) and as JSON text, and
/// the package names they depend on (`__` virtual names left out).
struct ShardRecords {
  std::map<std::string, std::string> packages;        // file name -> record (.tar.bz2)
  std::map<std::string, std::string> packages_conda;  // file name -> record (.conda)
  NameSet depends;
};

/// Reads a decompressed shard of package `name`. Integrity errors starting with `what`: not a
/// msgpack map (or nested too deep), a record that is not a map or not of package `name`.
Result<ShardRecords> parse_shard_msgpack(std::string_view raw, std::string_view name,
                                         std::string_view what);

/// A decompressed shard index, read.
struct ShardIndexDocument {
  std::optional<std::string> shards_base_url;  // info.shards_base_url as written
  std::string base_url;         // info.base_url (CEP 15) as written ("" when absent)
  std::map<std::string, std::string, std::less<>> shard_of;  // name -> sha256 hex
};

/// Reads a decompressed shard index streaming (no DOM: conda-forge's names a few hundred
/// thousand). Errors starting with `what`: not a msgpack map with a "shards" map (Integrity), a
/// "version" other than 1 (Unsupported), a shard hash that is not 32 bytes (Integrity). A key
/// given twice counts as last given, as in a DOM.
Result<ShardIndexDocument> parse_shard_index_msgpack(std::string_view raw, std::string_view what);

/// The shard indexes of the remote entries (channel x subdir) whose channel serves one, as a
/// source of records by name (builder/solve/reach.hpp); those entries are marked `sharded` (their
/// repodata.json is not fetched) and get their subset from reach_subsets. nullptr when no
/// channel serves shards (a 404, remembered a day; offline without a cached index).
/// Errors, then or while reaching: a corrupt index or shard, a hash mismatch, a record of
/// another name in a shard (Integrity or InvalidInput, naming the URL and the package);
/// network errors.
Result<std::unique_ptr<RecordSource>> open_shards(std::vector<SubdirRepodata>& entries,
                                                  const RepodataOptions& options,
                                                  const std::filesystem::path& cache_dir,
                                                  common::HttpClients& clients);

}  // namespace envbuild::builder
