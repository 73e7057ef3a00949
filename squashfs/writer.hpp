#pragma once

// Reproducible SquashFS images (the 4.0 format the kernel and squashfuse mount), written with
// libsquashfs from a list of entries whose content is read from files where they lie (an extracted
// package cache, a staging directory): nothing is copied into a tree first.
//
// Same entries and options -> same bytes: entries sorted byte-wise, every parent directory made
// explicit, owner 0:0, one fixed mtime (inodes and superblock), modes normalised as in layer tars
// (oci/layer_writer.hpp), no xattrs, file data written in path order (so the order of data and
// fragment blocks follows the paths, whatever the number of compression threads), and the
// compressor at a fixed level.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::squashfs {

enum class Compression { Gzip, Zstd };

std::string_view to_string(Compression c);
/// "gzip" or "zstd"; anything else is InvalidInput naming the text.
Result<Compression> parse_compression(std::string_view text);
/// The level used when none is given: gzip 9 and zstd 15, what mksquashfs uses.
int default_level(Compression c);

/// One entry of an image: a path below the image's root and where its content comes from.
struct Entry {
  enum class Kind { File, Directory, Symlink };

  std::string path;  // relative, '/'-separated: "bin/python"
  Kind kind = Kind::File;
  std::filesystem::path source;        // File: the file to read (never followed if a link)...
  std::optional<std::string> content;  // ... or these bytes when set
  std::string target;                  // Symlink: link text (data; never resolved)
  /// Permission bits; by default 0755 for directories and for files with any exec bit, else
  /// 0644 (a content file: 0644). setuid/setgid are dropped; the sticky bit is kept.
  std::optional<uint32_t> mode;

  static Entry file(std::string path, std::filesystem::path source);
  static Entry file_with_content(std::string path, std::string content);
  static Entry directory(std::string path);
  static Entry symlink(std::string path, std::string target);
};

struct WriteOptions {
  Compression compression = Compression::Zstd;
  std::optional<int> level;  // default_level(compression) when unset
  int64_t mtime = 0;         // of every inode and of the image (SOURCE_DATE_EPOCH)
  uint32_t block_size = 128 * 1024;
  size_t jobs = 4;  // compression threads; the output does not depend on it
};

struct WriteInfo {
  uint64_t size = 0;  // bytes of the image file (padded to 4 KiB)
  uint64_t files = 0, directories = 0, symlinks = 0;
  uint64_t content_bytes = 0;  // bytes of file content read
};

/// Writes `entries` as a SquashFS image to `output`, atomically (a temporary sibling renamed into
/// place). The input order does not matter; paths are normalised ("./a//b/" -> "a/b") and sorted.
/// Errors: InvalidInput for unsafe paths ("..", absolute, a name over 255 bytes), duplicates
/// (other than repeated directories), a path below a file or symlink, a symlink target over 4095
/// bytes, a source that is not a regular file; Io when a source changes size while it is read.
Result<WriteInfo> write_image(std::vector<Entry> entries, const WriteOptions& options,
                              const std::filesystem::path& output);

/// Entries for every file, directory and symlink below `dir` (not `dir` itself); never follows a
/// symlink. Files that share an inode become separate files (the image stores their blocks once).
Result<std::vector<Entry>> entries_from_tree(const std::filesystem::path& dir);

}  // namespace envbuild::squashfs
