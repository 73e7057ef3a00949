#include "oci/layer_reader.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <vector>

#include "common/fs.hpp"
#include "common/root_dir.hpp"
#include "oci/compression.hpp"
#include "oci/internal/libarchive.hpp"

namespace envbuild::oci {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";

Error hostile(const std::string& entry, std::string_view why) {
  return Error(Errc::Integrity, "refusing layer entry '" + entry + "': " + std::string(why));
}

/// Splits an entry name into components; "" components and "." are dropped. Refuses absolute
/// names and "..".
Result<std::vector<std::string>> components(const std::string& name) {
  if (name.empty()) return std::vector<std::string>{};
  if (name.front() == '/') return hostile(name, "absolute path");
  if (name.find('\0') != std::string::npos) return hostile(name, "NUL in path");
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part == "..") return hostile(name, "'..' in path");
    if (!part.empty() && part != ".") out.push_back(std::move(part));
    start = end + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

class Extractor {
 public:
  Extractor(const fs::path& root, const ExtractOptions& options)
      : root_(root), options_(options), buffer_(1u << 20) {}

  Result<void> open_root() {
    ENVB_ASSIGN_OR_RETURN(root_fd_, common::Fd::open(root_.string(), O_RDONLY | O_DIRECTORY));
    return ok();
  }

  /// Opens the directory made of the first `n` components, never following a symlink; creates
  /// missing directories when `create`.
  Result<common::Fd> open_dir(const std::vector<std::string>& parts, size_t n,
                              const std::string& entry, bool create) {
    common::Fd cur(::dup(root_fd_.get()));
    if (!cur.valid()) return common::errno_error("dup", root_.string(), errno);
    for (size_t i = 0; i < n; ++i) {
      int fd =
          ::openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create) {
        if (::mkdirat(cur.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST)
          return common::errno_error("mkdirat", (root_ / joined(parts, i + 1)).string(), errno);
        touched_.insert(joined(parts, i + 1));
        fd = ::openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
          return hostile(
              entry,
              "'" + joined(parts, i + 1) +
                  "' is a symlink or not a directory (symlinks are never followed or replaced "
                  "by directories)");
        return common::errno_error("openat", (root_ / joined(parts, i + 1)).string(), errno);
      }
      cur = common::Fd(fd);
    }
    return cur;
  }

