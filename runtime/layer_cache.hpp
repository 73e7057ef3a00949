#pragma once

// Layers shared by several images are extracted once. Each layer blob is extracted (hostile
// entries refused, whiteouts kept as `.wh.` files) into its own directory of the envrun cache, and
// a prefix is composed from those directories: directories and symlinks are made anew, regular
// files are hardlinked, whiteouts applied. Files the relocation then patches are unshared first
// (they get their own copy), and a later layer's file replaces the name of the earlier one instead
// of writing into it, so composing never changes a shared file.
//
//   <root>/l/<64 hex>          a layer blob's files (named by the blob's digest, see below)
//   <root>/l/<64 hex>.lock     flock: exclusive while extracting or removing, shared while a
//                              prefix is composed from it (gc skips it then)
//   <root>/l/.<64 hex>.<pid>.tmp   an unfinished extraction (removed by the next one)
//
// The directory appears by a rename once complete, so its existence is the completion marker,
// and gc renames it away before removing it. Its mtime is the layer's last use (gc's age).
//
// Shared files are read-only (write bits cleared on the inode, so in every prefix too): a command
// that writes into its environment's files in place gets EACCES instead of changing every other
// prefix and the layer. Like conda's own hardlinks from its package cache this is a guard against
// accidents, not a security boundary: the owner can chmod the file back and root ignores modes.
// Files a prefix holds alone (patched by the relocation, or copied) keep an owner write bit.
// ENVRUN_SHARE_LAYERS=0 turns sharing off (every unpack extracts its layers itself).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "oci/image.hpp"

namespace envbuild::runtime {

struct ComposeStats {
  size_t layers_extracted = 0;  // extracted now
  size_t layers_reused = 0;     // found extracted
  size_t files_linked = 0;
  size_t files_copied = 0;  // across file systems (EXDEV), or at the link limit
};

struct LayerGcReport {
  std::vector<std::string> removed;  // 64 hex
  size_t in_use = 0;                 // old but being extracted or composed from: kept
  size_t stale_staging = 0;
};

class LayerCache {
 public:
  /// `dir` is <cache root>/l; nothing is created until needed.
  explicit LayerCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

  /// Whether sharing is on ($ENVRUN_SHARE_LAYERS is not "0").
  static bool enabled();

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  /// Where a layer blob's files go. Named by the blob's digest, not the config's diff_id: the
  /// blob digest is verified while the layer is read, the diff_id is only the image's claim, and
  /// a cache keyed by claims would let one image plant files for every later image that claims
  /// the same diff_id.
  [[nodiscard]] std::filesystem::path layer_dir(const oci::Digest& blob) const;

  /// Composes the image's layers, in order, into `root` (an empty directory): each layer is
  /// extracted first if the cache lacks it (exactly once across processes).
  Result<ComposeStats> compose(const oci::Image& image, const std::filesystem::path& root) const;

  /// Removes layers unused for `older_than` that no process is extracting or composing from, and
  /// abandoned extractions. Prefixes composed from a removed layer keep their files (hardlinks).
  Result<LayerGcReport> gc(std::chrono::seconds older_than) const;

 private:
  /// Extracts layer `index` into `dest`; the caller holds its exclusive lock.
  Result<void> extract(const oci::Image& image, size_t index,
                       const std::filesystem::path& dest) const;
  std::filesystem::path dir_;
};

}  // namespace envbuild::runtime
