#include "builder/solve/reach.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <span>

#include <nlohmann/json.hpp>

#include "builder/solve/cache_root.hpp"
#include "builder/solve/dependency_names.hpp"
#include "builder/solve/shards.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/parallel.hpp"

namespace envbuild::builder {

namespace {

/// A subset written by us (the whole of conda-forge is about 300 MB).
constexpr size_t kMaxSubsetBytes = size_t{1} << 30;
/// The largest repodata.json scanned (as the loader reads them).
constexpr size_t kMaxRepodataBytes = size_t{4} << 30;

/// Whole repodata.json files, each scanned once for where its records lie.
class ScanSource final : public RecordSource {
 public:
  /// Scans the entries' files in parallel; one that cannot be scanned is left out (its entry
  /// keeps the whole file, which the loader reads and reports on).
  static ScanSource open(const std::vector<SubdirRepodata>& entries,
                         const std::vector<Part>& parts, size_t jobs) {
    std::vector<std::optional<RepodataIndex>> indexes(parts.size());
    (void)common::for_each_index(parts.size(), jobs, [&](size_t i, size_t) -> Result<void> {
      const SubdirRepodata& entry = entries[parts[i].entry];
      auto text = common::read_file(entry.path, kMaxRepodataBytes);
      if (!text) return ok();
      auto index = RepodataIndex::build(std::move(*text), entry.path.string());
      if (index) indexes[i] = std::move(*index);
      return ok();
    });
    ScanSource source;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!indexes[i]) continue;
      source.parts_.push_back(parts[i]);
      source.indexes_.push_back(std::move(*indexes[i]));
    }
    return source;
  }

  std::vector<Part> parts() const override { return parts_; }

  Result<void> reach(const std::vector<std::string>& names, NameSet& depends) override {
    for (const std::string& name : names) {
      reached_.insert(name);
      for (const RepodataIndex& index : indexes_) index.add_depends_of(name, depends);
    }
    return ok();
  }

  Result<std::vector<ReachedSubset>> subsets() override {
    std::vector<ReachedSubset> out;
    for (const RepodataIndex& index : indexes_) out.push_back({index.subset(reached_), nullptr});
    return out;
  }

  void for_each_name(const std::function<void(std::string_view)>& f) const override {
    for (const RepodataIndex& index : indexes_) index.for_each_name(f);
  }

 private:
  std::vector<Part> parts_;
  std::vector<RepodataIndex> indexes_;
  NameSet reached_;
};

/// Where `entry`'s subset whose content hashes to `digest` lies.
std::filesystem::path subset_path(const SubdirRepodata& entry, const std::string& digest) {
  return entry.cache_prefix.string() + ".subset." + digest.substr(0, 16) + ".json";
}

std::string reach_key(const std::vector<RecordSource::Part>& parts, const NameSet& roots) {
  // v3: dependencies that name a pattern or a channel reach what libsolv matches (a v2 reach
  // could lack those names).
  std::string text = "envbuild reach v3\n";
  for (const auto& part : parts) text += part.identity + "\n";
  text += "roots\n";
  for (const auto& r : roots) text += r + "\n";
  return common::sha256_hex(text);
}

/// The subsets recorded in `file` (one digest per part, in order), when every one is still in
/// the cache and whole.
std::optional<std::vector<std::string>> cached_reach(const std::filesystem::path& file,
                                                     const std::vector<RecordSource::Part>& parts,
                                                     const std::vector<SubdirRepodata>& entries) {
  auto text = common::read_file(file, 1 << 20);
  if (!text) return std::nullopt;
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_array() || doc.size() != parts.size()) return std::nullopt;
  std::vector<std::string> digests;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!doc[i].is_string() || doc[i].get_ref<const std::string&>().size() != 64 ||
        doc[i].get_ref<const std::string&>().find_first_not_of("0123456789abcdef") !=
            std::string::npos)
      return std::nullopt;
    const std::string& digest = doc[i].get_ref<const std::string&>();
    // Written without fsync: a torn file (a crash) must not be read as the subset.
    auto subset = common::read_file(subset_path(entries[parts[i].entry], digest), kMaxSubsetBytes);
    if (!subset || common::sha256_hex(*subset) != digest) return std::nullopt;
    digests.push_back(digest);
  }
  return digests;
}

