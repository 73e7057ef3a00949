#pragma once

// Moving a whole unpacked conda prefix to a new location with the relocation records that
// `envbuild build` stores in conda-meta/envbuild-relocations.json:
//   {"format": 1, "prefix": "/opt/conda", "files": [<conda::RelocationRecord JSON>...]}
// Record paths are relative to the prefix. Text files take any new prefix; binary files only a
// prefix no longer than their record's `room` (the package's placeholder length).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "conda/prefix_replace.hpp"

namespace envbuild::runtime {

/// Where relocation records live, relative to the prefix.
inline constexpr std::string_view kRelocationsFile = "conda-meta/envbuild-relocations.json";

struct PrefixRelocations {
  std::string prefix;  // the prefix the files hold now
  std::vector<conda::RelocationRecord> files;
};

/// Reads `<dir>/conda-meta/envbuild-relocations.json`; nullopt when the file is absent (nothing
/// to relocate).
Result<std::optional<PrefixRelocations>> read_relocations(const std::filesystem::path& dir);

/// The longest prefix every binary file can take (min room over binary records); nullopt when
/// there are no binary records.
std::optional<uint64_t> binary_room(const PrefixRelocations& relocations);

struct RelocateStats {
  size_t files = 0;
  size_t binary_files = 0;
};

/// Rewrites every recorded file under `dir` (where the prefix's files sit now; it may be a
/// staging directory) so that they refer to `new_prefix`, then rewrites the relocations file
/// with the new records. Checks the binary room before touching any file: a prefix that does
/// not fit is InvalidInput naming the file, the room and the length, with a hint. Hard links are
/// broken before a file is patched; read-only files are made writable for the patch.
Result<RelocateStats> relocate_tree(const std::filesystem::path& dir, const std::string& new_prefix);

}  // namespace envbuild::runtime
