#include "runtime/relocate_tree.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/json.hpp"

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// A record's file must stay inside the prefix.
Result<fs::path> record_file(const fs::path& dir, const conda::RelocationRecord& record) {
  if (!common::is_safe_relative_path(record.path))
    return fail(Errc::Integrity,
                "relocation record with unsafe path '" + record.path + "' (must stay in prefix)");
  return dir / record.path;
}

/// Gives `file` its own inode (a copy renamed over it) when other names share it, so patching
/// it does not change the other names too.
Result<void> break_hardlink(const fs::path& file, const struct stat& st) {
  if (st.st_nlink <= 1) return {};
  fs::path temp = common::temp_sibling(file);
  std::error_code ec;
  fs::copy_file(file, temp, fs::copy_options::overwrite_existing, ec);
  if (ec) return fail(Errc::Io, "copy(" + file.string() + "): " + ec.message());
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    int err = errno;
    fs::remove(temp, ec);
    return common::errno_error("rename", temp.string(), err);
  }
  return {};
}

}  // namespace

Result<std::optional<PrefixRelocations>> read_relocations(const fs::path& dir) {
  fs::path file = dir / kRelocationsFile;
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<PrefixRelocations>{};
    return common::errno_error("stat", file.string(), errno);
  }
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file));
  PrefixRelocations out;
  try {
    ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, file.string(), Errc::Integrity));
    if (j.value("format", 0) != 1)
      return fail(Errc::Unsupported, file.string() + ": unknown relocations format " +
                                         j.value("format", json(nullptr)).dump());
    out.prefix = j.at("prefix").get<std::string>();
    for (const auto& r : j.at("files")) {
      ENVB_ASSIGN_OR_RETURN(conda::RelocationRecord record,
                            conda::relocation_record_from_json(r).context(file.string()));
      out.files.push_back(std::move(record));
    }
  } catch (const json::exception& e) {
    return fail(Errc::InvalidInput, file.string() + ": " + e.what());
  }
  if (out.prefix.empty() || out.prefix.front() != '/')
    return fail(Errc::InvalidInput, file.string() + ": prefix '" + out.prefix + "' is not absolute");
  return std::optional<PrefixRelocations>(std::move(out));
}

std::optional<uint64_t> binary_room(const PrefixRelocations& relocations) {
  std::optional<uint64_t> room;
  for (const auto& r : relocations.files)
    if (r.file_mode == conda::FileMode::Binary) room = room ? std::min(*room, r.room) : r.room;
  return room;
}

Result<RelocateStats> relocate_tree(const fs::path& dir, const std::string& new_prefix) {
  ENVB_ASSIGN_OR_RETURN(std::optional<PrefixRelocations> relocations, read_relocations(dir));
  RelocateStats stats;
  if (!relocations || relocations->prefix == new_prefix) return stats;

  // All or nothing as far as we can tell up front: the room of every binary file.
  for (const auto& r : relocations->files) {
    if (r.file_mode != conda::FileMode::Binary || new_prefix.size() <= r.room) continue;
    return Error(Errc::InvalidInput,
                 "prefix " + new_prefix + " is " + std::to_string(new_prefix.size()) +
                     " bytes, longer than the " + std::to_string(r.room) +
                     " bytes binary file " + r.path + " has room for")
        .with_hint("binary files keep their length, so the path must be at most " +
                   std::to_string(r.room) + " bytes: choose a shorter location" +
                   " (for the cache: ENVRUN_CACHE=/short/path; entries are <root>/p/<12 hex>)");
  }

  for (auto& record : relocations->files) {
    ENVB_ASSIGN_OR_RETURN(fs::path file, record_file(dir, record));
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0)
      return common::errno_error("stat", file.string(), errno).with_context("relocating prefix");
    if (!S_ISREG(st.st_mode))
      return fail(Errc::Integrity, "relocation record for " + record.path +
                                       " names something that is not a regular file");
    ENVB_TRY(break_hardlink(file, st));
    bool made_writable = false;
    if ((st.st_mode & S_IWUSR) == 0) {
      if (::chmod(file.c_str(), (st.st_mode & 07777) | S_IWUSR) != 0)
        return common::errno_error("chmod", file.string(), errno);
      made_writable = true;
    }
    auto moved = conda::relocate(file, record, relocations->prefix, new_prefix);
    if (made_writable) (void)::chmod(file.c_str(), st.st_mode & 07777);
    if (!moved) return std::move(moved).error().with_context("relocating prefix to " + new_prefix);
    record = std::move(*moved);
    ++stats.files;
    if (record.file_mode == conda::FileMode::Binary) ++stats.binary_files;
  }

  json files = json::array();
  for (const auto& record : relocations->files) files.push_back(conda::to_json(record));
  json out{{"format", 1}, {"prefix", new_prefix}, {"files", std::move(files)}};
  ENVB_TRY(common::write_file_atomic(dir / kRelocationsFile, out.dump()));
  return stats;
}

}  // namespace envbuild::runtime
