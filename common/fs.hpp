#pragma once

// File-system primitives: an owned file descriptor, atomic writes (temp file + fsync + rename
// with an explicit commit), advisory locks between processes, and small helpers that return
// Result with the failing call and path in the message.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::common {

/// "open(/x/y): No such file or directory" style error from errno.
Error errno_error(std::string_view call, const std::string& path, int err);

/// Move-only owner of a POSIX file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  static Result<Fd> open_read(const std::string& path);
  /// open(2) with the given flags; `path` is kept only for error messages.
  static Result<Fd> open(const std::string& path, int flags, int mode = 0644);

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() noexcept;

  /// Reads up to buffer.size() bytes; 0 at end of file. Retries EINTR.
  Result<size_t> read_some(std::span<std::byte> buffer, std::string_view what = "read") const;
  /// Writes all of data. Retries EINTR and short writes.
  Result<void> write_all(std::span<const std::byte> data, std::string_view what = "write") const;

 private:
  int fd_ = -1;
};

/// A file written under a temporary name in the destination's directory and moved into place by
/// commit() (fsync, rename, fsync of the directory). Without commit() the temp file is removed:
/// no reader ever sees a partial file.
class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::filesystem::path& destination, int mode = 0644);
  ~AtomicFile();
  AtomicFile(AtomicFile&&) noexcept;
  AtomicFile& operator=(AtomicFile&&) noexcept;

  Result<void> write(std::span<const std::byte> data);
  Result<void> write(std::string_view data);
  [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
  [[nodiscard]] const std::filesystem::path& temp_path() const noexcept { return temp_; }
  [[nodiscard]] const std::filesystem::path& destination() const noexcept { return destination_; }
  /// Makes the file visible at its destination, replacing what was there.
  Result<void> commit();
  /// commit() without the fsyncs: atomic against a killed process (readers see the old or the
  /// new file), not against power loss. For files inside trees whose completion is marked by
  /// one durable write later (patched files in a staging dir or an unpacking prefix), where an
  /// fsync per file costs tens of ms on a busy disk.
  Result<void> commit_unsynced();
  /// Like commit(), but leaves an existing destination alone (content-addressed stores: the same
  /// name means the same content). Returns false if the destination already existed.
  Result<bool> commit_no_replace();
  void discard() noexcept;

 private:
  AtomicFile(std::filesystem::path destination, std::filesystem::path temp, Fd fd)
      : destination_(std::move(destination)), temp_(std::move(temp)), fd_(std::move(fd)) {}
  Result<void> sync_and_close();
  std::filesystem::path destination_;
  std::filesystem::path temp_;
  Fd fd_;
  bool done_ = false;
};

/// Writes `content` to `path` atomically.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view content,
                               int mode = 0644);
/// Writes `content` to a new file at `path` (replacing one), without fsync: for scratch files
/// in private temp dirs, which a crash throws away anyway (an fsync each costs tens of ms on a
/// busy disk).
Result<void> write_scratch_file(const std::filesystem::path& path, std::string_view content,
                                int mode = 0644);
/// Reads a whole (small) file: metadata, JSON, YAML. Never use for packages or layers.
Result<std::string> read_file(const std::filesystem::path& path, size_t max_bytes = 256u << 20);
Result<void> make_dirs(const std::filesystem::path& path);
/// fsync of a directory, so a rename inside it survives a crash.
Result<void> sync_dir(const std::filesystem::path& dir);
/// Which file a path names (device and inode), to tell a file from one put in its place.
struct FileIdentity {
  uint64_t device = 0, inode = 0;
  bool operator==(const FileIdentity&) const = default;
};
/// The identity of the file at `path` (not followed if it is a symlink); nullopt when none.
std::optional<FileIdentity> file_identity(const std::filesystem::path& path);
/// fsync of a regular file written before (not followed if it is a symlink), so that what was
/// written without a sync survives a crash from now on. With `expected`, only that file: one
/// put in its place since is an Io error, not synced.
Result<void> sync_file(const std::filesystem::path& path,
                       std::optional<FileIdentity> expected = std::nullopt);
/// Removes a tree; a missing path is fine. Nothing below `path` is followed if it is a symlink
/// (a symlink named by `path` itself is removed, not what it points to).
Result<void> remove_all(const std::filesystem::path& path);

enum class LockMode { Shared, Exclusive };

/// An flock(2) on a lock file, held until destruction. Works between processes (and on NFS via
/// the kernel's emulation); the file is created if missing and never removed.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& path, LockMode mode);
  /// Non-blocking: nullopt if another process holds a conflicting lock.
  static Result<std::optional<FileLock>> try_acquire(const std::filesystem::path& path,
                                                     LockMode mode);
  /// Turns an exclusive lock into a shared one (flock(2) does it as release then take, so
  /// another process may hold it exclusively in between: this waits for that one).
  Result<void> downgrade();
  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&&) noexcept = default;
  ~FileLock() = default;  // closing the descriptor releases the lock

 private:
  explicit FileLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

/// A directory removed (recursively) on destruction. For tests and scratch space.
class TempDir {
 public:
  static Result<TempDir> create(const std::filesystem::path& parent, std::string_view prefix);
  ~TempDir();
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// Keeps the directory: the caller takes it over.
  std::filesystem::path release() noexcept { return std::exchange(path_, {}); }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

/// Makes sure `dir` is a directory that only this user can change, the way ssh's StrictModes
/// checks ~/.ssh: created (0700) when missing; owned by the effective user and not writable by
/// group or others; every directory above it owned by root or the user, and writable by others
/// only when sticky (/tmp). What is cached there is later trusted (envrun runs it), so a cache
/// another local user could write into is refused: InvalidInput naming the directory, what is
/// wrong and how to fix it; `what` says whose directory it is ("the envrun cache").
Result<void> ensure_private_dir(const std::filesystem::path& dir, std::string_view what);

/// The read-only half of that check, for a directory another user (an administrator) owns and
/// this user only reads: it exists, is a directory, is not writable by group or others, and every
/// directory above it is owned by root or its owner and writable by others only when sticky.
Result<void> check_protected_dir(const std::filesystem::path& dir, std::string_view what);

/// The user's home directory: $HOME when it is an absolute path, else the password database's
/// entry for the effective uid (cron and some batch systems run without HOME). InvalidInput
/// when neither has one; `fix` is the hint ("set ENVBUILD_CACHE to a directory of your own").
Result<std::filesystem::path> home_directory(std::string_view fix);

/// A unique name for a temporary sibling of `path` (pid, thread and a counter in it).
std::filesystem::path temp_sibling(const std::filesystem::path& path);

/// True if `relative` is a relative path that stays inside its root: not empty, not absolute,
/// no ".." component, no NUL.
bool is_safe_relative_path(std::string_view relative);

/// An archive or image entry's path in canonical form: "./a//b/" -> "a/b", "" for the root.
/// InvalidInput, naming `what` and the path, for a ".." component or a NUL.
Result<std::string> normalize_entry_path(std::string_view path, std::string_view what);

}  // namespace envbuild::common
