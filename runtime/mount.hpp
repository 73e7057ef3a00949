#pragma once

// Running a SquashFS image without extracting it: one read-only mount per image file, user and
// node, shared by every envrun that runs it, and a private view that puts the mount at the prefix
// the environment was built for.
//
// The shared mount lives in the user's own cache, <cache>/m/<16 hex> (or, for an OCI image kept
// as a SquashFS file, at its cache prefix p/<12 hex>), in the host's mount namespace, so that
// 64 ranks on a node share one mount, one page cache and one squashfuse process:
//   - kernel: a loop device and the kernel's squashfs (needs CAP_SYS_ADMIN: root);
//   - squashfuse: squashfuse_ll (or squashfuse) through the setuid fusermount3, for everyone else
//     where /dev/fuse is usable.
// Files beside the mount directory D:
//   D.lock         flock: shared while a process uses the mount (kept across exec, like the OCI
//                  entries' in-use lock), exclusive while the mount is taken down
//   D.mount.lock   flock: exclusive while mounting or unmounting
//   D.watch.lock   flock: exclusive for the life of D's watcher
// (For an OCI entry kept as a SquashFS file, D is its prefix p/<12 hex>, and D.lock is the entry's
// own in-use lock: the mount stays while the entry is in use.)
// The process that mounts starts a watcher, a small detached process that waits for an exclusive
// D.lock (every user gone) and unmounts. A launch that finds the mount but no watcher (killed)
// starts one; one that finds a dead FUSE mount (its squashfuse was killed) detaches it and mounts
// again. Lock order is always D.lock then D.mount.lock.
//
// The private view: a new mount namespace (and, when not root, a user namespace mapping the user to
// itself, so the command runs as the user with no privilege) in which the shared mount is bound
// over the prefix directory. Only the command sees it; the host's directory is untouched. The
// prefix must exist on the host (an empty directory is enough): envrun never creates directories
// at a path an image names.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.hpp"
#include "common/result.hpp"

namespace envbuild::runtime {

enum class MountMethod { Kernel, Squashfuse };
std::string_view to_string(MountMethod method);

/// The ways envrun may mount, from $ENVRUN_SQUASHFS_MOUNT: "auto" (default: the kernel when root,
/// then squashfuse), "kernel", "fuse", or "none" (never mount: unpack into the cache).
struct MountChoice {
  bool kernel = true;
  bool fuse = true;
};
Result<MountChoice> mount_choice_from_environment();

/// A shared mount held in use: while `in_use` (a shared flock on D.lock) is open in any process,
/// the mount stays. The descriptor is close-on-exec; a launch clears that, so that the command
/// (and what it starts) holds the mount until it exits.
struct MountLease {
  std::filesystem::path dir;
  MountMethod method = MountMethod::Kernel;
  bool mounted_now = false;
  common::Fd in_use;
};

/// Mounts `image` read-only at `dir` (created 0700 when missing; its parent must exist) unless it
/// is mounted there already, and holds it in use. Tries what `choice` allows and this host offers;
/// the error (Unsupported) says why each way failed.
Result<MountLease> acquire_shared_mount(const std::filesystem::path& image,
                                        const std::filesystem::path& dir,
                                        const MountChoice& choice);

/// Unmounts `dir` when nobody uses it (for gc); true when it was mounted and is gone now.
Result<bool> unmount_if_idle(const std::filesystem::path& dir);
/// Unmounts `dir` for a caller that holds D.lock exclusively itself; an error when it stays.
Result<void> unmount_held(const std::filesystem::path& dir);

/// Whether something is mounted at `dir` (its device differs from its parent's).
bool is_mount_point(const std::filesystem::path& dir);

enum class UserNamespace : bool { WhenNotRoot, Always };

/// Makes `source` appear at `prefix` for this process and what it execs: unshares the mount
/// namespace (and the user namespace, mapping the user to itself, when not root or when Always),
/// makes every mount a slave (nothing propagates back to the host) and binds `source` over
/// `prefix`, an existing directory. NotFound when the prefix does not exist; Unsupported when the
/// host allows no namespace (the message names the sysctl). Must be called single-threaded.
Result<void> enter_private_view(const std::filesystem::path& source, const std::string& prefix,
                                UserNamespace user_namespace = UserNamespace::WhenNotRoot);

/// $ENVRUN_SQUASHFS_USERNS=1: a user namespace even when root (the unprivileged path, testable as
/// root).
UserNamespace user_namespace_from_environment();

}  // namespace envbuild::runtime
