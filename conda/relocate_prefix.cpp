#include "conda/relocate_prefix.hpp"

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
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
  if (!j.contains("files") || !j["files"].is_array())
    return fail(Errc::Integrity, std::string(what) + ": no array 'files'");
  for (const auto& f : j["files"]) {
    ENVB_ASSIGN_OR_RETURN(auto record,
                          relocation_record_from_json(f).context(std::string(what)));
    if (!common::is_safe_relative_path(record.path))
      return fail(Errc::Integrity, std::string(what) + ": unsafe path '" + record.path + "'");
    index.files.push_back(std::move(record));
  }
  return index;
}

Result<RelocationIndex> read_relocation_index(const fs::path& prefix_dir) {
  fs::path file = prefix_dir / kRelocationIndexPath;
  std::error_code ec;
  if (!fs::exists(file, ec))
    return fail(Errc::NotFound, file.string() + ": no relocation index (was this environment "
                                                "installed by envbuild?)");
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file));
  return parse_relocation_index(text, file.string());
}

Result<RelocateStats> relocate_prefix(const fs::path& dir, std::string_view old_prefix,
                                      std::string_view new_prefix) {
  ENVB_ASSIGN_OR_RETURN(RelocationIndex index, read_relocation_index(dir));
  if (!old_prefix.empty() && old_prefix != index.prefix)
    return fail(Errc::InvalidInput, "relocating " + dir.string() + ": the files hold prefix " +
                                        index.prefix + ", not " + std::string(old_prefix));
  if (new_prefix.empty() || new_prefix.front() != '/')
    return fail(Errc::InvalidInput,
                "relocating " + dir.string() + ": new prefix '" + std::string(new_prefix) +
                    "' is not absolute");
  RelocateStats stats;
  if (index.prefix == new_prefix) return stats;
  // Check every binary record first, so a too-long prefix changes nothing.
  for (const auto& record : index.files) {
    if (record.file_mode == FileMode::Binary && new_prefix.size() > record.room)
      return fail(Errc::InvalidInput,
                  "relocating " + dir.string() + ": " + record.path + " is a binary file with room "
                      "for a prefix of " + std::to_string(record.room) + " bytes; " +
                      std::string(new_prefix) + " has " + std::to_string(new_prefix.size()))
          .with_hint("choose a shorter directory");
  }
  RelocationIndex moved;
  moved.prefix = std::string(new_prefix);
  for (const auto& record : index.files) {
    ENVB_ASSIGN_OR_RETURN(auto updated,
                          relocate(dir / record.path, record, index.prefix, new_prefix)
                              .context("relocating " + dir.string()));
    updated.path = record.path;
    ++stats.files;
    ++(record.file_mode == FileMode::Binary ? stats.binary_files : stats.text_files);
    moved.files.push_back(std::move(updated));
  }
  ENVB_TRY(common::write_file_atomic(dir / kRelocationIndexPath, to_json_string(moved)));
  return stats;
}

}  // namespace envbuild::conda
