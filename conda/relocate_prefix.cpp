#include "conda/relocate_prefix.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/format.hpp"
#include "common/json.hpp"

namespace envbuild::conda {

namespace fs = std::filesystem;

std::string to_json_string(const RelocationIndex& index) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& record : index.files) files.push_back(to_json(record));
  nlohmann::json j = {{"format", index.format}, {"prefix", index.prefix}, {"files", files}};
  return j.dump(1) + "\n";
}

Result<RelocationIndex> parse_relocation_index(std::string_view text, std::string_view what) {
  ENVB_ASSIGN_OR_RETURN(nlohmann::json j, common::parse_json(text, what, Errc::Integrity));
  if (!j.is_object()) return fail(Errc::Integrity, std::string(what) + ": not a JSON object");
  RelocationIndex index;
  if (!j.contains("format") || !j["format"].is_number_integer() || j["format"].get<int>() != 1)
    return fail(Errc::Unsupported, std::string(what) + ": unknown format (want 1)");
  if (!j.contains("prefix") || !j["prefix"].is_string())
    return fail(Errc::Integrity, std::string(what) + ": no string 'prefix'");
  index.prefix = j["prefix"].get<std::string>();
  if (index.prefix.empty() || index.prefix.front() != '/' ||
      index.prefix.find('\0') != std::string::npos || index.prefix.size() > kMaxPlaceholderLength)
    return fail(Errc::Integrity, std::string(what) + ": prefix '" +
                                     common::printable(index.prefix) + "' is not an absolute path");
  if (!j.contains("files") || !j["files"].is_array())
    return fail(Errc::Integrity, std::string(what) + ": no array 'files'");
  for (const auto& f : j["files"]) {
    ENVB_ASSIGN_OR_RETURN(auto record, relocation_record_from_json(f).context(std::string(what)));
    ENVB_TRY(validate_record(record).context(std::string(what)));
    index.files.push_back(std::move(record));
  }
  return index;
}

Result<std::optional<RelocationIndex>> read_relocation_index(const common::RootDir& prefix) {
  ENVB_ASSIGN_OR_RETURN(std::optional<std::string> text,
                        prefix.read_regular(kRelocationIndexPath, kMaxRelocationIndexBytes));
  if (!text) return std::optional<RelocationIndex>{};
  ENVB_ASSIGN_OR_RETURN(RelocationIndex index,
                        parse_relocation_index(*text, prefix.shown(kRelocationIndexPath)));
  return std::optional<RelocationIndex>(std::move(index));
}

Result<std::optional<RelocationIndex>> read_relocation_index(const fs::path& prefix) {
  ENVB_ASSIGN_OR_RETURN(common::RootDir root, common::RootDir::open(prefix));
  return read_relocation_index(root);
}

std::optional<uint64_t> binary_room(const RelocationIndex& index) {
  std::optional<uint64_t> room;
  for (const auto& r : index.files)
    if (r.file_mode == FileMode::Binary) room = room ? std::min(*room, r.room) : r.room;
  return room;
}

Result<RelocateStats> relocate_prefix(const common::RootDir& prefix, std::string_view old_prefix,
                                      std::string_view new_prefix, MissingIndex missing) {
  const std::string where = prefix.path().string();
  ENVB_ASSIGN_OR_RETURN(std::optional<RelocationIndex> found, read_relocation_index(prefix));
  if (!found) {
    if (missing == MissingIndex::Skip) return RelocateStats{};
    return fail(Errc::NotFound, prefix.shown(kRelocationIndexPath) +
                                    ": no relocation index (was this environment installed by "
                                    "envbuild?)");
  }
  RelocationIndex& index = *found;
  if (!old_prefix.empty() && old_prefix != index.prefix)
    return fail(Errc::InvalidInput, "relocating " + where + ": the files hold prefix " +
                                        index.prefix + ", not " + std::string(old_prefix));
  if (new_prefix.empty() || new_prefix.front() != '/' ||
      new_prefix.find('\0') != std::string_view::npos)
    return fail(Errc::InvalidInput, "relocating " + where + ": new prefix '" +
                                        common::printable(new_prefix) + "' is not absolute");
  RelocateStats stats;
  if (index.prefix == new_prefix) return stats;
  // Check every binary record first, so a too-long prefix changes nothing.
  for (const auto& record : index.files) {
    if (record.file_mode == FileMode::Binary && new_prefix.size() > record.room)
      return fail(Errc::InvalidInput,
                  "relocating " + where + ": " + record.path + " is a binary file with room " +
                      "for a prefix of " + std::to_string(record.room) + " bytes; " +
                      std::string(new_prefix) + " has " + std::to_string(new_prefix.size()))
          .with_hint("binary files keep their length: choose a directory whose path is at most " +
                     std::to_string(record.room) + " bytes");
  }
  RelocationIndex moved;
  moved.prefix = std::string(new_prefix);
  for (const auto& record : index.files) {
    ENVB_ASSIGN_OR_RETURN(
        auto updated,
        relocate(prefix, record, index.prefix, new_prefix).context("relocating " + where));
    updated.path = record.path;
    ++stats.files;
    ++(record.file_mode == FileMode::Binary ? stats.binary_files : stats.text_files);
    moved.files.push_back(std::move(updated));
  }
  ENVB_TRY(prefix.write_atomic(kRelocationIndexPath, to_json_string(moved), 0644,
                               common::RootDir::Sync::Yes));
  return stats;
}

Result<RelocateStats> relocate_prefix(const fs::path& dir, std::string_view old_prefix,
                                      std::string_view new_prefix, MissingIndex missing) {
  ENVB_ASSIGN_OR_RETURN(common::RootDir root, common::RootDir::open(dir));
  return relocate_prefix(root, old_prefix, new_prefix, missing);
}

}  // namespace envbuild::conda
