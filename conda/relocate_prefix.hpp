#pragma once

// Moving an installed or unpacked environment to another directory: the one relocation of the
// project, used by install, image builds (through the records they write) and envrun. An
// installer that patched files for a prefix records where the prefix sits in each of them
// (RelocationRecord) in one index, conda-meta/envbuild-relocations.json; relocate_prefix()
// rewrites exactly those bytes for a new prefix and updates the index, so the move can be repeated
// (A -> B -> C equals A -> C).
//
// The index may come from an image, so it is untrusted: every record is validated
// (validate_record) and every file is reached beneath the prefix's directory descriptor without
// following a symlink (common/root_dir.hpp). A record cannot make relocation read or write
// anything outside the prefix, nor write a first line the record's own shebang did not hold.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/root_dir.hpp"
#include "conda/prefix_replace.hpp"

namespace envbuild::conda {

/// The index's path inside a prefix.
inline constexpr std::string_view kRelocationIndexPath = "conda-meta/envbuild-relocations.json";
/// The largest index read from a prefix (a CUDA environment's is a few MB).
inline constexpr size_t kMaxRelocationIndexBytes = size_t{256} << 20;

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
/// Parses and validates an index: an absolute prefix, every record valid (validate_record).
Result<RelocationIndex> parse_relocation_index(std::string_view text, std::string_view what);
/// Reads the index beneath `prefix` (a regular file, no symlink on the way); nullopt when the
/// prefix has none.
Result<std::optional<RelocationIndex>> read_relocation_index(const common::RootDir& prefix);
Result<std::optional<RelocationIndex>> read_relocation_index(const std::filesystem::path& prefix);

/// The longest prefix every binary file can take (the least room of the binary records); nullopt
/// when there are none.
std::optional<uint64_t> binary_room(const RelocationIndex& index);

struct RelocateStats {
  size_t files = 0;  // files rewritten
  size_t text_files = 0;
  size_t binary_files = 0;
};

enum class MissingIndex : bool { Error, Skip };

/// Rewrites every patched file beneath `prefix` (the environment's files, wherever they sit now:
/// an unpacking's staging directory too) from `old_prefix` to `new_prefix`, then the index. An
/// empty `old_prefix` means the index's prefix; a non-empty one must equal it (InvalidInput
/// otherwise: the index knows where the bytes are). Errors: NotFound (no index, unless
/// MissingIndex::Skip), InvalidInput (a binary string has no room for a longer prefix: nothing is
/// changed then, since every record is checked first), Integrity (an invalid record, a symlink
/// where a record's file should be, a file that no longer holds the prefix where its record says).
/// Files shared by hard links get their own inode before they change. Not safe against a
/// concurrent writer.
Result<RelocateStats> relocate_prefix(const common::RootDir& prefix, std::string_view old_prefix,
                                      std::string_view new_prefix,
                                      MissingIndex missing = MissingIndex::Error);
Result<RelocateStats> relocate_prefix(const std::filesystem::path& dir, std::string_view old_prefix,
                                      std::string_view new_prefix,
                                      MissingIndex missing = MissingIndex::Error);

}  // namespace envbuild::conda