/// Asks every source for the names reached, round after round, from `roots`.
Result<void> walk(const NameSet& roots, const std::vector<RecordSource*>& sources) {
  NameSet seen = roots;
  std::vector<std::string> frontier(roots.begin(), roots.end());
  while (!frontier.empty()) {
    NameSet depends;
    for (RecordSource* source : sources) ENVB_TRY(source->reach(frontier, depends));
    frontier.clear();
    // A pattern joins `seen` too: matched once, not again each round it comes back.
    NameSet fresh;
    for (const std::string& name : depends)
      if (seen.insert(name).second) fresh.insert(name);
    for (const std::string& name : names_reached(fresh, sources))
      if (fresh.contains(name) || seen.insert(name).second) frontier.push_back(name);
  }
  return ok();
}

}  // namespace

NameSet names_reached(const NameSet& depends, const std::vector<RecordSource*>& sources) {
  NameSet out;
  for (const std::string& name : depends) {
    if (!names_a_pattern(name)) {
      out.insert(name);
      continue;
    }
    const NamePattern pattern(name);
    for (const RecordSource* source : sources)
      source->for_each_name([&](std::string_view candidate) {
        if (pattern.matches(candidate)) out.emplace(candidate);
      });
  }
  return out;
}

Result<void> RecordSource::reach_all(const NameSet& roots) {
  RecordSource* self = this;
  return walk(roots, {self});
}

std::optional<NameSet> root_names(const std::vector<std::string>& specs) {
  NameSet names;
  for (const std::string& spec : specs) {
    const std::string_view name = spec_package_name(spec);
    std::string_view written = spec;  // from the name on
    if (auto colons = written.rfind("::"); colons != std::string_view::npos)
      written = written.substr(colons + 2);
    written.remove_prefix(std::min(written.size(), written.find_first_not_of(" \t")));
    // libsolv's reading (the pool takes a channel off at the first "::", libsolv the rest up to
    // the last ':', and compares names in lower case): "ch:NumPy" asks for "numpy".
    std::string_view after_channel = spec;
    if (auto colons = after_channel.find("::"); colons != std::string_view::npos)
      after_channel = after_channel.substr(colons + 2);
    const std::string libsolv_name = libsolv_spec_name(after_channel);
    // A pattern ("py*", "^py.*$") may match any name: every record is needed.
    if (name.empty() || written.substr(name.size()).starts_with('*') ||
        name.find_first_of("^$") != std::string_view::npos || names_a_pattern(libsolv_name))
      return std::nullopt;
    for (std::string_view reading : {name, std::string_view(libsolv_name)})
      if (!reading.empty() && !reading.starts_with("__")) names.emplace(reading);
  }
  return names;
}

void point_at_subset(SubdirRepodata& entry, const std::string& digest) {
  entry.path = subset_path(entry, digest);
  entry.fingerprint = "subset:" + digest;
}

Result<void> write_hashed_cache_file(const std::filesystem::path& path, std::string_view content,
                                     CacheFileReaders readers) {
  if (readers == CacheFileReaders::AllCheck) {
    // Straight to its name when there is none yet: every reader checks the bytes, so one cut
    // short (a crash, a full disk, a reader early) is a miss, never a wrong answer. That is one
    // directory entry made instead of two (a temp file and a rename), which is most of what a
    // cold solve's ~250 shard files cost on ext4. One that fails is left as it is (a miss),
    // and replaced below: removing it could remove another solve's whole one.
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0) {
      common::Fd file(fd);
      if (::fchmod(file.get(), 0644) == 0 &&
          file.write_all(std::as_bytes(std::span(content)), path.string()))
        return ok();
    }
  }
  // Through a temp file and a rename: whole or absent to any reader, whoever wrote it.
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path temp =
      path.parent_path() / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()) +
                            "." + std::to_string(counter++));
  ENVB_TRY(common::write_scratch_file(temp, content));
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    return fail(Errc::Io, "rename(" + temp.string() + ", " + path.string() + "): " + ec.message());
  }
  return ok();
}

