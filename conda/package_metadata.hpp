#pragma once

// The metadata inside a conda package's info/ folder (CEP 34): index.json, paths.json (or the
// legacy files + has_prefix + no_link it supersedes), link.json and about.json. Parsers take the
// file text plus a name for error messages; read_package_metadata() streams them out of an
// archive.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.hpp"
#include "conda/file_mode.hpp"

namespace envbuild::conda {

/// The default placeholder of conda-build before long prefixes (conda base/constants.py).
inline constexpr std::string_view kDefaultPlaceholder = "/opt/anaconda1anaconda2anaconda3";

/// The most an info/ file may hold: the largest real paths.json files (tens of thousands of
/// entries) are a few MiB.
inline constexpr size_t kMaxInfoFileBytes = size_t{32} << 20;

/// info/index.json: the fields envbuild reads. Kept minimal on purpose; the repodata record type
/// lives in package_record.hpp.
struct PackageIndex {
  std::string name;
  std::string version;
  std::string build;
  int64_t build_number = 0;
  std::string subdir;  // may be empty in very old packages
  std::string noarch;  // "", "python" or "generic"
  std::string license;
  std::vector<std::string> depends;
  std::vector<std::string> constrains;
  std::optional<int64_t> timestamp;
};

enum class PathType { HardLink, SoftLink, Directory };
std::string_view to_string(PathType type);
std::string_view to_string(FileMode mode);

/// One entry of info/paths.json.
struct PathEntry {
  std::string path;
  PathType path_type = PathType::HardLink;
  FileMode file_mode = FileMode::Text;
  std::string prefix_placeholder;  // empty: nothing to replace
  bool no_link = false;
  std::string sha256;  // empty when unknown (legacy packages)
  std::optional<uint64_t> size_in_bytes;
};

/// One line of info/has_prefix.
struct HasPrefixEntry {
  std::string placeholder;
  FileMode file_mode = FileMode::Text;
  std::string path;
};

/// `name = module:function` from link.json's noarch.entry_points.
struct EntryPoint {
  std::string command;
  std::string module;
  std::string function;  // may be dotted ("Class.method")
  static Result<EntryPoint> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;
  auto operator<=>(const EntryPoint&) const = default;
};

/// info/link.json.
struct LinkJson {
  std::string noarch_type;  // "python", "generic" or ""
  std::vector<EntryPoint> entry_points;
};

/// info/about.json: the fields envbuild shows.
struct AboutJson {
  std::string license;
  std::string license_family;
  std::string summary;
  std::string home;
};

/// Everything read from info/.
struct PackageMetadata {
  PackageIndex index;
  std::vector<PathEntry> paths;
  bool paths_from_legacy = false;  // built from info/files + has_prefix + no_link
  std::optional<LinkJson> link;
  std::optional<AboutJson> about;
};

Result<PackageIndex> parse_index_json(std::string_view text, std::string_view source);
Result<std::vector<PathEntry>> parse_paths_json(std::string_view text, std::string_view source);
/// Lines are a bare path (default placeholder, text) or `placeholder mode path`, fields
/// optionally double-quoted (conda gateways/disk/read.py).
Result<std::vector<HasPrefixEntry>> parse_has_prefix(std::string_view text,
                                                     std::string_view source);
Result<LinkJson> parse_link_json(std::string_view text, std::string_view source);
Result<AboutJson> parse_about_json(std::string_view text, std::string_view source);
/// Paths from the legacy files: info/files (one path a line), has_prefix, no_link. Symlinks are
/// marked from `symlinks` (the archive knows them; the legacy files do not).
std::vector<PathEntry> paths_from_legacy(std::string_view files,
                                         const std::vector<HasPrefixEntry>& has_prefix,
                                         std::string_view no_link,
                                         const std::vector<std::string>& symlinks);

/// Streams info/ out of `package` and parses it. A package without info/index.json is an
/// Integrity error; paths fall back to the legacy files when paths.json is absent.
Result<PackageMetadata> read_package_metadata(const std::filesystem::path& package);

nlohmann::json to_json(const PathEntry& entry);
nlohmann::json to_json(const PackageIndex& index);

}  // namespace envbuild::conda
