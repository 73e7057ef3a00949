#pragma once

// Reading conda package archives (CEP 35): `.conda` (an uncompressed ZIP holding
// `info-<stem>.tar.zst` and `pkg-<stem>.tar.zst`) and legacy `.tar.bz2`. Everything is streamed
// through libarchive; no package is ever held in memory. Entry paths are validated before a
// visitor sees them: hostile entries (absolute paths, `..`, device nodes, hard links that leave
// the package) are errors, never silently dropped.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/io.hpp"
#include "common/result.hpp"

namespace envbuild::conda {

/// Conda packages, and wheels (PEP 427: a zip), which the package cache extracts the same way.
enum class PackageFormat { Conda, TarBz2, Wheel };

/// The format from the file name (".conda", ".tar.bz2" or ".whl"); Unsupported otherwise.
Result<PackageFormat> package_format_of(const std::filesystem::path& package);
/// The file name without its package extension: "zlib-1.2.11-h7b6447c_3".
std::string package_stem(const std::filesystem::path& package);

enum class EntryType { File, Directory, Symlink, Hardlink };
std::string_view to_string(EntryType type);

/// One validated archive entry.
struct ArchiveEntry {
  std::string path;  // relative, normalized: no "./", no trailing '/', no ".."
  EntryType type = EntryType::File;
  uint32_t mode = 0644;     // permission bits as stored (setuid/setgid/sticky included)
  uint64_t size = 0;        // bytes of data (File only)
  std::string link_target;  // Symlink: target as stored; Hardlink: normalized package path
};

/// Which parts of a package to visit. For `.conda` this picks the inner tarballs (Info never
/// decompresses the payload); for `.tar.bz2` it filters by the `info/` prefix; a wheel has
/// no such parts (every entry is visited).
enum class Components { Info, Pkg, All };

enum class Walk { Continue, Stop };

/// Called once per entry. `data` streams the entry's bytes and is valid only during the call;
/// whatever the visitor leaves unread is skipped.
using EntryVisitor =
    std::function<Result<Walk>(const ArchiveEntry& entry, common::ByteSource& data)>;

/// Streams the entries of `package` in archive order. Errors name the libarchive call, the
/// package and the entry (`archive_read_next_header(x.conda/pkg-x.tar.zst): Truncated input`).
/// A `.conda` without an info component is an Integrity error; one without a payload component
/// is accepted (an info-only package).
Result<void> walk_package(const std::filesystem::path& package, Components components,
                          const EntryVisitor& visitor);

/// Normalizes a raw archive path ("./lib//x/" -> "lib/x"). Returns "" for the root itself and
/// an InvalidInput error for absolute paths, ".." components and NUL bytes.
Result<std::string> normalize_entry_path(std::string_view raw);

/// True if a symlink at `link_path` (package-relative) pointing to `target` resolves inside the
/// package root, judged lexically (no file system access).
bool symlink_stays_inside(std::string_view link_path, std::string_view target);

}  // namespace envbuild::conda
