#include "builder/install/cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "builder/install/package_cache.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

namespace {

fs::path lock_path(const fs::path& root) {
  return root / "locks" / "cache.lock";
}

// The temp name of an atomic write (common::temp_sibling) or an extraction: ".<name>.tmp.<...>".
bool is_temp_name(const std::string& name) {
  return name.size() > 1 && name.front() == '.' && name.find(".tmp.") != std::string::npos;
}

std::vector<fs::path> entries_of(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<Clock::time_point> mtime_of(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return Clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec) +
                           std::chrono::nanoseconds(st.st_mtim.tv_nsec));
}

void newest(std::optional<Clock::time_point>& into, std::optional<Clock::time_point> t) {
  if (t && (!into || *t > *into)) into = t;
}

// Bytes under `path` (a file or a tree), each inode once (extracted trees and prefixes share
// them by hard links), without following symlinks.
uint64_t bytes_of(const fs::path& path, std::set<std::pair<dev_t, ino_t>>& seen) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  if (S_ISREG(st.st_mode))
    return seen.emplace(st.st_dev, st.st_ino).second ? static_cast<uint64_t>(st.st_size) : 0;
  if (!S_ISDIR(st.st_mode)) return 0;
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat s {};
    if (::lstat(it->path().c_str(), &s) == 0 && S_ISREG(s.st_mode) &&
        seen.emplace(s.st_dev, s.st_ino).second)
      total += static_cast<uint64_t>(s.st_size);
  }
  return total;
}

// One entry of a category: the paths that make it up (a package is its archive dir, its
// extracted tree and its lock; a repodata entry its body, info, lock and .solv files).
struct Entry {
  std::vector<fs::path> paths;
  std::optional<Clock::time_point> last_use;
};

std::map<std::string, Entry> package_entries(const fs::path& root) {
  std::map<std::string, Entry> out;
  for (const char* dir : {"pkgs", "extracted"})
    for (const auto& path : entries_of(root / dir)) {
      const std::string name = path.filename().string();
      if (name.front() == '.') continue;  // temps: leftovers, not entries
      Entry& e = out[name];
      e.paths.push_back(path);
      newest(e.last_use, mtime_of(path));
    }
  for (auto& [key, e] : out) e.paths.push_back(root / "locks" / (key + ".lock"));
  return out;
}

std::map<std::string, Entry> repodata_entries(const fs::path& root) {
  std::map<std::string, Entry> out;
  for (const auto& path : entries_of(root / "repodata")) {
    const std::string name = path.filename().string();
    if (name.front() == '.') continue;
    Entry& e = out[name.substr(0, name.find('.'))];
    e.paths.push_back(path);
    newest(e.last_use, mtime_of(path));
  }
  return out;
}

// One file per entry (layers/<key>.json, plans/<key>.json, blobs/sha256/<hex>).
std::map<std::string, Entry> file_entries(const fs::path& dir) {
  std::map<std::string, Entry> out;
  for (const auto& path : entries_of(dir)) {
    const std::string name = path.filename().string();
    if (name.front() == '.') continue;
    out[name] = Entry{{path}, mtime_of(path)};
  }
  return out;
}

std::map<std::string, Entry> tmp_entries(const fs::path& root) {
  std::map<std::string, Entry> out;
  for (const auto& path : entries_of(root / "tmp"))
    out[path.filename().string()] = Entry{{path}, mtime_of(path)};
  return out;
}

struct Kind {
  const char* name;
  const char* description;
  std::map<std::string, Entry> (*entries)(const fs::path& root);
};

const Kind kKinds[] = {
    {"packages", "downloaded archives and their extracted trees (pkgs/, extracted/)",
     package_entries},
    {"repodata", "channel indexes and their .solv forms (repodata/)", repodata_entries},
    {"layers", "the layer cache: package layers already built (layers/)",
     [](const fs::path& root) { return file_entries(root / "layers"); }},
    {"plans", "package plans for the image prefix (plans/)",
     [](const fs::path& root) { return file_entries(root / "plans"); }},
    {"blobs", "layers, configs and manifests of built images (oci/blobs/)",
     [](const fs::path& root) { return file_entries(root / "oci" / "blobs" / "sha256"); }},
    {"tmp", "scratch space of running (or interrupted) commands (tmp/)", tmp_entries},
};

CacheCategory summarize(const Kind& kind, const std::map<std::string, Entry>& entries,
                        std::set<std::pair<dev_t, ino_t>>& seen) {
  CacheCategory c;
  c.name = kind.name;
  c.description = kind.description;
  for (const auto& [_, e] : entries) {
    ++c.entries;
    for (const auto& p : e.paths) c.bytes += bytes_of(p, seen);
    newest(c.last_use, e.last_use);
  }
  return c;
}

