#pragma once

// Reading SquashFS images that may be hostile (an image file a user was given): the superblock
// and every table offset are checked against the file before libsquashfs reads them, each inode's
// sizes are checked before it is decoded (a file size or link target that would make the library
// allocate gigabytes is refused first), names must be plain ("a", never "", ".", "..", "a/b"),
// directories may not repeat (a cycle), and depth, entry count and sizes are bounded. Extraction
// writes beneath a common::RootDir, creating symlinks as data and never following one.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/root_dir.hpp"

namespace envbuild::squashfs {

struct ReadLimits {
  size_t max_depth = 256;
  uint64_t max_entries = 10'000'000;
  uint64_t max_file_size = uint64_t{64} << 30;
  uint64_t max_total_size = uint64_t{1} << 40;  // file content extracted in all
};

/// What the superblock says.
struct ImageSummary {
  std::string compression;  // "gzip", "zstd", "xz", "lz4", "lzma"
  uint32_t block_size = 0;
  uint32_t inodes = 0;
  uint64_t bytes_used = 0;
  int64_t mtime = 0;
};

/// One entry met by walk().
struct EntryInfo {
  enum class Kind { File, Directory, Symlink, Other };  // Other: device, fifo, socket
  std::string path;                                     // relative: "bin/python"
  Kind kind = Kind::File;
  uint32_t mode = 0;   // permission bits
  uint64_t size = 0;   // File: bytes
  std::string target;  // Symlink
};

struct ExtractStats {
  uint64_t files = 0, directories = 0, symlinks = 0, skipped = 0;  // skipped: fifos, sockets
  uint64_t bytes = 0;
};

/// An open image. Not thread-safe: one reader per thread.
class Reader {
 public:
  /// Opens a regular file (never blocks on a FIFO) and checks its superblock and tables.
  /// Integrity errors for anything that is not a sound SquashFS 4.0 image.
  static Result<Reader> open(const std::filesystem::path& path, const ReadLimits& limits = {});
  /// The same for an image in memory (tests, the fuzzer); `bytes` must outlive the reader.
  static Result<Reader> open_memory(std::span<const std::byte> bytes,
                                    const ReadLimits& limits = {});

  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  ~Reader();

  [[nodiscard]] const ImageSummary& summary() const noexcept;

  /// Every entry, depth first in the image's order (parents before children); stops at the first
  /// error `visit` returns.
  Result<void> walk(const std::function<Result<void>(const EntryInfo&)>& visit) const;

  /// The content of the regular file at `path` ("a/b"), reached through directories only (a
  /// symlink on the way is not followed: NotFound). nullopt when there is no such file; a file
  /// larger than `max_bytes` is an error.
  Result<std::optional<std::string>> read_file(std::string_view path, size_t max_bytes) const;

  /// Extracts the whole tree into `dest` (an existing, empty directory): directories (owner
  /// rwx kept so the tree stays removable), files with their permission bits (setuid, setgid and
  /// sticky dropped), symlinks as they are. FIFOs and sockets are skipped; a device is an error.
  Result<ExtractStats> extract(const common::RootDir& dest) const;

  /// The libsquashfs state, defined in reader.cpp only (its C headers stay out of this one).
  struct Impl;

 private:
  explicit Reader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// True when the file at `path` starts with the SquashFS magic ("hsqs"); false when it does not
/// or cannot be read.
bool has_squashfs_magic(const std::filesystem::path& path);

}  // namespace envbuild::squashfs
