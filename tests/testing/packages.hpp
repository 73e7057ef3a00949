#pragma once

// Conda packages made by tests, hostile ones included: tars built entry by entry with libarchive
// (symlinks, hard links, any path and mode), as .tar.bz2 or .conda.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace envbuild::testing {

/// One entry of a tar.
struct TarEntry {
  enum class Kind { File, Directory, Symlink, Hardlink };
  std::string path;
  std::string data;  // File: the content; Symlink and Hardlink: the target
  unsigned mode = 0644;
  Kind kind = Kind::File;
};

TarEntry symlink_entry(std::string path, std::string target);

/// A pax tar in memory, through libarchive's `filter` (ARCHIVE_FILTER_NONE, _BZIP2, _ZSTD, ...).
std::string make_tar(const std::vector<TarEntry>& entries, int filter);

/// A .tar.bz2 package holding `entries` as given.
void write_tar_bz2(const std::filesystem::path& path, const std::vector<TarEntry>& entries);

/// A .conda package: metadata.json, info-<stem>.tar.zst and pkg-<stem>.tar.zst in a stored zip.
void write_conda(const std::filesystem::path& path, const std::vector<TarEntry>& info,
                 const std::vector<TarEntry>& pkg);

/// Writes `entries` below `root` the way an extracted package holds them (directories made as
/// needed, hard links to earlier files).
void write_tree(const std::filesystem::path& root, const std::vector<TarEntry>& entries);

/// info/index.json (linux-64, build "0", `index` merged over the defaults) and info/paths.json
/// listing every file and symlink of `files` (hardlink and softlink entries).
std::vector<TarEntry> package_info(const std::string& name, const std::vector<TarEntry>& files,
                                   const nlohmann::json& index = nlohmann::json::object());

}  // namespace envbuild::testing
