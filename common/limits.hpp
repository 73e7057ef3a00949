#pragma once

// Bounds on unpacking untrusted archives (image layers, conda packages, image archives): a
// 1 MB layer must not become 1 GB on disk, nor an image a million layers. The defaults let
// every real layer and package through (a CUDA toolkit unpacks to a few GiB with tens of
// thousands of files, text-heavy packages expand 10 to 20 times) and stop bombs early: each
// limit is checked against an entry's declared size before a byte of it is written, so the
// refusal comes before the disk fills. Every refusal names its limit and the variable that
// raises it (<TOOL>_MAX_EXPANSION, _MAX_UNPACKED_BYTES, _MAX_ENTRIES, _MAX_LAYERS; README,
// docs/security.md).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::common {

struct UnpackLimits {
  /// Unpacked bytes (file content) per compressed byte of the archive, checked once the
  /// content passes `expansion_floor`. 0: no check.
  uint64_t max_expansion = 100;
  uint64_t expansion_floor = uint64_t{64} << 20;
  /// File content of one archive (a layer, a package). 0: no limit.
  uint64_t max_bytes = uint64_t{64} << 30;
  /// Entries (files, directories, links) of one archive. 0: no limit.
  uint64_t max_entries = 2'000'000;
  /// Layers of one image. OCI sets no limit; Docker and containerd refuse more than about 127
  /// (overlayfs mount options fill a page). envrun composes layers by hard links, without
  /// mounts, so it allows four times Docker's limit: every image Docker runs, and those built
  /// for runtimes without the limit, while a million empty layers cannot make it create a
  /// million cache entries and locks. 0: no limit.
  uint64_t max_layers = 500;
  /// Bytes of an entry's path: Linux's PATH_MAX (longer ones cannot be created anyway).
  size_t max_path_length = 4096;
  /// Components of an entry's path. Real trees nest a few dozen levels; each level costs the
  /// extractors a descriptor or a remembered name, so 2000-level paths in a tiny layer would
  /// cost memory quadratic in their length.
  size_t max_path_depth = 256;
  /// The prefix of the variables that raise the limits, named in messages: "ENVRUN" for envrun,
  /// "ENVBUILD" for envbuild.
  std::string tool = "ENVBUILD";

  /// The defaults with <tool>_MAX_EXPANSION, <tool>_MAX_UNPACKED_BYTES (a size: 100G, 512M),
  /// <tool>_MAX_ENTRIES and <tool>_MAX_LAYERS applied; a value that is not a number is an
  /// InvalidInput error naming the variable.
  static Result<UnpackLimits> from_environment(std::string_view tool);
};

/// The Integrity error for an archive past one of `limits`: "<message> (limit: <limit>)", with
/// the hint "raise it with <tool>_<variable>=N (0: no limit)". `variable` is "MAX_EXPANSION",
/// "MAX_UNPACKED_BYTES", "MAX_ENTRIES" or "MAX_LAYERS".
Error limit_exceeded(const UnpackLimits& limits, std::string_view variable, std::string message,
                     std::string_view limit);

/// Checks the layer count of `image` (named in the message) against max_layers.
Result<void> check_layer_count(const UnpackLimits& limits, std::string_view image, uint64_t layers);

/// Checks an entry's path (as stored in the archive) against max_path_length and max_path_depth.
Result<void> check_entry_path(const UnpackLimits& limits, std::string_view path);

/// Checks what an archive will hold once an entry of `entry_bytes` is added to `bytes_so_far`
/// (file content) as its `entries`-th entry: against max_entries, max_bytes and, for an archive
/// of `compressed_size` bytes (0: unknown), max_expansion. `what` names the archive and entry in
/// the message.
Result<void> check_unpack_limits(const UnpackLimits& limits, std::string_view what,
                                 uint64_t entries, uint64_t bytes_so_far, uint64_t entry_bytes,
                                 uint64_t compressed_size);

}  // namespace envbuild::common
