#include "common/fs.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "common/format.hpp"
#include "common/root_dir.hpp"

namespace envbuild::common {

namespace fs = std::filesystem;

Error errno_error(std::string_view call, const std::string& path, int err) {
  Errc code = Errc::Io;
  if (err == ENOENT || err == ENOTDIR) code = Errc::NotFound;
  std::string message(call);
  message += "(" + path + "): " + std::strerror(err);
  if (err == ENOSPC) message += " (the disk is full: free space or point --cache-dir elsewhere)";
  return Error(code, std::move(message));
}

void Fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<Fd> Fd::open_read(const std::string& path) {
  return open(path, O_RDONLY | O_CLOEXEC);
}

Result<Fd> Fd::open(const std::string& path, int flags, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_error("open", path, errno);
  return Fd(fd);
}

Result<size_t> Fd::read_some(std::span<std::byte> buffer, std::string_view what) const {
  for (;;) {
    ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return errno_error("read", std::string(what), errno);
  }
}

Result<void> Fd::write_all(std::span<const std::byte> data, std::string_view what) const {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("write", std::string(what), errno);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return ok();
}

namespace {

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

namespace {

enum class OwnerMustBe { Me, Anyone };

/// ssh's StrictModes for a directory: see ensure_private_dir and check_protected_dir.
Result<void> check_dir_owner_and_parents(const fs::path& dir, std::string_view what,
                                         OwnerMustBe owner) {
  std::error_code ec;
  const fs::path real = fs::canonical(dir, ec);
  if (ec) return fail(Errc::InvalidInput, std::string(what) + " " + dir.string() + ": " + ec.message());
  const uid_t me = ::geteuid();
  auto refuse = [&](const fs::path& at, const std::string& why) {
    return Error(Errc::InvalidInput, std::string(what) + " " + dir.string() +
                                         (at == real && real == dir ? "" : " (" + at.string() + ")") +
                                         " " + why +
                                         ": another local user could put code there that would "
                                         "then run as you")
        .with_hint(at == real ? "chmod go-w " + at.string() + ", or point " + std::string(what) +
                                    " at a directory of your own"
                              : "point " + std::string(what) +
                                    " at a directory under one only you and root can change");
  };
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) return errno_error("stat", real.string(), errno);
  if (!S_ISDIR(st.st_mode)) return refuse(real, "is not a directory");
  const uid_t dir_owner = st.st_uid;
  if (owner == OwnerMustBe::Me && dir_owner != me)
    return refuse(real, "belongs to uid " + std::to_string(dir_owner) + ", not to you (uid " +
                            std::to_string(me) + ")");
  if ((st.st_mode & 022) != 0)
    return refuse(real, "is writable by others (mode " + octal_mode(st.st_mode) + ")");
  for (fs::path up = real.parent_path();; up = up.parent_path()) {
    if (::stat(up.c_str(), &st) != 0) return errno_error("stat", up.string(), errno);
    if (st.st_uid != 0 && st.st_uid != me && st.st_uid != dir_owner)
      return refuse(up, "lies in a directory of uid " + std::to_string(st.st_uid));
    if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)
      return refuse(up, "lies in a directory writable by others without the sticky bit (mode " +
                            octal_mode(st.st_mode) + ")");
    if (up == up.root_path() || !up.has_relative_path()) break;
  }
  return ok();
}

}  // namespace

Result<fs::path> home_directory(std::string_view fix) {
  if (const char* home = std::getenv("HOME"); home && *home == '/') return fs::path(home);
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found &&
      found->pw_dir && found->pw_dir[0] == '/')
    return fs::path(found->pw_dir);
  return Error(Errc::InvalidInput, "no home directory: HOME is not set and uid " +
                                       std::to_string(::geteuid()) + " has none")
      .with_hint(std::string(fix));
}

Result<void> ensure_private_dir(const fs::path& dir, std::string_view what) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return errno_error("stat", dir.string(), errno);
    if (dir.has_parent_path()) ENVB_TRY(make_dirs(dir.parent_path()));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return errno_error("mkdir", dir.string(), errno);
  }
  return check_dir_owner_and_parents(dir, what, OwnerMustBe::Me);
}

Result<void> check_protected_dir(const fs::path& dir, std::string_view what) {
  return check_dir_owner_and_parents(dir, what, OwnerMustBe::Anyone);
}

