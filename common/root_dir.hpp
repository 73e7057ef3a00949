#pragma once

// File operations on untrusted trees: an unpacked image, an extracted package, a prefix being
// relocated, a cache entry. Whatever such a tree holds (a symlink to /home/user, `../..`, a FIFO,
// a symlink to /dev/zero), an operation through a RootDir reaches only what is really beneath the
// root directory:
//   - every path is relative and resolved from the root's descriptor, one component at a time,
//     never following a symlink (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the
//     kernel has it, else openat with O_NOFOLLOW per component: the models are umoci's unpack,
//     containerd's continuity fs and filepath-securejoin, minus the following of symlinks);
//   - a symlink met on the way is an Integrity error naming it, never a silent follow;
//   - reads open a file without blocking and refuse anything that is not a regular file, and
//     read at most a bound;
//   - renames and removals act on the names in descriptors we resolved, so a swapped symlink
//     cannot redirect them.
// The root itself is ours (a cache directory, a staging directory we made, a directory the user
// named), so the path that leads to it may hold symlinks; nothing below it may.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.hpp"
#include "common/result.hpp"

namespace envbuild::common {

enum class CreateDirs : bool { No, Yes };

/// A directory's descriptor and the name of one entry in it: what renames, links and removals
/// act on.
struct DirEntry {
  Fd dir;
  std::string name;
};

class RootDir {
 public:
  /// Opens `path` as a root. `path` is trusted (ours, or the user's): symlinks in it are
  /// followed, as for any path a user types.
  static Result<RootDir> open(const std::filesystem::path& path);
  /// Takes over a directory descriptor; `path` is what messages show (and what code that needs a
  /// path, such as a spawned process's working directory, may use).
  static RootDir adopt(Fd dir, std::filesystem::path path);

  RootDir(RootDir&&) noexcept = default;
  RootDir& operator=(RootDir&&) noexcept = default;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// The path of `relative` below the root, for messages.
  [[nodiscard]] std::string shown(std::string_view relative) const;

  /// The root of the subtree at `relative`, every component a real directory.
  Result<RootDir> subdir(std::string_view relative, CreateDirs create = CreateDirs::No,
                         mode_t mode = 0755) const;
  /// Opens the directory at `relative` ("" is the root) for reading (listing, fchmod); every
  /// component must be a real directory. With CreateDirs::Yes missing ones are made with `mode`.
  Result<Fd> open_dir(std::string_view relative, CreateDirs create = CreateDirs::No,
                      mode_t mode = 0755) const;
  /// The directory holding `relative` and its last component, resolved like open_dir.
  Result<DirEntry> parent_of(std::string_view relative, CreateDirs create = CreateDirs::No) const;

  /// open(2) of `relative` with `flags` (O_NOFOLLOW and O_CLOEXEC are added): no component may
  /// be a symlink, the last one included.
  Result<Fd> open_file(std::string_view relative, int flags, mode_t mode = 0644) const;
  /// Opens an existing regular file for reading (or O_RDWR): never blocks (a FIFO is refused, not
  /// waited on), refuses devices, sockets and directories.
  Result<Fd> open_regular(std::string_view relative, int flags = O_RDONLY) const;
  /// A whole small regular file; nullopt when nothing is at `relative`. A file larger than
  /// `max_bytes` is an error (Integrity: the tree is not what it should be).
  Result<std::optional<std::string>> read_regular(std::string_view relative,
                                                  size_t max_bytes = size_t{64} << 20) const;

  /// lstat(2) of `relative` (a symlink is reported as one); nullopt when it does not exist. A
  /// symlink on the way is an error.
  Result<std::optional<struct stat>> stat(std::string_view relative) const;
  /// The sorted names in the directory at `relative` (not "." and ".."); an absent directory
  /// has none.
  Result<std::vector<std::string>> list(std::string_view relative) const;

  /// Writes `content` under a temporary name in the parent and renames it over `relative`
  /// (whatever that was: a symlink is replaced, not followed). Durable with Sync::Yes.
  enum class Sync : bool { No, Yes };
  Result<void> write_atomic(std::string_view relative, std::string_view content, mode_t mode = 0644,
                            Sync sync = Sync::No) const;
  /// Removes `relative` and, for a directory, everything below it, never following a symlink.
  /// A missing entry is fine.
  Result<void> remove_all(std::string_view relative) const;
  /// mkdir of `relative` (the parents must exist); fine if a directory is there already.
  Result<void> make_dir(std::string_view relative, mode_t mode = 0755) const;

 private:
  RootDir(Fd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::filesystem::path path_;
};

/// renameat(2) of `from` below `from_root` to `to` below `to_root`, both parents resolved without
/// following symlinks. Replaces an existing `to` the way rename(2) does.
Result<void> rename_beneath(const RootDir& from_root, std::string_view from, const RootDir& to_root,
                            std::string_view to);

/// Removes the entry `name` of the directory `dirfd` and everything below it without following
/// a symlink; a missing entry is fine. `shown` names it in errors.
Result<void> remove_at(int dirfd, const std::string& name, const std::string& shown);

/// Opens the regular file at a trusted `path` for reading without blocking on a FIFO and without
/// reading a device: what read_file and blob readers use for files whose *name* is ours but
/// whose content (an image layout, a cache) is not.
Result<Fd> open_regular_file(const std::string& path);

/// Test hook: resolve with the component-by-component walk even where openat2 exists, so both
/// paths are tested on every kernel.
void use_openat2_for_testing(bool enabled);

}  // namespace envbuild::common
