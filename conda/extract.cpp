#include "conda/extract.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fs.hpp"
#include "common/root_dir.hpp"

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

// Creates entries under a root directory through descriptors only: each parent is resolved
// beneath the root without following a symlink (common::RootDir), so no path string is ever
// resolved by the kernel through a symlink the archive planted.
class TreeWriter {
 public:
  static Result<TreeWriter> open(const fs::path& root) {
    ENVB_ASSIGN_OR_RETURN(common::RootDir dir, common::RootDir::open(root));
    return TreeWriter(std::move(dir));
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
        symlinks_.emplace(entry.path, entry.link_target);
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

  /// The package's symlinks, path -> target, for check_symlink_chains once all are in.
  [[nodiscard]] const std::unordered_map<std::string, std::string>& symlinks() const {
    return symlinks_;
  }

 private:
  explicit TreeWriter(common::RootDir root) : root_(std::move(root)) {}

  Error creation_error(std::string_view call, const std::string& path, int err) const {
    if (err == EEXIST)
      return fail(Errc::Integrity, "duplicate entry '" + path + "' in the package");
    return errno_error(call, root_.shown(path), err);
  }

  // The descriptor of directory `rel` (created if missing, every component a real directory);
  // "" is the root.
  Result<int> dir_fd(std::string_view rel) {
    if (rel.empty()) return root_.fd();
    if (auto it = dirs_.find(std::string(rel)); it != dirs_.end()) return it->second.get();
    auto dir = root_.open_dir(rel, common::CreateDirs::Yes);
    if (!dir) {
      if (dir.error().code() == Errc::Io) return std::move(dir).error();
      // A symlink (Integrity) or a file (ENOTDIR: NotFound) where a directory must be.
      return fail(Errc::Integrity, "'" + std::string(rel) +
                                       "' is a symlink or file in the package, but an entry "
                                       "needs it to be a directory");
    }
    if (dirs_.size() >= kMaxCachedDirs) dirs_.clear();
    auto [it, inserted] = dirs_.emplace(std::string(rel), std::move(*dir));
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
    if (::fchmod(fd.get(), mode) != 0) return errno_error("fchmod", root_.shown(entry.path), errno);
    return ok();
  }

  common::RootDir root_;
  std::unordered_map<std::string, Fd> dirs_;
  std::unordered_map<std::string, std::string> symlinks_;
  std::unique_ptr<std::byte[]> buffer_;  // not zero-filled: written before it is read
};

void push_components(std::string_view path, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (front)
    out.insert(out.begin(), parts.begin(), parts.end());
  else
    out.insert(out.end(), parts.begin(), parts.end());
}

// Resolves the symlink at `link` the way the kernel would inside the package, through the
// package's own symlinks, and says where it leaves the package: "" when it stays inside. Each
// symlink passed symlink_stays_inside() on its own text, but text is not enough: with
// `a/b/l -> ../..` (the root), `c -> a/b/l/../x` reads as a/b/x and resolves to ../x.
std::string leaves_package(const std::string& link,
                           const std::unordered_map<std::string, std::string>& symlinks) {
  constexpr int kMaxHops = 40;  // the kernel's limit on symlinks followed in one lookup
  std::deque<std::string> todo;
  std::vector<std::string> at;  // components of where the lookup is
  push_components(link.substr(0, link.rfind('/') == std::string::npos ? 0 : link.rfind('/')), todo,
                  false);
  for (auto& part : todo) at.push_back(std::move(part));
  todo.clear();
  push_components(symlinks.at(link), todo, false);
  int hops = 0;
  std::string where;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      if (at.empty()) return where.empty() ? link : where;
      at.pop_back();
      continue;
    }
    at.push_back(std::move(part));
    std::string path;
    for (const auto& p : at) path += (path.empty() ? "" : "/") + p;
    auto it = symlinks.find(path);
    if (it == symlinks.end()) continue;
    if (++hops > kMaxHops || it->second.empty() || it->second.front() == '/') return path;
    at.pop_back();
    where = path;
    push_components(it->second, todo, true);
  }
  return "";
}

Result<void> check_symlink_chains(const std::unordered_map<std::string, std::string>& symlinks) {
  for (const auto& [link, target] : symlinks) {
    std::string through = leaves_package(link, symlinks);
    if (!through.empty())
      return fail(Errc::Integrity, "symlink '" + link + "' -> '" + target +
                                       "' leaves the package through symlink '" + through +
                                       "' (or a loop of them)");
  }
  return ok();
}

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

  const uint64_t compressed_size = fs::file_size(package, ec);
  if (ec) return fail(Errc::Io, "stat(" + package.string() + "): " + ec.message());
  const common::UnpackLimits& limits = options.limits;
  ExtractStats stats;
  uint64_t entries = 0;
  {
    ENVB_ASSIGN_OR_RETURN(TreeWriter writer, TreeWriter::open(temp));
    auto walked =
        walk_package(package, options.components,
                     [&](const ArchiveEntry& entry, common::ByteSource& data) -> Result<Walk> {
                       ENVB_TRY(common::check_entry_path(limits, entry.path));
                       const std::string shown = "entry '" + entry.path + "'";
                       ENVB_TRY(common::check_unpack_limits(
                           limits, shown, ++entries, stats.bytes,
                           entry.type == EntryType::File ? entry.size : 0, compressed_size));
                       ENVB_TRY(writer.add(entry, data, stats).context(shown));
                       return Walk::Continue;
                     });
    ENVB_TRY(std::move(walked).context(what));
    ENVB_TRY(check_symlink_chains(writer.symlinks()).context(what));
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
