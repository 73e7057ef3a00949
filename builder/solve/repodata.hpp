#pragma once

// Fetching repodata.json for channel x subdir, in parallel, through an on-disk cache.
//
// Cache (<cache root>/repodata, see builder/solve/cache_root.hpp default_cache_root()), one entry
// per subdir URL, named by sha256(url)[:16]:
//   <key>.json       the repodata body (decompressed), replaced atomically
//   <key>.info.json  {"url" (redacted), "etag", "last_modified", "fetched_at", "zst"}
//   <key>.lock       flock held while the entry is updated
//   <key>.<k2>.solv  libsolv's binary form, see builder/solve/solve.hpp
// A refresh sends If-None-Match / If-Modified-Since, so an unchanged subdir costs one 304 and no
// body. repodata.json.zst is asked for first (about 1/5 of the bytes) and decompressed while it
// streams; a server without it (404) is remembered ("zst": false) and asked for the .json.
// Local channels (file://) are read in place, never copied.
// A 404 for noarch means the channel does not exist (an error naming the URL); a 404 for a
// platform subdir is an empty subdir, as in conda (many channels are noarch only).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "builder/solve/channel.hpp"
#include "common/http.hpp"
#include "common/result.hpp"

namespace envbuild::common {
class LaterWork;
}

namespace envbuild::builder {

class RepodataIndex;

struct RepodataOptions {
  std::filesystem::path cache_dir;  // empty: default_cache_root() / "repodata"
  bool offline = false;             // cache only; a missing entry is an error naming it
  bool prefer_zst = true;
  /// CEP 16: fetch only the reachable shards where a channel serves them (builder/solve/shards).
  bool shards = true;
  size_t jobs = 8;
  common::HttpOptions http;
  /// Where given, the shards fetched are written to the cache later, when the caller starts
  /// it (a solve: once the pool is loaded, on the core its one-threaded solve leaves idle),
  /// and a write that fails is let go: they are checked by their hash when read, so one not
  /// written, or cut short, is only a miss. Else before fetch_repodata returns, and a write
  /// that fails is an error, as for every other cache file it writes.
  common::LaterWork* later_cache_writes = nullptr;
};

/// One fetched channel/subdir.
struct SubdirRepodata {
  Channel channel;
  std::string subdir;
  int priority = 0;            // higher wins: the first channel has the highest
  std::filesystem::path path;  // repodata.json to read (cache entry or the local file)
  bool missing = false;        // a platform subdir the channel does not have (empty)
  /// What identifies this content: ETag/Last-Modified for remote, size+mtime for local files.
  std::string fingerprint;
  std::filesystem::path cache_prefix;  // <cache>/<key>, for sibling files (.solv)
  bool transferred_body = false;       // false: 304, offline, or local
  uint64_t bytes_transferred = 0;      // over the wire (compressed when .zst)
  int http_attempts = 0;
  std::string source;  // redacted URL actually read ("…/repodata.json.zst")
  /// Read from CEP 16 shards: `path` holds only the records reachable from the requested names.
  bool sharded = false;
  /// The index of the subset at `path`, when this process wrote it record by record
  /// (builder/solve/reach.hpp): the loader cuts it into pieces without reading it again.
  std::shared_ptr<const RepodataIndex> subset_index;
};

/// Fetches every channel x subdir (channel order = priority). Results follow the same order:
/// channel-major, subdirs in the order given. `roots` (match specs or package names) are what a
/// solve asks for: with them and options.shards, channels that serve shards (CEP 16) give only
/// the records those names reach (builder/solve/shards.hpp); without them every record.
Result<std::vector<SubdirRepodata>> fetch_repodata(const std::vector<Channel>& channels,
                                                   const std::vector<std::string>& subdirs,
                                                   const RepodataOptions& options,
                                                   const std::vector<std::string>& roots = {});

}  // namespace envbuild::builder
