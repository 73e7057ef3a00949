#pragma once

// The metadata files of a wheel's .dist-info directory: METADATA (core metadata, an RFC 822
// header block), WHEEL, entry_points.txt and RECORD. All of it comes from untrusted wheels and
// indexes: the parsers bound what they read and never recurse.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/pypi/requirement.hpp"
#include "conda/pypi/specifier.hpp"
#include "conda/pypi/version.hpp"

namespace envbuild::conda::pypi {

/// The core metadata fields installing and resolving need (Name, Version, Requires-Dist,
/// Requires-Python, Provides-Extra).
struct CoreMetadata {
  std::string name;
  Version version;
  std::vector<Requirement> requires_dist;
  std::optional<SpecifierSet> requires_python;
  std::vector<std::string> provides_extra;  // normalized
};

/// Parses the header block of a METADATA (or PKG-INFO, or PEP 658 .metadata) file; the body
/// (the long description) is not read. `origin` names the file in errors. Name and Version are
/// required; a Requires-Dist that is not PEP 508 is an InvalidInput error quoting it.
Result<CoreMetadata> parse_core_metadata(std::string_view text, std::string_view origin);

/// The WHEEL file (PEP 427): format version and where the root goes.
struct WheelInfo {
  std::string wheel_version = "1.0";
  bool root_is_purelib = true;
};
Result<WheelInfo> parse_wheel_info(std::string_view text, std::string_view origin);

/// One console or GUI script of entry_points.txt: `name = module:object.attr [extras]`.
struct ScriptEntryPoint {
  std::string name;
  std::string module;
  std::string object;  // "main" or "Cls.method"; empty runs the module
  bool gui = false;
  bool operator==(const ScriptEntryPoint&) const = default;
};
/// The [console_scripts] and [gui_scripts] sections, in file order. A script name with a path
/// separator or a module that is not dotted identifiers is an InvalidInput error.
Result<std::vector<ScriptEntryPoint>> parse_entry_points(std::string_view text,
                                                         std::string_view origin);

/// The launcher pypa/installer writes for an entry point (after its shebang line).
std::string entry_point_launcher(const ScriptEntryPoint& entry_point);

/// One RECORD row.
struct RecordRow {
  std::string path;  // relative to site-packages, '/'-separated; may start with ../
  std::string hash;  // "sha256=<urlsafe base64 without padding>", or empty
  std::optional<uint64_t> size;
  bool operator==(const RecordRow&) const = default;
};
/// "sha256=" + urlsafe base64 (no padding) of the digest whose hex is given: RECORD's form.
std::string record_hash_from_hex(std::string_view sha256_hex);
/// RECORD text: CSV rows (quoted where needed) in the given order, "\n" line ends.
std::string to_record_text(const std::vector<RecordRow>& rows);
/// Parses RECORD text (CSV with quoting); bounded to 1,000,000 rows.
Result<std::vector<RecordRow>> parse_record(std::string_view text, std::string_view origin);

}  // namespace envbuild::conda::pypi