Result<void> reach_subsets(std::vector<SubdirRepodata>& entries, const NameSet& roots,
                           RecordSource* shards, const RepodataOptions& options,
                           const std::filesystem::path& cache_dir) {
  std::vector<RecordSource::Part> parts = shards ? shards->parts() : std::vector<RecordSource::Part>{};
  std::vector<RecordSource::Part> whole;
  for (size_t i = 0; i < entries.size(); ++i) {
    const SubdirRepodata& e = entries[i];
    if (e.sharded || e.missing || e.fingerprint.empty() || e.cache_prefix.empty()) continue;
    whole.push_back({i, "whole\n" + e.channel.url(e.subdir, "repodata.json") + "\n" + e.fingerprint});
  }
  parts.insert(parts.end(), whole.begin(), whole.end());
  if (parts.empty() || roots.empty()) return ok();

  const std::filesystem::path reach_file =
      cache_dir / ("reach-" + reach_key(parts, roots) + ".json");
  if (auto digests = cached_reach(reach_file, parts, entries)) {
    for (size_t i = 0; i < parts.size(); ++i) {
      point_at_subset(entries[parts[i].entry], (*digests)[i]);
      touch_used(entries[parts[i].entry].path);
    }
    touch_used(reach_file);  // `cache prune --older-than` keeps what is used, not what is old
    return ok();
  }
  ScanSource scanned = ScanSource::open(entries, whole, options.jobs);
  std::vector<RecordSource*> sources;
  if (shards) sources.push_back(shards);
  // A file that could not be scanned is read whole, and the names its records depend on are not
  // walked: then no whole file is subset (each is a superset), lest one lack such a name.
  if (!whole.empty() && scanned.parts().size() == whole.size()) sources.push_back(&scanned);
  if (sources.size() == 1) {
    ENVB_TRY(sources[0]->reach_all(roots));
  } else {
    ENVB_TRY(walk(roots, sources));
  }

  nlohmann::json digests = nlohmann::json::array();
  bool later = false;  // some subset is written later
  for (RecordSource* source : sources) {
    const std::vector<RecordSource::Part> its = source->parts();
    ENVB_ASSIGN_OR_RETURN(std::vector<ReachedSubset> subsets, source->subsets());
    for (size_t i = 0; i < its.size(); ++i) {
      const std::string_view text = subsets[i].bytes();
      const std::string digest = common::sha256_hex(text);
      SubdirRepodata& entry = entries[its[i].entry];
      point_at_subset(entry, digest);
      entry.subset_index = subsets[i].index;
      // Named by its content: whole when its bytes still hash to the name (a crash can leave a
      // torn one: written again).
      auto keep = [path = entry.path, digest, subset = std::move(subsets[i])]() -> Result<void> {
        auto existing = common::read_file(path, kMaxSubsetBytes);
        if (!existing || common::sha256_hex(*existing) != digest)
          return write_hashed_cache_file(path, subset.bytes(), CacheFileReaders::SomeDoNot);
        touch_used(path);
        return ok();
      };
      // A subset the loader has in hand (its index) is written on the core the solve leaves
      // idle, as the shards are; a failure there is a miss for the next solve, not this one's.
      if (entry.subset_index && options.later_cache_writes) {
        options.later_cache_writes->add([keep = std::move(keep)] { (void)keep(); });
        later = true;
      } else {
        ENVB_TRY(keep());
      }
      digests.push_back(digest);
    }
  }
  // Best effort: without it the next solve reaches again. Only when every part was reached
  // (a repodata.json that could not be scanned is read whole, and not remembered); after the
  // subsets it names.
  if (digests.size() == parts.size()) {
    auto remember = [reach_file, text = digests.dump()] {
      (void)write_hashed_cache_file(reach_file, text, CacheFileReaders::AllCheck);
    };
    if (later)
      options.later_cache_writes->add(std::move(remember));
    else
      remember();
  }
  return ok();
}

}  // namespace envbuild::builder