  Result<void> entry(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    std::string name = raw ? raw : "";
    ENVB_TRY(common::check_entry_path(options_.limits, name));
    ENVB_ASSIGN_OR_RETURN(auto parts, components(name));
    const mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    const int64_t size = archive_entry_size(e);
    if (size < 0) return hostile(name, "negative size");
    ENVB_TRY(common::check_unpack_limits(
        options_.limits, "layer entry '" + name + "'", ++stats_.entries, stats_.bytes,
        type == AE_IFREG && !hardlink ? static_cast<uint64_t>(size) : 0, options_.compressed_size));
    if (parts.empty()) return ok();  // "./": the root itself
    std::string leaf = parts.back();
    std::string path = joined(parts, parts.size());
    for (size_t i = 1; i <= parts.size(); ++i) touched_.insert(joined(parts, i));

    if (options_.whiteouts == Whiteouts::Apply && leaf.starts_with(kWhiteoutPrefix)) {
      ENVB_ASSIGN_OR_RETURN(common::Fd dir, open_dir(parts, parts.size() - 1, name, true));
      std::string parent = joined(parts, parts.size() - 1);
      if (leaf == kOpaque) return clear_dir(dir.get(), parent);
      std::string victim = leaf.substr(kWhiteoutPrefix.size());
      if (victim.empty() || victim == "." || victim == "..")
        return hostile(name, "invalid whiteout name");
      return common::remove_at(dir.get(), victim, (root_ / parent / victim).string());
    }

    if (options_.select && !options_.select(path)) return ok();
    ENVB_ASSIGN_OR_RETURN(common::Fd dir, open_dir(parts, parts.size() - 1, name, true));
    int dfd = dir.get();
    std::string shown = (root_ / path).string();
    // setuid/setgid/sticky and world write are dropped: unpacked trees are shared caches
    // (envrun's, used by every rank and user of a node), not a root filesystem. Group write
    // stays, as in the packages the layers hold.
    mode_t perm = archive_entry_perm(e) & 0775;

    struct stat existing {};
    bool exists = ::fstatat(dfd, leaf.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && type == AE_IFDIR && S_ISLNK(existing.st_mode))
      return hostile(name,
                     "a directory where a lower layer has a symlink "
                     "(symlinks are never followed or replaced by directories)");
    if (exists && !(type == AE_IFDIR && S_ISDIR(existing.st_mode)) &&
        !hardlink_to_self(hardlink, path))
      ENVB_TRY(common::remove_at(dfd, leaf, shown));

    if (hardlink) {
      ENVB_ASSIGN_OR_RETURN(auto tparts, components(hardlink));
      if (tparts.empty()) return hostile(name, "hardlink to the root");
      auto tdir = open_dir(tparts, tparts.size() - 1, name, false);
      if (!tdir)
        return hostile(name, "hardlink target '" + std::string(hardlink) +
                                 "' is not inside the layer root: " + tdir.error().to_string());
      struct stat tst {};
      if (::fstatat(tdir->get(), tparts.back().c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0)
        return hostile(name, "hardlink target '" + std::string(hardlink) + "' does not exist");
      if (S_ISDIR(tst.st_mode)) return hostile(name, "hardlink to a directory");
      if (::linkat(tdir->get(), tparts.back().c_str(), dfd, leaf.c_str(), 0) != 0)
        return common::errno_error("linkat", shown, errno);
      return ok();
    }

    switch (type) {
      case AE_IFDIR:
        if (!exists || !S_ISDIR(existing.st_mode)) {
          if (::mkdirat(dfd, leaf.c_str(), perm) != 0)
            return common::errno_error("mkdirat", shown, errno);
        }
        if (::fchmodat(dfd, leaf.c_str(), perm, 0) != 0)
          return common::errno_error("chmod", shown, errno);
        return ok();
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) return hostile(name, "symlink without a target");
        if (::symlinkat(target, dfd, leaf.c_str()) != 0)
          return common::errno_error("symlinkat", shown, errno);
        set_mtime(dfd, leaf, e);
        return ok();
      }
      case AE_IFREG:
        return write_file(a, e, dfd, leaf, shown, perm, size);
      case AE_IFIFO:
        if (::mkfifoat(dfd, leaf.c_str(), perm) != 0)
          return common::errno_error("mkfifoat", shown, errno);
        return ok();
      case AE_IFCHR:
      case AE_IFBLK:
        if (options_.allow_devices == AllowDevices::No)
          return hostile(name, "device node (pass allow_devices to extract it)");
        if (::mknodat(dfd, leaf.c_str(), type | perm, archive_entry_rdev(e)) != 0)
          return common::errno_error("mknodat", shown, errno);
        return ok();
      default:
        return hostile(name, "unsupported entry type");
    }
  }

  [[nodiscard]] const ExtractStats& stats() const { return stats_; }

 private:
  static bool hardlink_to_self(const char* hardlink, const std::string& path) {
    return hardlink && components(hardlink).value_or(std::vector<std::string>{}) ==
                           components(path).value_or(std::vector<std::string>{});
  }

  void set_mtime(int dfd, const std::string& leaf, archive_entry* e) {
    if (!archive_entry_mtime_is_set(e)) return;
    timespec times[2];
    times[0].tv_sec = archive_entry_mtime(e);
    times[0].tv_nsec = 0;
    times[1] = times[0];
    ::utimensat(dfd, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW);  // best effort
  }

