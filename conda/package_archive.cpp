#include "conda/package_archive.hpp"

#include <cerrno>
#include <vector>

#include "conda/internal/libarchive.hpp"

namespace envbuild::conda {

namespace fs = std::filesystem;
using internal::archive_error;
using internal::ArchiveReader;

namespace {

constexpr size_t kBlockSize = 1u << 20;

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Streams one entry's data from a libarchive reader.
class EntryData final : public common::ByteSource {
 public:
  EntryData(archive* a, const std::string& object) : a_(a), object_(object) {}
  Result<size_t> read(std::span<std::byte> buffer) override {
    la_ssize_t n = archive_read_data(a_, buffer.data(), buffer.size());
    if (n < 0) return archive_error("archive_read_data", object_, a_);
    return static_cast<size_t>(n);
  }

 private:
  archive* a_;
  const std::string& object_;
};

Result<ArchiveEntry> to_entry(archive_entry* e, const std::string& object) {
  const char* raw = archive_entry_pathname(e);
  if (!raw) raw = archive_entry_pathname_utf8(e);
  if (!raw) return fail(Errc::Integrity, object + ": entry without a readable path name");
  auto normalized = normalize_entry_path(raw);
  if (!normalized)
    return fail(Errc::Integrity,
                object + ": hostile entry '" + raw + "': " + normalized.error().message());
  ArchiveEntry entry;
  entry.path = std::move(*normalized);
  entry.mode = static_cast<uint32_t>(archive_entry_perm(e));
  if (const char* hard = archive_entry_hardlink(e)) {
    auto target = normalize_entry_path(hard);
    if (!target || target->empty())
      return fail(Errc::Integrity, object + ": hard link '" + entry.path +
                                       "' points outside the package ('" + hard + "')");
    entry.type = EntryType::Hardlink;
    entry.link_target = std::move(*target);
    return entry;
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      entry.type = EntryType::File;
      entry.size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : 0;
      break;
    case AE_IFDIR:
      entry.type = EntryType::Directory;
      break;
    case AE_IFLNK: {
      entry.type = EntryType::Symlink;
      const char* target = archive_entry_symlink(e);
      if (!target || !*target)
        return fail(Errc::Integrity, object + ": symlink '" + entry.path + "' has no target");
      entry.link_target = target;
      break;
    }
    default:
      return fail(Errc::Integrity, object + ": entry '" + entry.path +
                                       "' is a device node, fifo or socket; packages hold only "
                                       "files, directories and links");
  }
  return entry;
}

// Walks the entries of one tar stream (already opened on `a`).
Result<Walk> walk_tar(archive* a, const std::string& object, bool info_only, bool skip_info,
                      const EntryVisitor& visitor) {
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) return Walk::Continue;
    if (r < ARCHIVE_WARN) return archive_error("archive_read_next_header", object, a);
    ENVB_ASSIGN_OR_RETURN(ArchiveEntry entry, to_entry(e, object));
    if (entry.path.empty()) continue;  // "./": the root itself
    bool is_info = entry.path == "info" || entry.path.starts_with("info/");
    if ((info_only && !is_info) || (skip_info && is_info)) continue;
    EntryData data(a, object);
    ENVB_ASSIGN_OR_RETURN(Walk next, visitor(entry, data));
    if (next == Walk::Stop) return Walk::Stop;
  }
}

Result<ArchiveReader> new_reader(std::string_view object) {
  ArchiveReader a(archive_read_new());
  if (!a)
    return fail(Errc::Internal, "archive_read_new(" + std::string(object) + "): out of memory");
  return a;
}

Result<void> walk_tar_bz2(const fs::path& package, Components components,
                          const EntryVisitor& visitor) {
  std::string object = package.filename().string();
  ENVB_ASSIGN_OR_RETURN(ArchiveReader a, new_reader(object));
  archive_read_support_filter_bzip2(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), package.c_str(), kBlockSize) != ARCHIVE_OK)
    return archive_error("archive_read_open_filename", package.string(), a.get(),
                         errno == ENOENT ? Errc::NotFound : Errc::Integrity);
  ENVB_TRY(walk_tar(a.get(), object, components == Components::Info, components == Components::Pkg,
                    visitor));
  return ok();
}

// Feeds an inner archive from the current entry of the outer one (a zip member).
struct InnerSource {
  archive* outer;
  std::string object;
};

la_ssize_t read_from_outer(archive* inner, void* context, const void** buffer) {
  auto* source = static_cast<InnerSource*>(context);
  size_t size = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(source->outer, buffer, &size, &offset);
  if (r == ARCHIVE_EOF) return 0;
  if (r < ARCHIVE_WARN) {
    const char* text = archive_error_string(source->outer);
    archive_set_error(inner, EIO, "%s", text ? text : "reading the zip member");
    return -1;
  }
  return static_cast<la_ssize_t>(size);
}

enum class Member { Info, Pkg, Other };

Member classify_member(std::string_view name) {
  // Components are found by base name: a re-zipped package may nest them in a folder.
  auto slash = name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  if (!ends_with(base, ".tar.zst")) return Member::Other;
  if (base.starts_with("info-")) return Member::Info;
  if (base.starts_with("pkg-")) return Member::Pkg;
  return Member::Other;
}

