// Loading repodata into a pool through the .solv cache, parsing large files in pieces at once.
//
// libsolv's JSON reader takes ~10 ms per MB on one core and a pool takes one thread. A large
// repodata.json (or the subset a solve reaches) is therefore cut into pieces by package name
// (RepodataIndex::split_names: every record of a name, both package formats, in one piece, as
// libsolv's .conda-over-.tar.bz2 choice needs), each piece parsed by its own pool on its own
// thread and written as a .solv, and the pieces read into the solve's pool in order, one repo
// each. Records of one name keep their order and their repo, so every choice libsolv makes
// between builds is the one the whole file gives. The pieces are the cache: a later solve reads
// them, as it read one .solv before.
//
// Cache layout per subdir and fingerprint: <stem>.<i>.solv (+ .meta) for each piece and
// <stem>.pieces, written last, saying how many there are.

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "builder/solve/repodata_scan.hpp"
#include "builder/solve/solve.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/parallel.hpp"
#include "common/version.hpp"

namespace envbuild::builder {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// A piece's share of a repodata.json: smaller files are parsed whole, on the calling thread.
constexpr size_t kPieceBytes = size_t{2} << 20;
/// At most this many pieces (a 300 MB channel: 64 pieces of ~5 MB).
constexpr size_t kMaxPieces = 64;
/// The largest repodata.json read into memory to be cut (as the loader reads them).
constexpr size_t kMaxRepodataBytes = size_t{4} << 30;
constexpr std::string_view kPiecesMagic = "envbuild solv pieces\n";

/// The .solv cache of one subdir's repodata at one fingerprint.
struct SolvCache {
  std::string stem;  // <cache prefix>.<key>
  std::filesystem::path list() const { return stem + ".pieces"; }
  std::filesystem::path piece(size_t i) const { return stem + "." + std::to_string(i) + ".solv"; }
};

std::optional<SolvCache> solv_cache_of(const SubdirRepodata& entry, bool use_solv_cache) {
  if (!use_solv_cache || entry.cache_prefix.empty() || entry.fingerprint.empty())
    return std::nullopt;
  // "meta-aside": records' result-only fields in <solv>.meta; "ties-by-timestamp": build
  // numbers ranked by timestamp (rank_ties_by_timestamp); "pieces": the layout above.
  const std::string key = common::sha256_hex(
      solv::libsolv_version() + "\n" + kVersion + "\nmeta-aside\nties-by-timestamp\npieces\n" +
      entry.channel.url(entry.subdir, "") + "\n" + entry.fingerprint);
  return SolvCache{entry.cache_prefix.string() + "." + key.substr(0, 16)};
}

/// The number of pieces the cache's list names, when it is whole.
std::optional<size_t> cached_pieces(const SolvCache& cache) {
  auto text = common::read_file(cache.list(), 64);
  if (!text || !text->starts_with(kPiecesMagic)) return std::nullopt;
  size_t count = 0;
  const std::string digits = text->substr(kPiecesMagic.size());
  if (digits.empty() || digits.size() > 3 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  count = std::stoul(digits);
  if (count == 0 || count > kMaxPieces) return std::nullopt;
  return count;
}

/// Reads the cached pieces into `pool`; false (and nothing left in the pool) when one is
/// missing or damaged.
bool load_cached(solv::Pool& pool, const solv::RepoInfo& info, const SolvCache& cache,
                 size_t count, SolveStats& stats) {
  std::vector<solv::RepoId> loaded;
  for (size_t i = 0; i < count; ++i) {
    auto id = pool.add_repo_solv_file(info, cache.piece(i));
    if (!id) {
      for (solv::RepoId done : loaded) pool.remove_repo(done);
      return false;
    }
    loaded.push_back(*id);
  }
  for (solv::RepoId id : loaded) stats.records_loaded += pool.repo_size(id);
  return true;
}

/// Removes this subdir's .solv files of other fingerprints (and a damaged set of this one).
void remove_stale(const SubdirRepodata& entry) {
  std::error_code ec;
  const std::string stem = entry.cache_prefix.filename().string() + ".";
  for (const auto& f : std::filesystem::directory_iterator(entry.cache_prefix.parent_path(), ec)) {
    const std::string name = f.path().filename().string();
    if (name.starts_with(stem) &&
        (name.ends_with(".solv") || name.ends_with(".solv.meta") || name.ends_with(".pieces")))
      std::filesystem::remove(f.path(), ec);
  }
}

Result<void> write_list(const SolvCache& cache, size_t count) {
  ENVB_ASSIGN_OR_RETURN(auto file, common::AtomicFile::create(cache.list()));
  ENVB_TRY(file.write(std::string(kPiecesMagic) + std::to_string(count)));
  return file.commit_unsynced();
}

/// The pieces of the repodata.json at `path`, or nullopt when it is parsed whole: a small file,
/// or one the scan refuses (libsolv's parser then reports what is wrong).
std::optional<std::vector<std::string>> cut_into_pieces(const std::filesystem::path& path,
                                                        size_t jobs) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size < 2 * kPieceBytes) return std::nullopt;
  auto text = common::read_file(path, kMaxRepodataBytes);
  if (!text) return std::nullopt;
  auto index = RepodataIndex::build(std::move(*text), path.string());
  if (!index) return std::nullopt;
  const std::vector<NameSet> groups =
      index->split_names(std::clamp<size_t>(size / kPieceBytes, 1, kMaxPieces));
  if (groups.size() < 2) return std::nullopt;
  std::vector<std::string> pieces(groups.size());
  (void)common::for_each_index(groups.size(), jobs, [&](size_t i) -> Result<void> {
    pieces[i] = index->subset(groups[i]);
    return ok();
  });
  return pieces;
}

