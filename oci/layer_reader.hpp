#pragma once

// Extracting layer tars into a directory (OCI layer.md "Applying changesets"), with the
// whiteouts applied and every path checked: no entry may write outside the root, by `..`, an
// absolute name, a symlink met on the way (symlinks are never followed while creating a path),
// or a hardlink to something outside.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/io.hpp"
#include "common/limits.hpp"
#include "common/result.hpp"

namespace envbuild::oci {

enum class Whiteouts : bool { Keep, Apply };
enum class AllowDevices : bool { No, Yes };

struct ExtractOptions {
  /// Apply `.wh.` entries (layers) or keep them as plain files (tars that are not layers).
  Whiteouts whiteouts = Whiteouts::Apply;
  AllowDevices allow_devices = AllowDevices::No;  // char/block nodes; fifos are always allowed
  /// Permission bits cleared on every regular file (07222: read-only files, which envrun's layer
  /// cache shares between prefixes by hardlinks).
  mode_t clear_file_bits = 0;
  /// Bombs and floods (content size, expansion, entries, path length; common/limits.hpp): an
  /// Integrity error naming the limit, checked before a byte of the entry is written. envrun
  /// takes them from ENVRUN_MAX_* (UnpackLimits::from_environment).
  common::UnpackLimits limits;
  /// The layer's compressed size (its descriptor's), which the expansion limit compares the
  /// content with; 0 when unknown, and then only the other limits apply.
  /// extract_layer_file takes the file's size.
  uint64_t compressed_size = 0;
  /// When set, only the entries whose path (relative, normalized: "opt/conda/conda-meta/x.json")
  /// it accepts are written, with the directories above them; the others are read past (the
  /// limits still count them). Whiteouts always apply. For reading a few files out of an image.
  std::function<bool(std::string_view path)> select;
};

struct ExtractStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // regular file content written
};

/// Extracts a layer (gzip, zstd or plain tar, detected from the magic) into `root`, which must
/// exist. Errors (Integrity for hostile or corrupt input) name the entry; on error, what was
/// already extracted stays, but nothing is ever written outside `root`.
Result<ExtractStats> extract_layer(common::ByteSource& layer, const std::filesystem::path& root,
                                   const ExtractOptions& options = {});
Result<ExtractStats> extract_layer_file(const std::filesystem::path& layer,
                                        const std::filesystem::path& root,
                                        const ExtractOptions& options = {});

}  // namespace envbuild::oci
