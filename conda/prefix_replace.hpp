#pragma once

// Prefix replacement at install time (CEP 34 `prefix_placeholder`, conda core/portability.py
// semantics) plus relocation records, so a patched file can be moved to another prefix later,
// any number of times, without the original package.
//
// Rules come from the TARGET platform (the environment's subdir), never from the host:
//  - text mode: every occurrence is replaced (UTF-8 only, like mamba and rattler). On Unix
//    targets a `#!<placeholder>` shebang gets spaces in the new prefix escaped, and a first line
//    longer than 127 bytes (Linux) / 512 (macOS), or one whose interpreter directory holds an
//    escaped space, becomes `#!/usr/bin/env <basename><args>`. Windows targets get forward
//    slashes in the new prefix.
//  - binary mode: each C string that starts with the placeholder (up to its NUL, newlines
//    included) has every placeholder inside replaced and is padded with
//    (len(placeholder) - len(new)) x count NULs, keeping the file length. A new prefix longer
//    than the placeholder is an error. Windows binaries (pyzzer launchers) are Unsupported.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.hpp"
#include "common/root_dir.hpp"
#include "conda/package_metadata.hpp"

namespace envbuild::conda {

enum class TargetOs { Linux, MacOs, Windows };
std::string_view to_string(TargetOs os);
/// "win-64" -> Windows, "osx-arm64" -> MacOs, anything else (linux-*, noarch) -> Linux.
TargetOs target_os_for_subdir(std::string_view subdir);
/// The longest first line the kernel honours as a shebang: 127 (Linux), 512 (macOS).
size_t max_shebang_length(TargetOs os);

/// A C string in a binary file that holds the prefix.
struct BinaryString {
  uint64_t offset = 0;  // file offset where the C string starts
  uint64_t length = 0;  // bytes from offset up to (not including) its terminating NUL: the room
  std::vector<uint64_t> prefix_positions;  // where the prefix sits now, relative to offset
  auto operator<=>(const BinaryString&) const = default;
};

/// Where the prefix sits in one patched file. Enough to move the file to another prefix later
/// (see relocate()); text files can take any prefix, binary files one of at most `room` bytes.
struct RelocationRecord {
  std::string path;  // as given by the caller (normally prefix-relative)
  FileMode file_mode = FileMode::Text;
  TargetOs target = TargetOs::Linux;
  std::string placeholder;  // the package's original placeholder
  uint64_t room = 0;        // placeholder length: the longest prefix binary strings can take
  // Text: absolute offsets of each prefix occurrence after the first line.
  std::vector<uint64_t> offsets;
  // Text: the original first line (placeholder included) when it held the placeholder, so the
  // shebang rules can be re-applied from scratch for every new prefix; its current length.
  std::optional<std::string> shebang_template;
  uint64_t first_line_length = 0;
  // Binary: every patched C string.
  std::vector<BinaryString> strings;
  auto operator<=>(const RelocationRecord&) const = default;
};

nlohmann::json to_json(const RelocationRecord& record);
Result<RelocationRecord> relocation_record_from_json(const nlohmann::json& j);

struct PrefixReplacement {
  std::string placeholder;
  std::string new_prefix;
  FileMode mode = FileMode::Text;
  TargetOs target = TargetOs::Linux;
};

struct PatchedContent {
  std::string content;
  RelocationRecord record;
};

/// In memory (tests, small files). nullopt: the placeholder does not occur; nothing to do.
Result<std::optional<PatchedContent>> replace_prefix(std::string_view content,
                                                     const PrefixReplacement& replacement);
/// In memory: moves content patched per `record` from `old_prefix` to `new_prefix`. The record
/// returned describes the new content. Integrity error if the content no longer matches.
Result<PatchedContent> relocate_content(std::string_view content, const RelocationRecord& record,
                                        std::string_view old_prefix, std::string_view new_prefix);

/// Patches `file` (memory-mapped, never read whole). Binary files are patched in place with
/// pwrite (the length never changes); text files are rewritten through a temp file + rename
/// with the same mode (no fsync: callers mark their trees complete with one durable write).
/// with the same mode. The caller must own the file (a copy, not a hard link into a package
/// cache). Returns nullopt, leaving the file untouched, when the placeholder does not occur.
/// `record_path` goes into the record (default: `file` as given).
Result<std::optional<RelocationRecord>> replace_prefix_in_file(
    const std::filesystem::path& file, const PrefixReplacement& replacement,
    std::optional<std::string> record_path = std::nullopt);

/// Moves the file a record names (beneath `root`, the prefix: no symlink is followed) from
/// `old_prefix` to `new_prefix`; returns the record for the new state. A -> B -> C gives the same
/// bytes as A -> C. The record is validated first (records come from images: untrusted), and the
/// file must hold exactly what the record says (Integrity otherwise). A file shared by hard links
/// gets its own inode; a binary file of its own is patched in place.
Result<RelocationRecord> relocate(const common::RootDir& root, const RelocationRecord& record,
                                  std::string_view old_prefix, std::string_view new_prefix);

/// Limits on records read from an image.
inline constexpr size_t kMaxPlaceholderLength = 4096;
inline constexpr size_t kMaxShebangTemplateLength = 8192;
inline constexpr uint64_t kMaxBinaryStringLength = uint64_t{1} << 20;

/// Checks a record from an untrusted index: a path inside the prefix, an absolute one-line
/// placeholder whose length is the room, a shebang template that is "#!<placeholder>/..." on one
/// line, sorted non-overlapping offsets and strings. Integrity error naming the record otherwise.
Result<void> validate_record(const RelocationRecord& record);

/// The shebang rules alone: `line` is a first line (no newline) already holding `new_prefix`
/// where the placeholder was. Exposed for tests and for noarch entry points.
std::string fix_long_shebang(std::string_view line, TargetOs target);

}  // namespace envbuild::conda
