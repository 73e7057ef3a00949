#pragma once

// Moving an installed environment to another directory. An installer that patched files for a
// prefix records where the prefix sits in each of them (RelocationRecord) in one index,
// conda-meta/envbuild-relocations.json; relocate_prefix() rewrites exactly those bytes for a new
// prefix and updates the index, so the move can be repeated (A -> B -> C equals A -> C).

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/prefix_replace.hpp"

namespace envbuild::conda {

/// The index's path inside a prefix.
inline constexpr std::string_view kRelocationIndexPath = "conda-meta/envbuild-relocations.json";

/// conda-meta/envbuild-relocations.json: the prefix the files hold now and one record per
/// patched file (paths prefix-relative).
struct RelocationIndex {
  int format = 1;
  std::string prefix;
  std::vector<RelocationRecord> files;
  bool operator==(const RelocationIndex&) const = default;
};

/// Deterministic JSON text (one record per patched file, in the given order).
std::string to_json_string(const RelocationIndex& index);
Result<RelocationIndex> parse_relocation_index(std::string_view text, std::string_view what);
/// Reads `<prefix_dir>/conda-meta/envbuild-relocations.json`; NotFound if there is none.
Result<RelocationIndex> read_relocation_index(const std::filesystem::path& prefix_dir);

struct RelocateStats {
  size_t files = 0;  // files rewritten
  size_t text_files = 0;
  size_t binary_files = 0;
};

/// Rewrites every patched file under `dir` (the environment, already moved there) from
/// `old_prefix` to `new_prefix`, then the index. An empty `old_prefix` means the index's prefix;
/// a non-empty one must equal it (InvalidInput otherwise: the index knows where the bytes are).
/// Errors: NotFound (no index), InvalidInput (a binary string has no room for a longer prefix:
/// nothing is changed in that case, since every record is checked first), Integrity (a file no
/// longer holds the prefix where its record says). Not safe against a concurrent writer.
Result<RelocateStats> relocate_prefix(const std::filesystem::path& dir, std::string_view old_prefix,
                                      std::string_view new_prefix);

}  // namespace envbuild::conda
