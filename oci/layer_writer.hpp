#pragma once

// Deterministic layer tars (OCI layer.md): entries sorted by path, owner uid/gid fixed, one fixed
// mtime, modes normalised, no atime/ctime/xattrs/user names, every parent directory explicit.
// The tar is compressed and written straight into a BlobStore in one pass that also computes
// the diff_id (sha256 of the tar) and the blob digest; nothing is held in memory.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/io.hpp"
#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/compression.hpp"
#include "oci/descriptor.hpp"

namespace envbuild::oci {

/// One entry of a layer: a path inside the layer and where its content comes from.
struct LayerEntry {
  enum class Kind { File, Directory, Symlink, Hardlink, Whiteout, OpaqueWhiteout };

  std::string path;  // relative, '/'-separated: "opt/env/bin/python"
  Kind kind = Kind::File;
  std::filesystem::path source;  // File: the file on disk to copy (never followed if a link)
  std::string target;            // Symlink: link text; Hardlink: path of another File entry
  /// Permission bits; by default 0755 for directories and for files with any exec bit,
  /// else 0644. setuid/setgid are always dropped; the sticky bit is kept (tmp = 01777).
  std::optional<uint32_t> mode;

  static LayerEntry file(std::string path, std::filesystem::path source);
  static LayerEntry directory(std::string path);
  static LayerEntry symlink(std::string path, std::string target);
  static LayerEntry hardlink(std::string path, std::string target);
  /// `path` is deleted from lower layers (written as `.wh.<name>`).
  static LayerEntry whiteout(std::string path);
  /// The lower layers' content of directory `path` is hidden (`.wh..wh..opq`).
  static LayerEntry opaque(std::string path);
};

struct LayerOptions {
  Compression compression = Compression::Gzip;
  std::optional<int> level;      // default_level(compression) when unset
  std::optional<int64_t> mtime;  // default_source_date_epoch() when unset
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct LayerInfo {
  Descriptor descriptor;  // media type, blob digest, compressed size
  Digest diff_id;         // sha256 of the uncompressed tar
  int64_t uncompressed_size = 0;
};

/// $SOURCE_DATE_EPOCH when set to a valid integer, else 0 (reproducible-builds.org semantics).
int64_t default_source_date_epoch();

/// Writes the entries as one layer blob into `store`. The input order does not matter; paths are
/// normalised ("./a//b/" -> "a/b") and sorted byte-wise. Duplicate paths (other than repeated
/// directories), unsafe paths ("..", absolute), non-regular sources and hardlinks to missing
/// files are InvalidInput. A source that changes size while being read is an Io error.
Result<LayerInfo> write_layer(std::vector<LayerEntry> entries, const LayerOptions& options,
                              const BlobStore& store);

/// Like write_layer, but streams the compressed layer into `sink` (closed at the end).
Result<LayerInfo> write_layer_to(std::vector<LayerEntry> entries, const LayerOptions& options,
                                 common::ByteSink& sink);

/// Entries for every file, directory and symlink under `dir` (not `dir` itself), placed under
/// `prefix` in the layer; files that share an inode become hardlinks. Never follows symlinks.
Result<std::vector<LayerEntry>> entries_from_tree(const std::filesystem::path& dir,
                                                  const std::string& prefix = "");

}  // namespace envbuild::oci