  Result<void> write_file(archive* a, archive_entry* e, int dfd, const std::string& leaf,
                          const std::string& shown, mode_t perm, int64_t size) {
    int fd =
        ::openat(dfd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return common::errno_error("openat", shown, errno);
    common::Fd out(fd);
    int64_t written = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(a, buffer_.data(), buffer_.size());
      if (n < 0)
        return internal::archive_error(a, "archive_read_data(" + shown + ")", Errc::Integrity);
      if (n == 0) break;
      written += n;
      if (written > size) return hostile(shown, "more data than its declared size");
      ENVB_TRY(out.write_all(std::span(buffer_).first(static_cast<size_t>(n)), shown));
    }
    if (written != size)
      return fail(Errc::Integrity, "layer entry '" + shown + "': truncated (" +
                                       std::to_string(written) + " of " + std::to_string(size) +
                                       " bytes)");
    stats_.bytes += static_cast<uint64_t>(written);
    if (::fchmod(out.get(), perm & ~options_.clear_file_bits) != 0)
      return common::errno_error("fchmod", shown, errno);
    out.reset();
    set_mtime(dfd, leaf, e);
    return ok();
  }

  /// Opaque whiteout: hide what lower layers put in `dir`, keep what this layer added.
  Result<void> clear_dir(int dfd, const std::string& dir) {
    int fd = ::dup(dfd);
    if (fd < 0) return common::errno_error("dup", dir, errno);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return common::errno_error("fdopendir", (root_ / dir).string(), errno);
    }
    std::vector<std::string> victims;
    while (dirent* de = ::readdir(d)) {
      std::string child = de->d_name;
      if (child == "." || child == "..") continue;
      std::string rel = dir.empty() ? child : dir + "/" + child;
      if (!touched_.contains(rel)) victims.push_back(child);
    }
    ::closedir(d);
    for (const auto& v : victims) ENVB_TRY(common::remove_at(dfd, v, (root_ / dir / v).string()));
    return ok();
  }

  fs::path root_;
  const ExtractOptions& options_;
  common::Fd root_fd_;
  std::set<std::string> touched_;  // paths this layer created or passed through
  std::vector<std::byte> buffer_;
  ExtractStats stats_;
};

}  // namespace

Result<ExtractStats> extract_layer(common::ByteSource& layer, const fs::path& root,
                                   const ExtractOptions& options) {
  struct Borrowed final : common::ByteSource {
    explicit Borrowed(common::ByteSource& s) : inner(s) {}
    Result<size_t> read(std::span<std::byte> b) override { return inner.read(b); }
    common::ByteSource& inner;
  };
  std::string what = "layer extracted into " + root.string();
  ENVB_ASSIGN_OR_RETURN(auto plain, make_decompressor(std::make_unique<Borrowed>(layer), what));
  Extractor extractor(root, options);
  ENVB_TRY(extractor.open_root());
  internal::SourceContext ctx;
  ctx.source = plain.get();
  ENVB_ASSIGN_OR_RETURN(internal::ArchiveReader a, internal::open_tar_reader(ctx));
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      if (ctx.error) return *ctx.error;
      return internal::archive_error(a.get(), "archive_read_next_header(" + what + ")",
                                     Errc::Integrity);
    }
    auto r = extractor.entry(a.get(), e);
    if (!r) {
      if (ctx.error) return *ctx.error;
      return std::move(r).error();
    }
  }
  // libarchive stops at the end-of-archive blocks; read the rest so that a truncated
  // compressed trailer (CRC, size) or a digest check in a verifying source is not skipped.
  std::vector<std::byte> rest(1u << 16);
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, plain->read(rest));
    if (n == 0) break;
  }
  return extractor.stats();
}

Result<ExtractStats> extract_layer_file(const fs::path& layer, const fs::path& root,
                                        const ExtractOptions& options) {
  ENVB_ASSIGN_OR_RETURN(auto source, common::FileSource::open(layer.string()));
  ExtractOptions sized = options;
  if (sized.compressed_size == 0) {
    struct stat st {};
    if (::stat(layer.c_str(), &st) != 0) return common::errno_error("stat", layer.string(), errno);
    sized.compressed_size = static_cast<uint64_t>(st.st_size);
  }
  return extract_layer(*source, root, sized).context("extracting " + layer.string());
}

}  // namespace envbuild::oci