fs::path temp_sibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string name = "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(counter.fetch_add(1)) + "." + std::to_string(rng() % 1000000);
  return path.parent_path() / name;
}

Result<AtomicFile> AtomicFile::create(const fs::path& destination, int mode) {
  fs::path temp = temp_sibling(destination);
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(temp.string(), O_WRONLY | O_CREAT | O_EXCL, mode));
  // open() applies the umask; content-addressed stores want exactly `mode`.
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
    return errno_error("fchmod", temp.string(), errno);
  return AtomicFile(destination, std::move(temp), std::move(fd));
}

AtomicFile::~AtomicFile() {
  discard();
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : destination_(std::move(other.destination_)),
      temp_(std::move(other.temp_)),
      fd_(std::move(other.fd_)),
      done_(other.done_) {
  other.done_ = true;
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    discard();
    destination_ = std::move(other.destination_);
    temp_ = std::move(other.temp_);
    fd_ = std::move(other.fd_);
    done_ = other.done_;
    other.done_ = true;
  }
  return *this;
}

Result<void> AtomicFile::write(std::span<const std::byte> data) {
  return fd_.write_all(data, temp_.string());
}
Result<void> AtomicFile::write(std::string_view data) {
  return write(std::as_bytes(std::span(data)));
}

Result<void> AtomicFile::sync_and_close() {
  if (::fsync(fd_.get()) != 0) return errno_error("fsync", temp_.string(), errno);
  int fd = fd_.release();
  if (::close(fd) != 0) return errno_error("close", temp_.string(), errno);
  return ok();
}

Result<void> AtomicFile::commit() {
  ENVB_CHECK(!done_);
  ENVB_TRY(sync_and_close());
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
    int err = errno;
    discard();
    return errno_error("rename", destination_.string(), err);
  }
  done_ = true;
  return sync_dir(destination_.parent_path().empty() ? fs::path(".") : destination_.parent_path());
}

Result<void> AtomicFile::commit_unsynced() {
  ENVB_CHECK(!done_);
  int fd = fd_.release();
  if (::close(fd) != 0) return errno_error("close", temp_.string(), errno);
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
    int err = errno;
    discard();
    return errno_error("rename", destination_.string(), err);
  }
  done_ = true;
  return ok();
}

Result<bool> AtomicFile::commit_no_replace() {
  ENVB_CHECK(!done_);
  ENVB_TRY(sync_and_close());
  // link(2) fails with EEXIST instead of replacing: the first writer wins, later ones (with the
  // same content, by construction) just drop their copy.
  int rc = ::link(temp_.c_str(), destination_.c_str());
  int err = errno;
  ::unlink(temp_.c_str());
  done_ = true;
  if (rc != 0) {
    if (err == EEXIST) return false;
    return errno_error("link", destination_.string(), err);
  }
  ENVB_TRY(sync_dir(destination_.parent_path()));
  return true;
}

void AtomicFile::discard() noexcept {
  if (done_) return;
  fd_.reset();
  ::unlink(temp_.c_str());
  done_ = true;
}

Result<void> write_file_atomic(const fs::path& path, std::string_view content, int mode) {
  ENVB_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::create(path, mode));
  ENVB_TRY(file.write(content));
  return file.commit();
}

Result<void> write_scratch_file(const fs::path& path, std::string_view content, int mode) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(path.string(), O_WRONLY | O_CREAT | O_TRUNC, mode));
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
    return errno_error("fchmod", path.string(), errno);
  return fd.write_all(std::as_bytes(std::span(content)), path.string());
}

Result<std::string> read_file(const fs::path& path, size_t max_bytes) {
  // Never blocks on a FIFO, never reads a device: names are ours, content may not be.
  ENVB_ASSIGN_OR_RETURN(Fd fd, open_regular_file(path.string()));
  std::string out;
  // Read straight into a string of the file's size: growing it by doubling copied a 115 MB
  // repodata.json twice over and faulted in twice the memory. The size is only a hint (the
  // file may change while read): what follows is read and bounded as before.
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0 &&
      static_cast<uint64_t>(st.st_size) <= max_bytes) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t have = 0;
    while (have < out.size()) {
      ENVB_ASSIGN_OR_RETURN(
          size_t n, fd.read_some(std::as_writable_bytes(std::span(out.data() + have, out.size() - have)),
                                 path.string()));
      if (n == 0) break;
      have += n;
    }
    out.resize(have);
    if (have < static_cast<size_t>(st.st_size)) return out;  // shrank while read: at its end
  }
  std::byte buffer[65536];
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, fd.read_some(buffer, path.string()));
    if (n == 0) break;
    if (out.size() + n > max_bytes)
      return fail(Errc::InvalidInput,
                  path.string() + ": larger than " + std::to_string(max_bytes) + " bytes");
    out.append(reinterpret_cast<const char*>(buffer), n);
  }
  return out;
}

