#pragma once

// SquashFS images of an environment (`envbuild build --output squashfs:FILE`) in envrun:
//
//   envrun FILE.sqfs -- COMMAND    the host check, then the image mounted at its prefix without
//                                  extracting anything (runtime/mount.hpp: one shared mount per
//                                  node, a private view per command), or, when this host cannot
//                                  mount, unpacked and relocated into the cache as an OCI image is;
//   envrun unpack FILE.sqfs DIR    an ordinary prefix at DIR, relocated;
//   envrun check FILE.sqfs         the requirements of its .envbuild/image.json.
//
// The file is untrusted: squashfs/reader.hpp checks its superblock and tables, image.json is
// bounded and validated (the prefix must be a safe absolute path), extraction goes beneath a
// RootDir and never follows the image's symlinks.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/image_contract.hpp"
#include "oci/image.hpp"
#include "runtime/cache.hpp"
#include "runtime/launch.hpp"

namespace envbuild::runtime {

/// The file an IMAGE argument names when it is a SquashFS image: "squashfs:FILE", or a path (no
/// transport) to a regular file that starts with the SquashFS magic. nullopt otherwise.
std::optional<std::filesystem::path> squashfs_argument(std::string_view image);

/// An opened and checked SquashFS image of an environment.
struct SquashfsImage {
  std::filesystem::path file;             // absolute
  conda::ImageInfo info;                  // .envbuild/image.json
  std::string prefix;                     // where it was built for (org.envbuild.prefix), checked
  std::vector<std::string> requirements;  // org.envbuild.requirements, split
  uint64_t size = 0;                      // the file's, in bytes
  /// 16 hex digits of the file's identity (device, inode, size, mtime): names its shared mount
  /// and its cache entry; a file changed in place gets a new one.
  std::string key;
};

/// Opens `file`: the superblock and tables (squashfs/reader.hpp), then image.json. InvalidInput
/// when it has none (not an envbuild image) or its prefix is not a safe absolute path below /
/// (nor under /proc, /sys or /dev).
Result<SquashfsImage> open_squashfs_image(const std::filesystem::path& file);

/// Unpacks the image into `dir` (missing or empty) relocated to `dir`, as unpack_image() does for
/// OCI images: extracted into a staging sibling beneath a RootDir, relocated, renamed into place.
Result<EnvInfo> unpack_squashfs(const SquashfsImage& image, const std::filesystem::path& dir,
                                const UnpackOptions& options = {});

/// --store squashfs: the OCI image unpacked into `prefix` (relocated there, without the shared
/// layer cache), written as <prefix>.sqfs, and the tree removed: what stays is one file and the
/// empty directory it is mounted at (Cache::ready_to_run). The EnvInfo names the file.
Result<EnvInfo> unpack_as_squashfs(const oci::Image& image, const std::filesystem::path& prefix,
                                   const std::string& reference, const UnpackOptions& options);

/// The run form for a SquashFS image (see the top of this file). Returns only on failure, like
/// run_in_image(), with the same exit codes (8 for a host mismatch, 127, 126).
RunFailure run_squashfs_image(const std::filesystem::path& file, std::vector<std::string> command,
                              const RunOptions& options);

}  // namespace envbuild::runtime
