#include "common/root_dir.hpp"

#include <dirent.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

namespace envbuild::common {

namespace fs = std::filesystem;

namespace {

/// 1: use openat2; 0: the kernel (or a seccomp filter) refused it, walk instead.
std::atomic<int> g_openat2{1};

Error hostile(const std::string& shown, std::string_view why) {
  return Error(Errc::Integrity, shown + ": " + std::string(why));
}

Error symlink_met(const std::string& shown) {
  return hostile(shown, "is a symlink (symlinks inside an untrusted tree are never followed)");
}

/// The components of a relative path; "" and "." components are dropped. Refuses absolute
/// paths, "..", and NUL bytes: a tree's content names things inside it, never beside it.
Result<std::vector<std::string_view>> split_relative(std::string_view relative,
                                                     const std::string& shown) {
  std::vector<std::string_view> parts;
  if (!relative.empty() && relative.front() == '/') return hostile(shown, "absolute path");
  if (relative.find('\0') != std::string_view::npos) return hostile(shown, "NUL byte in path");
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string_view::npos) end = relative.size();
    std::string_view part = relative.substr(start, end - start);
    if (part == "..") return hostile(shown, "'..' in path");
    if (!part.empty() && part != ".") parts.push_back(part);
    start = end + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string_view>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

int retry_eintr_openat(int dirfd, const char* name, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::openat(dirfd, name, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

/// openat2 beneath `dirfd` with no symlinks at all; -1 with errno set. ENOSYS/EPERM (an old
/// kernel, a seccomp profile that predates openat2) switch to the walk for good.
int openat2_beneath(int dirfd, const std::string& relative, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, dirfd, relative.c_str(), &how, sizeof how);
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG)) {
    g_openat2.store(0, std::memory_order_relaxed);
    errno = ENOSYS;
  }
  return static_cast<int>(fd);
}

/// Turns an open failure on `name` in `dirfd` into an error that says a symlink was met when one
/// was (ELOOP from O_NOFOLLOW, ENOTDIR from O_DIRECTORY on a symlink).
Error open_error(int dirfd, const std::string& name, const std::string& shown, int err) {
  if (err == ELOOP || err == ENOTDIR) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      return symlink_met(shown);
    if (err == ELOOP) return symlink_met(shown);
  }
  return errno_error("openat", shown, err);
}

/// The directory made of the first `n` components (O_PATH: enough for *at calls), never
/// following a symlink; with CreateDirs::Yes missing directories are made.
Result<Fd> walk_dirs(const RootDir& root, const std::vector<std::string_view>& parts, size_t n,
                     CreateDirs create, mode_t mode) {
  if (n > 0 && create == CreateDirs::No && g_openat2.load(std::memory_order_relaxed)) {
    std::string relative = join(parts, n);
    int fd = openat2_beneath(root.fd(), relative, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd >= 0) return Fd(fd);
    if (errno != ENOSYS && errno != ELOOP && errno != ENOTDIR && errno != EXDEV)
      return errno_error("openat2", root.shown(relative), errno);
    // ELOOP/ENOTDIR/EXDEV: walk to find and name the component that is a symlink.
  }
  int start = ::dup(root.fd());
  if (start < 0) return errno_error("dup", root.path().string(), errno);
  Fd cur(start);
  for (size_t i = 0; i < n; ++i) {
    std::string name(parts[i]);
    int fd = retry_eintr_openat(cur.get(), name.c_str(),
                                O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0 && errno == ENOENT && create == CreateDirs::Yes) {
      if (::mkdirat(cur.get(), name.c_str(), mode) != 0 && errno != EEXIST)
        return errno_error("mkdirat", root.shown(join(parts, i + 1)), errno);
      fd = retry_eintr_openat(cur.get(), name.c_str(),
                              O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    }
    if (fd < 0) return open_error(cur.get(), name, root.shown(join(parts, i + 1)), errno);
    cur = Fd(fd);
  }
  return cur;
}

Result<std::vector<std::string>> list_fd(int dirfd, const std::string& shown) {
  // A fresh descriptor: fdopendir takes ownership and shares the offset with what it is given.
  int fd = retry_eintr_openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return errno_error("open", shown, errno);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return errno_error("fdopendir", shown, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return errno_error("readdir", shown, err);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> read_bounded(const Fd& fd, size_t max_bytes, const std::string& shown) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("fstat", shown, errno);
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return fail(Errc::Integrity, shown + ": " + std::to_string(st.st_size) +
                                     " bytes, more than the " + std::to_string(max_bytes) +
                                     " this file may have");
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  std::byte buffer[65536];
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, fd.read_some(buffer, shown));
    if (n == 0) break;
    if (out.size() + n > max_bytes)  // grew while we read it
      return fail(Errc::Integrity,
                  shown + ": more than the " + std::to_string(max_bytes) + " bytes it may have");
    out.append(reinterpret_cast<const char*>(buffer), n);
  }
  return out;
}