// The blob digests (hex) the layer cache entries in `layers` refer to.
std::set<std::string> referenced_blobs(const std::map<std::string, Entry>& layers) {
  std::set<std::string> out;
  for (const auto& [_, e] : layers) {
    auto text = common::read_file(e.paths.front(), 1u << 20);
    if (!text) continue;
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (!json.is_object() || !json.contains("descriptor")) continue;
    const auto& digest = json["descriptor"].value("digest", "");
    if (digest.starts_with("sha256:")) out.insert(digest.substr(7));
  }
  return out;
}

Result<void> remove_entry(const Entry& e) {
  for (const auto& path : e.paths) ENVB_TRY(common::remove_all(path));
  return ok();
}

}  // namespace

Result<size_t> sweep_leftovers(const fs::path& root) {
  size_t removed = 0;
  auto remove = [&](const fs::path& path) -> Result<void> {
    ENVB_TRY(common::remove_all(path));
    ++removed;
    return ok();
  };
  for (const auto& path : entries_of(root / "tmp")) ENVB_TRY(remove(path));
  std::vector<fs::path> dirs = {root,
                                root / "layers",
                                root / "plans",
                                root / "repodata",
                                root / "extracted",
                                root / "pkgs",
                                root / "oci",
                                root / "oci" / "blobs" / "sha256",
                                root / "host"};
  for (const auto& key : entries_of(root / "pkgs")) dirs.push_back(key);
  for (const auto& dir : dirs)
    for (const auto& path : entries_of(dir))
      if (is_temp_name(path.filename().string())) ENVB_TRY(remove(path));
  return removed;
}

Result<CacheLease> open_cache(const fs::path& given) {
  ENVB_ASSIGN_OR_RETURN(fs::path root, open_cache_root(given));
  ENVB_TRY(common::make_dirs(root / "locks"));
  ENVB_ASSIGN_OR_RETURN(
      auto exclusive, common::FileLock::try_acquire(lock_path(root), common::LockMode::Exclusive));
  if (exclusive) {
    // Nobody else is here: what temp files there are were left by interrupted processes. A
    // failed sweep costs only space, never this command.
    auto swept = sweep_leftovers(root);
    ENVB_TRY(exclusive->downgrade());
    return CacheLease(std::move(root), std::move(*exclusive), swept.value_or(0));
  }
  ENVB_ASSIGN_OR_RETURN(auto shared,
                        common::FileLock::acquire(lock_path(root), common::LockMode::Shared));
  return CacheLease(std::move(root), std::move(shared), 0);
}

Result<std::vector<CacheCategory>> list_cache(const fs::path& root) {
  std::vector<CacheCategory> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const Kind& kind : kKinds) out.push_back(summarize(kind, kind.entries(root), seen));
  return out;
}

Result<PruneReport> prune_cache(const fs::path& root, const PruneOptions& options) {
  ENVB_TRY(common::make_dirs(root / "locks"));
  ENVB_ASSIGN_OR_RETURN(
      auto lock, common::FileLock::try_acquire(lock_path(root), common::LockMode::Exclusive));
  if (!lock) {
    if (!options.wait)
      return fail(Errc::Io, "the cache " + root.string() + " is in use by another envbuild")
          .with_hint("run again when it is done, or without --no-wait to wait for it");
    if (options.progress)
      options.progress("waiting for the other envbuild processes that use " + root.string());
    ENVB_ASSIGN_OR_RETURN(lock,
                          common::FileLock::acquire(lock_path(root), common::LockMode::Exclusive));
  }
  const auto cutoff =
      options.older_than ? Clock::now() - *options.older_than : Clock::time_point::max();
  auto old = [&](const Entry& e) { return !e.last_use || *e.last_use < cutoff; };

  PruneReport report;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::map<std::string, Entry> kept_layers;
  for (const Kind& kind : kKinds) {
    auto entries = kind.entries(root);
    if (std::string_view(kind.name) == "blobs") {
      // A blob a kept layer entry names stays, however old: the entry would be a miss otherwise.
      const auto referenced = referenced_blobs(kept_layers);
      std::erase_if(entries, [&](const auto& item) { return referenced.count(item.first) > 0; });
    }
    std::map<std::string, Entry> going;
    for (auto& [key, e] : entries) {
      if (std::string_view(kind.name) == "tmp" || old(e)) {
        going.emplace(key, e);
      } else if (std::string_view(kind.name) == "layers") {
        kept_layers.emplace(key, e);
      }
    }
    CacheCategory removed = summarize(kind, going, seen);
    report.entries += removed.entries;
    report.bytes += removed.bytes;
    report.removed.push_back(removed);
    if (options.dry_run) continue;
    for (const auto& [_, e] : going) ENVB_TRY(remove_entry(e));
  }
  if (!options.dry_run) {
    auto swept = sweep_leftovers(root);
    if (!swept) return std::move(swept).error();
  }
  return report;
}

}  // namespace envbuild::builder
