#include "runtime/layer_cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/limits.hpp"
#include "common/root_dir.hpp"
#include "oci/layer_reader.hpp"
#include "runtime/cache.hpp"
#include "runtime/internal/cache_files.hpp"

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";
constexpr size_t kBlobHexLength = 64;

/// The names in the directory `fd` (not "." and ".."), sorted so that composing is deterministic.
Result<std::vector<std::string>> list_dir(int fd, const std::string& shown) {
  int copy = ::dup(fd);
  if (copy < 0) return common::errno_error("dup", shown, errno);
  DIR* d = ::fdopendir(copy);
  if (d == nullptr) {
    int err = errno;
    ::close(copy);
    return common::errno_error("fdopendir", shown, err);
  }
  // fdopendir shares the offset with `fd`, which an earlier listing may have moved.
  ::rewinddir(d);
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<common::Fd> open_dir_at(int dirfd, const std::string& name, const std::string& shown) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return common::errno_error("openat", shown, errno);
  return common::Fd(fd);
}

/// Copies the regular file `from` (in `from_dir`) to the new name `to` (in `to_dir`) with `mode`
/// and the source's mtime.
Result<void> copy_file_at(int from_dir, const std::string& from, int to_dir, const std::string& to,
                          mode_t mode, const std::string& shown) {
  int in_fd = ::openat(from_dir, from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in_fd < 0) return common::errno_error("open", shown, errno);
  common::Fd in(in_fd);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return common::errno_error("fstat", shown, errno);
  int out_fd =
      ::openat(to_dir, to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out_fd < 0) return common::errno_error("create", shown, errno);
  common::Fd out(out_fd);
  // copy_file_range stays in the kernel (and reflinks where the file system can); a plain
  // read/write loop where it cannot copy between these two file systems.
  bool in_kernel = true;
  std::vector<std::byte> buffer;
  for (off_t left = st.st_size; left > 0;) {
    if (in_kernel) {
      ssize_t n =
          ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
      if (n > 0) {
        left -= n;
        continue;
      }
      if (n == 0) break;  // the file shrank under us: copy what there is
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
        return common::errno_error("copy_file_range", shown, errno);
      in_kernel = false;
      buffer.resize(1u << 20);
    }
    ENVB_ASSIGN_OR_RETURN(size_t n, in.read_some(buffer, shown));
    if (n == 0) break;
    ENVB_TRY(out.write_all(std::span(buffer).first(n), shown));
    left -= static_cast<off_t>(n);
  }
  if (::fchmod(out.get(), mode) != 0) return common::errno_error("fchmod", shown, errno);
  timespec times[2] = {st.st_atim, st.st_mtim};
  (void)::futimens(out.get(), times);  // best effort, like the extractor's mtimes
  return {};
}

/// Removes every ".<hex>.*.tmp" in `dir`. Only called under the layer's exclusive lock: nobody
/// else is extracting it, so they are all abandoned.
size_t remove_staging_of(const fs::path& dir, const std::string& hex) {
  std::string start = "." + hex + ".";
  std::vector<std::string> stale;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name.starts_with(start) && name.ends_with(".tmp")) stale.emplace_back(name);
    }
    ::closedir(d);
  }
  for (const auto& name : stale) (void)common::remove_all(dir / name);
  return stale.size();
}

/// Applies one extracted layer (whiteouts as `.wh.` files) onto the tree being composed, the way
/// extract_layer applies a layer tar: never following a symlink of the tree, replacing names
/// rather than writing into what they hold.
class Composer {
 public:
  explicit Composer(ComposeStats& stats) : stats_(stats) {}