/// Refuses what is not a regular file and drops O_NONBLOCK again (it only served the open).
Result<void> require_regular(const Fd& fd, int flags, const std::string& shown) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("fstat", shown, errno);
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return hostile(shown, std::string("is ") + what + " where a regular file was expected");
  }
  int status = ::fcntl(fd.get(), F_GETFL);
  if (status < 0 ||
      ((flags & O_NONBLOCK) == 0 && ::fcntl(fd.get(), F_SETFL, status & ~O_NONBLOCK) != 0))
    return errno_error("fcntl", shown, errno);
  return ok();
}

}  // namespace

void use_openat2_for_testing(bool enabled) {
  g_openat2.store(enabled ? 1 : 0, std::memory_order_relaxed);
}

Result<RootDir> RootDir::open(const fs::path& path) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(path.string(), O_RDONLY | O_DIRECTORY));
  return RootDir(std::move(fd), path);
}

RootDir RootDir::adopt(Fd dir, fs::path path) {
  return RootDir(std::move(dir), std::move(path));
}

std::string RootDir::shown(std::string_view relative) const {
  if (relative.empty() || relative == ".") return path_.string();
  return (path_ / relative).string();
}

Result<Fd> RootDir::open_dir(std::string_view relative, CreateDirs create, mode_t mode) const {
  ENVB_ASSIGN_OR_RETURN(auto parts, split_relative(relative, shown(relative)));
  ENVB_ASSIGN_OR_RETURN(Fd path_fd, walk_dirs(*this, parts, parts.size(), create, mode));
  // O_PATH descriptors cannot be listed or fchmod'ed: reopen the directory itself.
  int fd = retry_eintr_openat(path_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return errno_error("open", shown(relative), errno);
  return Fd(fd);
}

Result<RootDir> RootDir::subdir(std::string_view relative, CreateDirs create, mode_t mode) const {
  ENVB_ASSIGN_OR_RETURN(Fd fd, open_dir(relative, create, mode));
  return RootDir(std::move(fd), fs::path(shown(relative)));
}

Result<DirEntry> RootDir::parent_of(std::string_view relative, CreateDirs create) const {
  ENVB_ASSIGN_OR_RETURN(auto parts, split_relative(relative, shown(relative)));
  if (parts.empty()) return hostile(shown(relative), "names the root itself, not an entry in it");
  ENVB_ASSIGN_OR_RETURN(Fd dir, walk_dirs(*this, parts, parts.size() - 1, create, 0755));
  return DirEntry{std::move(dir), std::string(parts.back())};
}

Result<Fd> RootDir::open_file(std::string_view relative, int flags, mode_t mode) const {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  const std::string where = shown(relative);
  if (g_openat2.load(std::memory_order_relaxed) && !(flags & O_CREAT)) {
    ENVB_ASSIGN_OR_RETURN(auto parts, split_relative(relative, where));
    if (parts.empty()) return hostile(where, "names the root itself, not a file in it");
    int fd = openat2_beneath(fd_.get(), join(parts, parts.size()), flags, mode);
    if (fd >= 0) return Fd(fd);
    if (errno != ENOSYS && errno != ELOOP && errno != ENOTDIR && errno != EXDEV)
      return errno_error("openat2", where, errno);
  }
  ENVB_ASSIGN_OR_RETURN(DirEntry entry, parent_of(relative));
  int fd = retry_eintr_openat(entry.dir.get(), entry.name.c_str(), flags, mode);
  if (fd < 0) return open_error(entry.dir.get(), entry.name, where, errno);
  return Fd(fd);
}

Result<Fd> RootDir::open_regular(std::string_view relative, int flags) const {
  ENVB_ASSIGN_OR_RETURN(Fd fd, open_file(relative, flags | O_NONBLOCK | O_NOCTTY));
  ENVB_TRY(require_regular(fd, flags, shown(relative)));
  return fd;
}

Result<std::optional<std::string>> RootDir::read_regular(std::string_view relative,
                                                         size_t max_bytes) const {
  auto fd = open_regular(relative);
  if (!fd) {
    if (fd.error().code() == Errc::NotFound) return std::optional<std::string>{};
    return std::move(fd).error();
  }
  ENVB_ASSIGN_OR_RETURN(std::string text, read_bounded(*fd, max_bytes, shown(relative)));
  return std::optional<std::string>(std::move(text));
}

Result<std::optional<struct stat>> RootDir::stat(std::string_view relative) const {
  ENVB_ASSIGN_OR_RETURN(auto parts, split_relative(relative, shown(relative)));
  struct stat st {};
  if (parts.empty()) {
    if (::fstat(fd_.get(), &st) != 0) return errno_error("fstat", path_.string(), errno);
    return std::optional<struct stat>(st);
  }
  auto dir = walk_dirs(*this, parts, parts.size() - 1, CreateDirs::No, 0);
  if (!dir) {
    if (dir.error().code() == Errc::NotFound) return std::optional<struct stat>{};
    return std::move(dir).error();
  }
  std::string name(parts.back());
  if (::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<struct stat>{};
    return errno_error("fstatat", shown(relative), errno);
  }
  return std::optional<struct stat>(st);
}

Result<std::vector<std::string>> RootDir::list(std::string_view relative) const {
  auto dir = open_dir(relative);
  if (!dir) {
    if (dir.error().code() == Errc::NotFound) return std::vector<std::string>{};
    return std::move(dir).error();
  }
  return list_fd(dir->get(), shown(relative));
}

Result<void> RootDir::write_atomic(std::string_view relative, std::string_view content, mode_t mode,
                                   Sync sync) const {
  ENVB_ASSIGN_OR_RETURN(DirEntry entry, parent_of(relative));
  const std::string where = shown(relative);
  std::string temp = temp_sibling(entry.name).string();
  int raw = retry_eintr_openat(entry.dir.get(), temp.c_str(),
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return errno_error("openat", where, errno);
  Fd fd(raw);
  auto written = [&]() -> Result<void> {
    ENVB_TRY(fd.write_all(std::as_bytes(std::span(content.data(), content.size())), where));
    if (::fchmod(fd.get(), mode) != 0) return errno_error("fchmod", where, errno);
    if (sync == Sync::Yes && ::fsync(fd.get()) != 0) return errno_error("fsync", where, errno);
    if (::renameat(entry.dir.get(), temp.c_str(), entry.dir.get(), entry.name.c_str()) != 0)
      return errno_error("rename", where, errno);
    return ok();
  }();
  if (!written) {
    (void)::unlinkat(entry.dir.get(), temp.c_str(), 0);
    return written;
  }
  if (sync == Sync::Yes && ::fsync(entry.dir.get()) != 0 && errno != EINVAL && errno != EBADF) {
    // An O_PATH descriptor cannot be fsynced: reopen the directory for it.
    int d = retry_eintr_openat(entry.dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (d >= 0) {
      (void)::fsync(d);
      ::close(d);
    }
  }
  return ok();
}

Result<void> RootDir::remove_all(std::string_view relative) const {
  auto entry = parent_of(relative);
  if (!entry) {
    if (entry.error().code() == Errc::NotFound) return ok();
    return std::move(entry).error();
  }
  return remove_at(entry->dir.get(), entry->name, shown(relative));
}

Result<void> RootDir::make_dir(std::string_view relative, mode_t mode) const {
  ENVB_ASSIGN_OR_RETURN(DirEntry entry, parent_of(relative));
  if (::mkdirat(entry.dir.get(), entry.name.c_str(), mode) == 0) return ok();
  if (errno != EEXIST) return errno_error("mkdirat", shown(relative), errno);
  struct stat st {};
  if (::fstatat(entry.dir.get(), entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode))
    return ok();
  return hostile(shown(relative), "exists and is not a directory");
}

Result<void> rename_beneath(const RootDir& from_root, std::string_view from, const RootDir& to_root,
                            std::string_view to) {
  ENVB_ASSIGN_OR_RETURN(DirEntry source, from_root.parent_of(from));
  ENVB_ASSIGN_OR_RETURN(DirEntry dest, to_root.parent_of(to));
  if (::renameat(source.dir.get(), source.name.c_str(), dest.dir.get(), dest.name.c_str()) != 0)
    return errno_error("rename", from_root.shown(from) + " -> " + to_root.shown(to), errno);
  return ok();
}

Result<void> remove_at(int dirfd, const std::string& name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok();
    return errno_error("fstatat", shown, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
      return errno_error("unlink", shown, errno);
    return ok();
  }
  int fd =
      retry_eintr_openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0 && errno == EACCES) {
    // A directory without read or search permission for us (a layer's 0000 dir): ours to remove.
    // If the chmod fails, the open below fails again and reports why.
    if (::fchmodat(dirfd, name.c_str(), 0700, 0) != 0) errno = EACCES;
    fd =
        retry_eintr_openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
  }
  if (fd < 0) return open_error(dirfd, name, shown, errno);
  Fd dir(fd);
  ENVB_ASSIGN_OR_RETURN(std::vector<std::string> children, list_fd(dir.get(), shown));
  if (!children.empty() && (st.st_mode & S_IWUSR) == 0) (void)::fchmod(dir.get(), 0700);
  for (const auto& child : children) ENVB_TRY(remove_at(dir.get(), child, shown + "/" + child));
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return errno_error("rmdir", shown, errno);
  return ok();
}

Result<Fd> open_regular_file(const std::string& path) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  ENVB_TRY(require_regular(fd, O_RDONLY, path));
  return fd;
}

}  // namespace envbuild::common
