// Loading repodata into a pool through the .solv cache, parsing large files in pieces at once.
//
// libsolv's JSON reader takes ~10 ms per MB on one core and a pool takes one thread. A large
// repodata.json (or the subset a solve reaches) is therefore cut into pieces by package name
// (RepodataIndex::split_names: every record of a name, both package formats, in one piece, as
// libsolv's .conda-over-.tar.bz2 choice needs), each piece parsed by its own pool on its own
// thread and written as a .solv, and the pieces read into the solve's pool in order, one repo
// each. A smaller file is one piece; the pieces of every subdir (a solve has at least a platform
// and noarch, often several channels) are parsed at once. Records of one name keep their order and their repo, so every choice libsolv makes
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
#include "common/clock.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/parallel.hpp"
#include "common/version.hpp"

namespace envbuild::builder {

namespace {

using common::Clock;
using common::ms_since;

/// A piece's share of a repodata.json (a file under twice this is one piece).
constexpr size_t kPieceBytes = size_t{2} << 20;
/// At most this many pieces (a 300 MB channel: 64 pieces of ~5 MB).
constexpr size_t kMaxPieces = 64;
/// The largest repodata.json read into memory to be cut (as the loader reads them).
constexpr size_t kMaxRepodataBytes = size_t{4} << 30;
constexpr std::string_view kPiecesMagic = "envbuild solv pieces\n";

/// The size of the entry's repodata.json (0 when unknown); a subset in hand may not be written yet.
uint64_t repodata_bytes(const SubdirRepodata& entry) {
  if (entry.subset_index) return entry.subset_index->text().size();
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(entry.path, ec);
  return ec ? 0 : size;
}

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

/// The files of a piece as written: which they are, so that a seal syncs those and no other.
struct PieceFiles {
  std::optional<common::FileIdentity> solv, meta;  // meta: none when the piece has no records
};

/// Makes pieces written without a sync durable, then lists them: a list names only pieces
/// that survive a crash. A piece another solve has put in the place of ours since (it removed
/// ours to parse the file again) is not synced and the list is not written: that solve lists
/// its own once synced. Pieces that are not listed are a miss: the next solve parses again.
Result<void> seal(const SolvCache& cache, const std::vector<PieceFiles>& files) {
  for (size_t i = 0; i < files.size(); ++i) {
    if (!files[i].solv) return fail(Errc::Io, cache.piece(i).string() + ": not written");
    ENVB_TRY(common::sync_file(cache.piece(i), files[i].solv));
    if (files[i].meta)
      ENVB_TRY(common::sync_file(solv::Pool::meta_path_of(cache.piece(i)), files[i].meta));
  }
  ENVB_TRY(common::sync_dir(cache.piece(0).parent_path()));
  return write_list(cache, files.size());
}

/// The pieces of an indexed repodata.json, cut by name.
std::vector<std::string> pieces_of(const RepodataIndex& index) {
  std::vector<std::string> pieces;
  for (const NameSet& group :
       index.split_names(std::clamp<size_t>(index.text().size() / kPieceBytes, 1, kMaxPieces)))
    pieces.push_back(index.subset(group, pieces.empty() ? RepodataIndex::Members::All
                                                        : RepodataIndex::Members::InfoOnly));
  return pieces;
}

/// The pieces of the entry's repodata.json: the whole text when it is small, else cut by name
/// (by the index its walk wrote it with, when there is one: the same pieces, no scan); nullopt
/// when the scan refuses it (the whole parse then reports what is wrong).
std::optional<std::vector<std::string>> cut_into_pieces(const SubdirRepodata& entry) {
  if (const RepodataIndex* index = entry.subset_index.get()) {
    if (index->text().size() < 2 * kPieceBytes)
      return std::vector<std::string>{std::string(index->text())};
    return pieces_of(*index);
  }
  auto text = common::read_file(entry.path, kMaxRepodataBytes);
  if (!text) return std::nullopt;
  if (text->size() < 2 * kPieceBytes) return std::vector<std::string>{std::move(*text)};
  auto index = RepodataIndex::build(std::move(*text), entry.path.string());
  if (!index) return std::nullopt;
  return pieces_of(*index);
}

/// One subdir's way into the pool.
struct Plan {
  const SubdirRepodata* entry = nullptr;
  solv::RepoInfo info;
  std::optional<SolvCache> cache;
  std::optional<size_t> cached;      // pieces the cache lists
  std::vector<std::string> pieces;   // to parse (none: read the cache, or parse whole)
  std::vector<char> piece_ok;        // parsed and written
  std::vector<PieceFiles> written;   // each piece's files, as written
};

/// Parses piece `i` of `plan` in a pool of its own and writes it to the cache. A piece that
/// fails (to parse, or to be written) sends its file to the whole parse, which reports a parse
/// error as the file's and caches best effort.
Result<void> parse_piece(Plan& plan, size_t i) {
  solv::Pool side;
  auto id = side.add_repo_json_text(plan.info, std::move(plan.pieces[i]), plan.entry->path.string());
  // Unsynced: the pieces are synced when listed (seal), off the path to the solve.
  plan.piece_ok[i] =
      id && side.write_repo_solv(*id, plan.cache->piece(i), solv::Pool::Sync::Later);
  if (plan.piece_ok[i])
    plan.written[i] = {common::file_identity(plan.cache->piece(i)),
                       common::file_identity(solv::Pool::meta_path_of(plan.cache->piece(i)))};
  return ok();
}

/// Cuts the uncached subdirs' files and parses every piece of every one of them at once, each
/// in a pool of its own, written to the cache. One queue for all: a file's pieces join it as
/// soon as the file is cut, so a small subdir's file (one piece) is parsed while a large one is
/// still being cut; the largest waiting piece goes first, so the last to start is a small one.
void parse_uncached(std::vector<Plan>& plans, size_t jobs) {
  common::GrowingWork work;
  for (Plan& plan : plans) {
    if (!plan.cache || plan.cached) continue;
    work.add(
        [&work, &plan](size_t) -> Result<void> {
          remove_stale(*plan.entry);
          if (auto pieces = cut_into_pieces(*plan.entry)) plan.pieces = std::move(*pieces);
          plan.piece_ok.assign(plan.pieces.size(), 0);
          plan.written.assign(plan.pieces.size(), {});
          for (size_t i = 0; i < plan.pieces.size(); ++i)
            work.add([&plan, i](size_t) { return parse_piece(plan, i); }, plan.pieces[i].size());
          return ok();
        },
        repodata_bytes(*plan.entry));
  }
  (void)work.run(jobs);
}

/// Loads a subdir's file in the pool itself (no cache, or its pieces failed); caches it whole.
Result<void> parse_whole(solv::Pool& pool, const Plan& plan, SolveStats& stats) {
  const SubdirRepodata& entry = *plan.entry;
  const auto json_start = Clock::now();
  // A subset in hand may not be written yet (builder/solve/reach.cpp).
  auto id = entry.subset_index ? pool.add_repo_json_text(plan.info,
                                                         std::string(entry.subset_index->text()),
                                                         entry.path.string())
                               : pool.add_repo_json_file(plan.info, entry.path);
  stats.json_ms += ms_since(json_start);
  if (!id)
    return std::move(id).error().with_context("loading repodata of channel " +
                                              entry.channel.name + " subdir " + entry.subdir +
                                              " (from " + entry.source + ")");
  stats.records_loaded += pool.repo_size(*id);
  if (plan.cache) {
    const auto write_start = Clock::now();
    remove_stale(entry);
    if (pool.write_repo_solv(*id, plan.cache->piece(0)) && write_list(*plan.cache, 1))
      ++stats.solv_writes;  // a cache: best effort
    stats.solv_write_ms += ms_since(write_start);
  }
  return ok();
}

}  // namespace

Result<void> load_repodata(solv::Pool& pool, const std::vector<SubdirRepodata>& repodata,
                           bool use_solv_cache, SolveStats& stats, PieceSealing* sealing) {
  std::vector<Plan> plans;
  for (const SubdirRepodata& entry : repodata) {
    if (entry.missing) continue;
    Plan plan;
    plan.entry = &entry;
    plan.info = {entry.channel.name, entry.subdir, common::redact_url(entry.channel.base_url),
                 entry.priority, entry.subdir == "noarch" ? 0 : 1};
    plan.cache = solv_cache_of(entry, use_solv_cache);
    if (plan.cache) plan.cached = cached_pieces(*plan.cache);
    if (plan.cache && !plan.cached && sealing)  // written by this solve, not listed yet
      if (auto it = sealing->unsealed.find(plan.cache->stem); it != sealing->unsealed.end())
        plan.cached = it->second;
    if (!plan.cached) stats.json_bytes += repodata_bytes(entry);
    plans.push_back(std::move(plan));
  }
  const auto json_start = Clock::now();
  parse_uncached(plans, std::max(1u, std::thread::hardware_concurrency()));
  stats.json_ms += ms_since(json_start);
  // Into the pool in the subdirs' order, each one's pieces in order.
  for (Plan& plan : plans) {
    if (plan.cached) {
      const auto read_start = Clock::now();
      const bool loaded = load_cached(pool, plan.info, *plan.cache, *plan.cached, stats);
      stats.solv_read_ms += ms_since(read_start);
      if (loaded) {
        ++stats.solv_hits;
        continue;
      }
      // A damaged piece: this subdir is parsed again, in pieces.
      plan.cached.reset();
      stats.json_bytes += repodata_bytes(*plan.entry);
      const auto again_start = Clock::now();
      std::vector<Plan> one(1, std::move(plan));
      parse_uncached(one, std::max(1u, std::thread::hardware_concurrency()));
      plan = std::move(one[0]);
      stats.json_ms += ms_since(again_start);
    }
    const size_t count = plan.piece_ok.size();
    if (count > 0 && std::count(plan.piece_ok.begin(), plan.piece_ok.end(), char{1}) ==
                         static_cast<std::ptrdiff_t>(count)) {
      const auto read_start = Clock::now();
      const bool loaded = load_cached(pool, plan.info, *plan.cache, count, stats);
      stats.solv_read_ms += ms_since(read_start);
      if (loaded) {
        stats.solv_writes += count;
        // A cache: best effort. Its syncs wait on the disk, which the solve does not need.
        auto seal_them = [cache = *plan.cache, files = std::move(plan.written)] {
          (void)seal(cache, files);
        };
        if (sealing && sealing->later) {
          sealing->unsealed[plan.cache->stem] = count;
          sealing->later->add(std::move(seal_them));
        } else {
          seal_them();
        }
        continue;
      }
    }
    // Pieces that failed, a file the scan refuses, or no cache: parsed whole here.
    ENVB_TRY(parse_whole(pool, plan, stats));
  }
  return ok();
}

}  // namespace envbuild::builder