  /// `fresh`: `dst` was made empty by this composer (no lower layer put anything there), so no
  /// name needs looking up there (a syscall per file saved on the first layer and new dirs).
  Result<void> apply(int src, int dst, const std::string& shown, bool fresh) {
    ENVB_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(src, shown));
    // Whiteouts hide what the lower layers put here, so they go before this layer's entries.
    if (!fresh && std::binary_search(names.begin(), names.end(), std::string(kOpaque))) {
      ENVB_ASSIGN_OR_RETURN(std::vector<std::string> lower, list_dir(dst, shown));
      for (const auto& name : lower) ENVB_TRY(common::remove_at(dst, name, shown + "/" + name));
    }
    for (const auto& name : names) {
      if (fresh || !name.starts_with(kWhiteoutPrefix) || name == kOpaque) continue;
      std::string victim = name.substr(kWhiteoutPrefix.size());
      if (victim.empty() || victim == "." || victim == "..")
        return fail(Errc::Integrity,
                    "refusing layer entry '" + shown + "/" + name + "': invalid whiteout name");
      ENVB_TRY(common::remove_at(dst, victim, shown + "/" + victim));
    }
    for (const auto& name : names) {
      if (name.starts_with(kWhiteoutPrefix)) continue;
      ENVB_TRY(apply_entry(src, dst, name, shown + "/" + name, fresh));
    }
    return {};
  }

 private:
  Result<void> apply_entry(int src, int dst, const std::string& name, const std::string& shown,
                           bool fresh) {
    struct stat st {};
    if (::fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return common::errno_error("fstatat", shown, errno);
    struct stat existing {};
    bool exists = !fresh && ::fstatat(dst, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
    // A directory where a lower layer has a symlink is refused, as the extractor refuses it
    // (`envrun unpack` and a run must build the same tree): following the symlink could reach
    // the host, and silently replacing it would hide what the image says.
    if (exists && S_ISDIR(st.st_mode) && S_ISLNK(existing.st_mode))
      return fail(Errc::Integrity, "refusing layer entry '" + shown +
                                       "': a directory where a lower layer has a symlink "
                                       "(symlinks are never followed or replaced by directories)");
    bool merge = exists && S_ISDIR(st.st_mode) && S_ISDIR(existing.st_mode);
    // Whatever a lower layer left under this name is replaced (a symlink in particular is
    // removed, never followed), as the extractor does.
    if (exists && !merge) ENVB_TRY(common::remove_at(dst, name, shown));

    if (S_ISDIR(st.st_mode)) {
      // Owner-writable while its entries are made; the layer's mode once they are.
      if (!merge && ::mkdirat(dst, name.c_str(), 0700) != 0)
        return common::errno_error("mkdirat", shown, errno);
      ENVB_ASSIGN_OR_RETURN(common::Fd from, open_dir_at(src, name, shown));
      ENVB_ASSIGN_OR_RETURN(common::Fd to, open_dir_at(dst, name, shown));
      ENVB_TRY(apply(from.get(), to.get(), shown, !merge));
      if (::fchmod(to.get(), st.st_mode & 07777) != 0)
        return common::errno_error("chmod", shown, errno);
      return {};
    }
    if (S_ISREG(st.st_mode)) return place_file(src, dst, name, st, shown);
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(src, name.c_str(), target.data(), target.size());
      if (n < 0 || static_cast<size_t>(n) >= target.size())
        return common::errno_error("readlink", shown, n < 0 ? errno : ENAMETOOLONG);
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst, name.c_str()) != 0)
        return common::errno_error("symlinkat", shown, errno);
      timespec times[2] = {st.st_atim, st.st_mtim};
      (void)::utimensat(dst, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return {};
    }
    if (S_ISFIFO(st.st_mode)) {
      if (::mkfifoat(dst, name.c_str(), st.st_mode & 07777) != 0)
        return common::errno_error("mkfifoat", shown, errno);
      return {};
    }
    // The extractor refuses devices for the cache, so nothing else can be here.
    return fail(Errc::Integrity, "unexpected file type in the layer cache: " + shown);
  }

  Result<void> place_file(int src, int dst, const std::string& name, const struct stat& st,
                          const std::string& shown) {
    if (!copy_only_) {
      if (::linkat(src, name.c_str(), dst, name.c_str(), 0) == 0) {
        ++stats_.files_linked;
        return {};
      }
      // Another file system (a cache whose p/ or l/ is a mount or link elsewhere): copy this
      // file and every later one. The link limit, or a kernel refusing the link
      // (fs.protected_hardlinks): copy this one.
      if (errno == EXDEV)
        copy_only_ = true;
      else if (errno != EMLINK && errno != EPERM)
        return common::errno_error("linkat", shown, errno);
    }
    // A copy is this prefix's own: it gets back the owner write bit the shared inode lacks.
    ENVB_TRY(copy_file_at(src, name, dst, name, (st.st_mode & 07777) | S_IWUSR, shown));
    ++stats_.files_copied;
    return {};
  }

  ComposeStats& stats_;
  bool copy_only_ = false;
};

}  // namespace

bool LayerCache::enabled() {
  const char* v = std::getenv("ENVRUN_SHARE_LAYERS");
  return v == nullptr || std::string_view(v) != "0";
}

fs::path LayerCache::layer_dir(const oci::Digest& blob) const {
  return dir_ / blob.hex();
}