Result<void> walk_conda(const fs::path& package, Components components,
                        const EntryVisitor& visitor) {
  std::string object = package.filename().string();
  ENVB_ASSIGN_OR_RETURN(ArchiveReader outer, new_reader(object));
  archive_read_support_format_zip(outer.get());
  if (archive_read_open_filename(outer.get(), package.c_str(), kBlockSize) != ARCHIVE_OK)
    return archive_error("archive_read_open_filename", package.string(), outer.get(),
                         errno == ENOENT ? Errc::NotFound : Errc::Integrity);
  int info_seen = 0;
  int pkg_seen = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(outer.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return archive_error("archive_read_next_header", object, outer.get());
    const char* raw = archive_entry_pathname(e);
    std::string name = raw ? raw : "";
    Member member = archive_entry_filetype(e) == AE_IFREG ? classify_member(name) : Member::Other;
    if (member == Member::Other) continue;
    int& seen = member == Member::Info ? info_seen : pkg_seen;
    if (++seen > 1)
      return fail(Errc::Integrity, object + ": more than one " +
                                       (member == Member::Info ? "info-" : "pkg-") +
                                       "*.tar.zst component ('" + name + "')");
    bool wanted = components == Components::All ||
                  (components == Components::Info) == (member == Member::Info);
    if (!wanted) continue;
    std::string inner_object = object + "/" + name;
    InnerSource source{outer.get(), inner_object};
    ENVB_ASSIGN_OR_RETURN(ArchiveReader inner, new_reader(inner_object));
    archive_read_support_filter_zstd(inner.get());
    archive_read_support_format_tar(inner.get());
    if (archive_read_open(inner.get(), &source, nullptr, read_from_outer, nullptr) != ARCHIVE_OK)
      return archive_error("archive_read_open", inner_object, inner.get());
    ENVB_ASSIGN_OR_RETURN(Walk next, walk_tar(inner.get(), inner_object, false, false, visitor));
    if (next == Walk::Stop) return ok();
    if (components == Components::Info && member == Member::Info) return ok();
  }
  if (info_seen == 0)
    return fail(Errc::Integrity, object + ": no info-*.tar.zst component; not a conda package")
        .with_hint("re-download the package: the file is truncated or not a .conda archive");
  return ok();
}

// A wheel is a zip read through its central directory (seekable: entries a visitor skips are
// seeked over, so finding .dist-info/METADATA in a large wheel reads little).
Result<void> walk_wheel(const fs::path& wheel, const EntryVisitor& visitor) {
  std::string object = wheel.filename().string();
  ENVB_ASSIGN_OR_RETURN(ArchiveReader a, new_reader(object));
  archive_read_support_format_zip_seekable(a.get());
  if (archive_read_open_filename(a.get(), wheel.c_str(), kBlockSize) != ARCHIVE_OK)
    return archive_error("archive_read_open_filename", wheel.string(), a.get(),
                         errno == ENOENT ? Errc::NotFound : Errc::Integrity);
  ENVB_TRY(walk_tar(a.get(), object, false, false, visitor));
  return ok();
}

}  // namespace

Result<PackageFormat> package_format_of(const fs::path& package) {
  std::string name = package.filename().string();
  if (ends_with(name, ".conda")) return PackageFormat::Conda;
  if (ends_with(name, ".tar.bz2")) return PackageFormat::TarBz2;
  if (ends_with(name, ".whl")) return PackageFormat::Wheel;
  return fail(Errc::Unsupported, "'" + name +
                                     "' is not a conda package or a wheel (expected a .conda, "
                                     ".tar.bz2 or .whl file)");
}

std::string package_stem(const fs::path& package) {
  std::string name = package.filename().string();
  for (std::string_view ext : {".conda", ".tar.bz2"})
    if (ends_with(name, ext)) return name.substr(0, name.size() - ext.size());
  return name;
}

std::string_view to_string(EntryType type) {
  switch (type) {
    case EntryType::File:
      return "file";
    case EntryType::Directory:
      return "directory";
    case EntryType::Symlink:
      return "symlink";
    case EntryType::Hardlink:
      return "hardlink";
  }
  return "?";
}

Result<void> walk_package(const fs::path& package, Components components,
                          const EntryVisitor& visitor) {
  ENVB_ASSIGN_OR_RETURN(PackageFormat format, package_format_of(package));
  auto result = format == PackageFormat::Conda    ? walk_conda(package, components, visitor)
                : format == PackageFormat::TarBz2 ? walk_tar_bz2(package, components, visitor)
                                                  : walk_wheel(package, visitor);
  return std::move(result).context("reading package " + package.string());
}

Result<std::string> normalize_entry_path(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos)
    return fail(Errc::InvalidInput, "path contains a NUL byte");
  if (!raw.empty() && raw.front() == '/') return fail(Errc::InvalidInput, "absolute path");
  std::string out;
  out.reserve(raw.size());
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('/', start);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view part = raw.substr(start, end - start);
    if (part == "..") return fail(Errc::InvalidInput, "'..' component");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = end + 1;
  }
  return out;
}

bool symlink_stays_inside(std::string_view link_path, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  std::vector<std::string_view> stack;
  auto push_parts = [&stack](std::string_view path, bool drop_last) -> bool {
    size_t start = 0;
    std::vector<std::string_view> parts;
    while (start <= path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string_view::npos) end = path.size();
      parts.push_back(path.substr(start, end - start));
      start = end + 1;
    }
    if (drop_last && !parts.empty()) parts.pop_back();
    for (auto part : parts) {
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (stack.empty()) return false;
        stack.pop_back();
      } else {
        stack.push_back(part);
      }
    }
    return true;
  };
  return push_parts(link_path, true) && push_parts(target, false);
}

}  // namespace envbuild::conda