Result<void> make_dirs(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return fail(Errc::Io, "mkdir(" + path.string() + "): " + ec.message());
  return ok();
}

Result<void> sync_dir(const fs::path& dir) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(dir.string(), O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0 && errno != EINVAL) return errno_error("fsync", dir.string(), errno);
  return ok();
}

namespace {
FileIdentity identity_of(const struct stat& st) {
  return FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}
}  // namespace

std::optional<FileIdentity> file_identity(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return identity_of(st);
}

Result<void> sync_file(const fs::path& path, std::optional<FileIdentity> expected) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(path.string(), O_RDONLY | O_NOFOLLOW));
  if (expected) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_error("fstat", path.string(), errno);
    if (identity_of(st) != *expected)
      return fail(Errc::Io, path.string() + ": replaced since it was written; not synced");
  }
  if (::fsync(fd.get()) != 0) return errno_error("fsync", path.string(), errno);
  return ok();
}

Result<void> remove_all(const fs::path& path) {
  // `path` itself is trusted (ours, or the user's) and resolved as given; what lies below it is
  // removed through directory descriptors without following a symlink (remove_at), where
  // std::filesystem::remove_all resolves every path again: a tree a package or an image filled
  // cannot redirect the removal.
  fs::path normal = path.lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();  // "dir/"
  const std::string name = normal.filename().string();
  if (name.empty() || name == "." || name == "..")
    return fail(Errc::InvalidInput, "remove(" + path.string() + "): not a removable entry");
  const fs::path parent = normal.has_parent_path() ? normal.parent_path() : fs::path(".");
  int dir = ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return ok();
    return errno_error("open", parent.string(), errno);
  }
  Fd holder(dir);
  return remove_at(dir, name, path.string());
}

Result<FileLock> FileLock::acquire(const fs::path& path, LockMode mode) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(path.string(), O_RDWR | O_CREAT, 0644));
  int op = mode == LockMode::Exclusive ? LOCK_EX : LOCK_SH;
  while (::flock(fd.get(), op) != 0) {
    if (errno != EINTR) return errno_error("flock", path.string(), errno);
  }
  return FileLock(std::move(fd));
}

Result<std::optional<FileLock>> FileLock::try_acquire(const fs::path& path, LockMode mode) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(path.string(), O_RDWR | O_CREAT, 0644));
  int op = (mode == LockMode::Exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd.get(), op) != 0) {
    if (errno == EWOULDBLOCK) return std::optional<FileLock>();
    if (errno != EINTR) return errno_error("flock", path.string(), errno);
  }
  return std::optional<FileLock>(FileLock(std::move(fd)));
}

Result<void> FileLock::downgrade() {
  while (::flock(fd_.get(), LOCK_SH) != 0) {
    if (errno != EINTR) return errno_error("flock", "a lock file", errno);
  }
  return ok();
}

Result<TempDir> TempDir::create(const fs::path& parent, std::string_view prefix) {
  ENVB_TRY(make_dirs(parent));
  std::string templ = (parent / (std::string(prefix) + "XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) return errno_error("mkdtemp", templ, errno);
  return TempDir(fs::path(templ));
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

Result<std::string> normalize_entry_path(std::string_view path, std::string_view what) {
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part == "..")
      return fail(Errc::InvalidInput,
                  std::string(what) + " path '" + printable(path) + "' contains '..'");
    if (part.find('\0') != std::string_view::npos)
      return fail(Errc::InvalidInput, std::string(what) + " path contains NUL");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = end + 1;
  }
  return out;
}

bool is_safe_relative_path(std::string_view relative) {
  if (relative.empty() || relative.front() == '/') return false;
  if (relative.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string_view::npos) end = relative.size();
    if (relative.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace envbuild::common
