#pragma once

// Repodata records and installed (conda-meta) records (CEP 32 / conda's PackageRecord and
// PrefixRecord; landscape.md 4.3).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.hpp"
#include "conda/file_mode.hpp"
#include "conda/version.hpp"

namespace envbuild::conda {

enum class NoArchType { None, Generic, Python };

/// One package build as repodata.json describes it. Plain data; dependency strings are kept
/// as written (parse them with MatchSpec::parse when needed).
struct PackageRecord {
  std::string name;
  Version version;
  std::string build;
  std::uint64_t build_number = 0;
  std::string channel;  // a name or URL, as the source wrote it
  std::string subdir;
  std::string url;
  std::string fn;
  std::string md5;     // lowercase hex or empty
  std::string sha256;  // lowercase hex or empty
  std::optional<std::uint64_t> size;
  std::vector<std::string> depends;
  std::vector<std::string> constrains;
  std::string license;
  std::string license_family;
  std::optional<std::int64_t> timestamp;  // build time in ms since the epoch, as in repodata
  NoArchType noarch = NoArchType::None;
  std::vector<std::string> track_features;
  std::string features;                   // legacy, space separated
  std::string python_site_packages_path;  // CEP 17

  bool operator==(const PackageRecord&) const = default;
};

/// How a file of an installed package got into the prefix (conda's PrefixPathType, with the
/// installed-only kinds).
enum class PrefixPathType {
  HardLink,
  SoftLink,
  Directory,
  PycFile,
  UnixPythonEntryPoint,
  WindowsPythonEntryPointScript,
  WindowsPythonEntryPointExe,
  LinkedPackageRecord,
};

std::string_view to_string(PrefixPathType type);
Result<PrefixPathType> parse_prefix_path_type(std::string_view text);

/// One `paths_data.paths[]` entry of an installed record. Unlike a package's paths.json entry
/// it has the installed-only path types and `sha256_in_prefix` for patched files.
struct PrefixPathsEntry {
  std::string path;  // relative to the prefix, as recorded (Windows records use backslashes)
  PrefixPathType path_type = PrefixPathType::HardLink;
  std::string sha256;            // of the file in the package; may be empty
  std::string sha256_in_prefix;  // of the file after prefix replacement; may be empty
  std::optional<std::uint64_t> size_in_bytes;
  std::optional<FileMode> file_mode;
  std::string prefix_placeholder;
  bool no_link = false;

  bool operator==(const PrefixPathsEntry&) const = default;
};

/// An installed package: `conda-meta/<name>-<version>-<build>.json`. Serialization leaves out
/// what depends on the machine that installed it (extracted_package_dir,
/// package_tarball_full_path, link.source), so the same install gives the same bytes anywhere.
struct PrefixRecord {
  PackageRecord record;
  std::vector<std::string> files;
  std::vector<PrefixPathsEntry> paths;  // paths_data.paths
  std::string requested_spec;           // empty when the package was pulled in
  std::optional<int> link_type;         // link.type (1 hard link, 2 soft link, 3 copy)

  bool operator==(const PrefixRecord&) const = default;
  /// `<name>-<version>-<build>.json`.
  [[nodiscard]] std::string file_name() const;
};

/// Reads a repodata record (`packages` value, index.json, repodata_record.json). Unknown keys
/// are ignored; wrong types are errors naming the key.
Result<PackageRecord> package_record_from_json(const nlohmann::json& json);
/// Keys sorted, empty/absent fields left out, `depends` always present.
nlohmann::json to_json(const PackageRecord& record);

Result<PrefixRecord> prefix_record_from_json(const nlohmann::json& json);
nlohmann::json to_json(const PrefixRecord& record);

/// Parses JSON text; `what` (a file name) prefixes errors.
Result<PackageRecord> parse_package_record(std::string_view text, std::string_view what);
Result<PrefixRecord> parse_prefix_record(std::string_view text, std::string_view what);
/// Two-space indented JSON with sorted keys and a final newline: deterministic bytes.
std::string to_json_string(const PackageRecord& record);
std::string to_json_string(const PrefixRecord& record);

}  // namespace envbuild::conda