Result<void> LayerCache::extract(const oci::Image& image, size_t index,
                                 const fs::path& dest) const {
  const auto& layers = image.manifest().layers;
  const std::string hex = dest.filename().string();
  (void)remove_staging_of(dir_, hex);
  fs::path staging = dir_ / ("." + hex + "." + std::to_string(::getpid()) + ".tmp");
  ENVB_TRY(common::make_dirs(staging));
  struct Cleanup {
    fs::path path;
    ~Cleanup() { (void)common::remove_all(path); }
  } cleanup{staging};

  std::string what = "extracting layer " + std::to_string(index + 1) + "/" +
                     std::to_string(layers.size()) + " " + layers[index].digest.short_string();
  std::fprintf(stderr, "envrun: %s\n", what.c_str());
  ENVB_ASSIGN_OR_RETURN(auto source, image.open_blob(layers[index]).context(what));
  oci::ExtractOptions options;
  ENVB_ASSIGN_OR_RETURN(options.limits, common::UnpackLimits::from_environment("ENVRUN"));
  options.compressed_size = static_cast<uint64_t>(layers[index].size);
  // The whiteouts apply to the layers below, which differ from image to image: they are kept
  // as `.wh.` files here and applied when a prefix is composed.
  options.whiteouts = oci::Whiteouts::Keep;
  options.clear_file_bits = 0222;  // shared by hardlinks: read-only (layer_cache.hpp)
  ENVB_TRY(oci::extract_layer(*source, staging, options).context(what));
  test_stall_point("layer-extracted");
  if (::rename(staging.c_str(), dest.c_str()) != 0)
    return common::errno_error("rename", staging.string() + " -> " + dest.string(), errno);
  ENVB_TRY(common::sync_dir(dir_));
  return {};
}

Result<ComposeStats> LayerCache::compose(const oci::Image& image, const fs::path& root) const {
  ENVB_TRY(common::make_dirs(dir_));
  ENVB_ASSIGN_OR_RETURN(common::Fd root_fd,
                        common::Fd::open(root.string(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ComposeStats stats;
  Composer composer(stats);
  const auto& layers = image.manifest().layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const fs::path dest = layer_dir(layers[i].digest);
    const fs::path lock_path = dest.string() + ".lock";
    bool extracted_now = false;
    // One lock at a time (never one held while waiting for another), so two images with the
    // same layers in another order cannot deadlock.
    for (int attempt = 0;; ++attempt) {
      {
        // Shared: many prefixes compose from one layer at once; gc and extraction wait.
        ENVB_ASSIGN_OR_RETURN(common::FileLock shared,
                              common::FileLock::acquire(lock_path, common::LockMode::Shared));
        if (internal::exists_nofollow(dest)) {
          (void)::utimensat(AT_FDCWD, dest.c_str(), nullptr, 0);  // last use, for gc
          ENVB_ASSIGN_OR_RETURN(common::Fd from,
                                common::Fd::open(dest.string(), O_RDONLY | O_DIRECTORY));
          // `root` is empty (the caller's contract) until the first layer is in.
          ENVB_TRY(composer.apply(from.get(), root_fd.get(), root.string(), i == 0)
                       .context("composing layer " + layers[i].digest.short_string()));
          break;
        }
      }
      // A gc between our extraction and the shared lock removed it again: bounded retries.
      if (attempt == 3)
        return fail(Errc::Io, "the cached layer " + dest.string() +
                                  " keeps disappearing (is envrun gc running in a loop?)");
      ENVB_ASSIGN_OR_RETURN(common::FileLock exclusive,
                            common::FileLock::acquire(lock_path, common::LockMode::Exclusive));
      if (!internal::exists_nofollow(dest)) {
        ENVB_TRY(extract(image, i, dest));
        extracted_now = true;
      }
    }
    ++(extracted_now ? stats.layers_extracted : stats.layers_reused);
  }
  return stats;
}

Result<LayerGcReport> LayerCache::gc(std::chrono::seconds older_than) const {
  LayerGcReport report;
  std::vector<std::string> ids;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name.starts_with('.')) name.remove_prefix(1);
      if (name.size() >= kBlobHexLength &&
          common::is_lower_hex(name.substr(0, kBlobHexLength), kBlobHexLength))
        ids.emplace_back(name.substr(0, kBlobHexLength));
    }
    ::closedir(d);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const auto& hex : ids) {
    fs::path dest = dir_ / hex;
    struct stat st {};
    bool complete = ::lstat(dest.c_str(), &st) == 0;
    bool old = complete && now - st.st_mtim.tv_sec >= older_than.count();
    ENVB_ASSIGN_OR_RETURN(auto lock, common::FileLock::try_acquire(dest.string() + ".lock",
                                                                   common::LockMode::Exclusive));
    if (!lock) {
      if (old) ++report.in_use;
      continue;
    }
    report.stale_staging += remove_staging_of(dir_, hex);
    if (!old) continue;
    // Renamed away first: a gc killed while removing must not leave a half layer under the name
    // that means "complete". The staging name makes the next extraction or gc finish the job.
    fs::path doomed = dir_ / ("." + hex + "." + std::to_string(::getpid()) + ".tmp");
    if (::rename(dest.c_str(), doomed.c_str()) != 0)
      return common::errno_error("rename", dest.string(), errno);
    ENVB_TRY(common::remove_all(doomed));
    report.removed.push_back(hex);
  }
  return report;
}

}  // namespace envbuild::runtime
