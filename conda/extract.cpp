#include "conda/extract.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fs.hpp"

namespace envbuild::conda {

namespace fs = std::filesystem;
using common::errno_error;
using common::Fd;

namespace {

constexpr size_t kMaxCachedDirs = 256;
constexpr size_t kBufferSize = 1u << 20;

std::pair<std::string_view, std::string_view> split_parent(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Creates entries under a root directory through descriptors only: each parent is opened with
// O_DIRECTORY|O_NOFOLLOW from its own parent, so no path string is ever resolved by the kernel
// through a symlink the archive planted.
class TreeWriter {
 public:
  static Result<TreeWriter> open(const fs::path& root) {
    ENVB_ASSIGN_OR_RETURN(Fd fd, Fd::open(root.string(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    return TreeWriter(std::move(fd), root.string());
  }

  Result<void> add(const ArchiveEntry& entry, common::ByteSource& data, ExtractStats& stats) {
    auto [parent, name] = split_parent(entry.path);
    ENVB_ASSIGN_OR_RETURN(int dir, dir_fd(parent));
    std::string name_z(name);
    switch (entry.type) {
      case EntryType::Directory: {
        ENVB_TRY(dir_fd(entry.path));
        ++stats.directories;
        return ok();
      }
      case EntryType::File:
        ENVB_TRY(write_file(dir, name_z, entry, data, stats));
        ++stats.files;
        return ok();
      case EntryType::Symlink:
        if (!symlink_stays_inside(entry.path, entry.link_target))
          return fail(Errc::Integrity, "symlink '" + entry.path + "' -> '" + entry.link_target +
                                           "' points outside the package");
        if (::symlinkat(entry.link_target.c_str(), dir, name_z.c_str()) != 0)
          return creation_error("symlinkat", entry.path, errno);
        ++stats.symlinks;
        return ok();
      case EntryType::Hardlink: {
        auto [source_parent, source_name] = split_parent(entry.link_target);
        ENVB_ASSIGN_OR_RETURN(int source_dir, dir_fd(source_parent));
        std::string source_z(source_name);
        struct stat st {};
        if (::fstatat(source_dir, source_z.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
          return fail(Errc::Integrity, "hard link '" + entry.path + "' -> '" + entry.link_target +
                                           "' does not name an earlier regular file");
        // The directory cache may have closed `dir` while opening the source's parent.
        ENVB_ASSIGN_OR_RETURN(dir, dir_fd(parent));
        if (::linkat(source_dir, source_z.c_str(), dir, name_z.c_str(), 0) != 0)
          return creation_error("linkat", entry.path, errno);
        ++stats.hardlinks;
        return ok();
      }
    }
    return ok();
  }

 private:
  TreeWriter(Fd root, std::string root_path)
      : root_(std::move(root)), root_path_(std::move(root_path)) {}

  Error creation_error(std::string_view call, const std::string& path, int err) const {
    if (err == EEXIST)
      return fail(Errc::Integrity, "duplicate entry '" + path + "' in the package");
    return errno_error(call, root_path_ + "/" + path, err);
  }

  // The descriptor of directory `rel` (created if missing); "" is the root.
  Result<int> dir_fd(std::string_view rel) {
    if (rel.empty()) return root_.get();
    if (auto it = dirs_.find(std::string(rel)); it != dirs_.end()) return it->second.get();
    auto [parent, name] = split_parent(rel);
    ENVB_ASSIGN_OR_RETURN(int parent_fd, dir_fd(parent));
    std::string name_z(name);
    if (::mkdirat(parent_fd, name_z.c_str(), 0755) != 0 && errno != EEXIST)
      return errno_error("mkdirat", root_path_ + "/" + std::string(rel), errno);
    int fd = ::openat(parent_fd, name_z.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR)
        return fail(Errc::Integrity, "'" + std::string(rel) +
                                         "' is a symlink or file in the package, but an entry "
                                         "needs it to be a directory");
      return errno_error("openat", root_path_ + "/" + std::string(rel), errno);
    }
    if (dirs_.size() >= kMaxCachedDirs) dirs_.clear();
    auto [it, inserted] = dirs_.emplace(std::string(rel), Fd(fd));
    (void)inserted;
    return it->second.get();
  }

  Result<void> write_file(int dir, const std::string& name, const ArchiveEntry& entry,
                          common::ByteSource& data, ExtractStats& stats) {
    int raw =
        ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (raw < 0) return creation_error("openat", entry.path, errno);
    Fd fd(raw);
    if (!buffer_) buffer_ = std::make_unique_for_overwrite<std::byte[]>(kBufferSize);
    const std::span<std::byte> buffer(buffer_.get(), kBufferSize);
    for (;;) {
      ENVB_ASSIGN_OR_RETURN(size_t n, data.read(buffer));
      if (n == 0) break;
      ENVB_TRY(fd.write_all(buffer.first(n), entry.path));
      stats.bytes += n;
    }
    // World write is dropped with setuid/setgid/sticky: the extracted tree is a shared cache
    // whose files are hard-linked into prefixes, and a package must not make them writable by
    // everyone. Group write stays: conda-forge ships 0775 files and conda keeps them.
    mode_t mode = static_cast<mode_t>((entry.mode & 0775) | S_IRUSR | S_IWUSR);
    if (::fchmod(fd.get(), mode) != 0)
      return errno_error("fchmod", root_path_ + "/" + entry.path, errno);
    return ok();
  }

  Fd root_;
  std::string root_path_;
  std::unordered_map<std::string, Fd> dirs_;
  std::unique_ptr<std::byte[]> buffer_;  // not zero-filled: written before it is read
};

// Removes the temporary tree unless released.
struct RemoveGuard {
  fs::path path;
  ~RemoveGuard() {
    if (!path.empty()) (void)common::remove_all(path);
  }
};

}  // namespace

Result<ExtractStats> extract_package(const fs::path& package, const fs::path& destination,
                                     const ExtractOptions& options) {
  std::string what = "extracting " + package.string() + " into " + destination.string();
  std::error_code ec;
  if (fs::exists(fs::symlink_status(destination, ec)) && !fs::is_empty(destination, ec))
    return fail(Errc::InvalidInput,
                "destination " + destination.string() + " exists and is not empty")
        .with_context(what);
  fs::path absolute = fs::absolute(destination, ec);
  if (ec) return fail(Errc::Io, "absolute(" + destination.string() + "): " + ec.message());
  ENVB_TRY(common::make_dirs(absolute.parent_path()).context(what));
  fs::path temp = common::temp_sibling(absolute);
  if (::mkdir(temp.c_str(), 0755) != 0)
    return errno_error("mkdir", temp.string(), errno).with_context(what);
  RemoveGuard guard{temp};

  ExtractStats stats;
  uint64_t entries = 0;
  {
    ENVB_ASSIGN_OR_RETURN(TreeWriter writer, TreeWriter::open(temp));
    auto walked = walk_package(
        package, options.components,
        [&](const ArchiveEntry& entry, common::ByteSource& data) -> Result<Walk> {
          if (++entries > options.max_entries)
            return fail(Errc::Integrity, "more than " + std::to_string(options.max_entries) +
                                             " entries; refusing to extract more");
          if (entry.type == EntryType::File && entry.size > options.max_entry_size)
            return fail(Errc::Integrity,
                        "entry '" + entry.path + "' is " + std::to_string(entry.size) +
                            " bytes, over the limit of " + std::to_string(options.max_entry_size));
          if (entry.type == EntryType::File && stats.bytes + entry.size > options.max_total_size)
            return fail(Errc::Integrity, "entry '" + entry.path + "' takes the package over " +
                                             std::to_string(options.max_total_size) +
                                             " bytes; refusing to extract more");
          ENVB_TRY(writer.add(entry, data, stats).context("entry '" + entry.path + "'"));
          return Walk::Continue;
        });
    ENVB_TRY(std::move(walked).context(what));
  }
  if (::rename(temp.c_str(), absolute.c_str()) != 0) {
    int err = errno;
    if (err == ENOTEMPTY || err == EEXIST)
      return fail(Errc::InvalidInput, "destination " + destination.string() +
                                          " appeared while extracting and is not empty")
          .with_context(what);
    return errno_error("rename", temp.string() + " -> " + absolute.string(), err)
        .with_context(what);
  }
  guard.path.clear();
  return stats;
}

}  // namespace envbuild::conda