/// Parses each piece in a pool of its own, on `jobs` threads, and writes it to the cache.
Result<void> parse_pieces(const solv::RepoInfo& info, const SubdirRepodata& entry,
                          std::vector<std::string> pieces, const SolvCache& cache, size_t jobs) {
  return common::for_each_index(pieces.size(), jobs, [&](size_t i) -> Result<void> {
    solv::Pool side;
    const std::string what =
        entry.path.string() + " (piece " + std::to_string(i + 1) + " of " +
        std::to_string(pieces.size()) + ")";
    ENVB_ASSIGN_OR_RETURN(solv::RepoId id,
                          side.add_repo_json_text(info, std::move(pieces[i]), what));
    return side.write_repo_solv(id, cache.piece(i));
  });
}

Result<void> load_entry(solv::Pool& pool, const SubdirRepodata& entry, bool use_solv_cache,
                        SolveStats& stats) {
  solv::RepoInfo info{entry.channel.name, entry.subdir, common::redact_url(entry.channel.base_url),
                      entry.priority, entry.subdir == "noarch" ? 0 : 1};
  const std::optional<SolvCache> cache = solv_cache_of(entry, use_solv_cache);
  if (cache) {
    if (auto count = cached_pieces(*cache)) {
      const auto read_start = Clock::now();
      const bool hit = load_cached(pool, info, *cache, *count, stats);
      stats.solv_read_ms += ms_since(read_start);
      if (hit) {
        ++stats.solv_hits;
        return ok();
      }
    }
    remove_stale(entry);  // and a damaged set of this fingerprint: rebuilt from the JSON
  }
  auto context = [&](Error e) {
    return std::move(e).with_context("loading repodata of channel " + entry.channel.name +
                                     " subdir " + entry.subdir + " (from " + entry.source + ")");
  };
  std::error_code size_ec;
  if (auto size = std::filesystem::file_size(entry.path, size_ec); !size_ec)
    stats.json_bytes += size;
  const size_t jobs = std::max(1u, std::thread::hardware_concurrency());
  const auto json_start = Clock::now();
  if (cache) {
    if (auto pieces = cut_into_pieces(entry.path, jobs)) {
      const size_t count = pieces->size();
      // A piece that fails (to parse, or to be written to the cache) sends the file to the
      // whole parse below, which reports a parse error as the file's and caches best effort.
      if (parse_pieces(info, entry, std::move(*pieces), *cache, jobs)) {
        stats.json_ms += ms_since(json_start);
        const auto read_start = Clock::now();
        if (load_cached(pool, info, *cache, count, stats)) {
          stats.solv_read_ms += ms_since(read_start);
          stats.solv_writes += count;
          (void)write_list(*cache, count);  // a cache: best effort
          return ok();
        }
      }
      remove_stale(entry);
    }
  }
  auto id = pool.add_repo_json_file(info, entry.path);
  stats.json_ms += ms_since(json_start);
  if (!id) return context(std::move(id).error());
  stats.records_loaded += pool.repo_size(*id);
  if (cache) {
    const auto write_start = Clock::now();
    if (pool.write_repo_solv(*id, cache->piece(0)) && write_list(*cache, 1))  // best effort
      ++stats.solv_writes;
    stats.solv_write_ms += ms_since(write_start);
  }
  return ok();
}

}  // namespace

Result<void> load_repodata(solv::Pool& pool, const std::vector<SubdirRepodata>& repodata,
                           bool use_solv_cache, SolveStats& stats) {
  for (const SubdirRepodata& entry : repodata) {
    if (entry.missing) continue;
    ENVB_TRY(load_entry(pool, entry, use_solv_cache, stats));
  }
  return ok();
}

}  // namespace envbuild::builder
