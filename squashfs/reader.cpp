#include "squashfs/reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <vector>

#include "common/fs.hpp"
#include "squashfs/internal/file.hpp"
#include "squashfs/internal/libsquashfs.hpp"

namespace envbuild::squashfs {

namespace fs = std::filesystem;
using internal::adopt;
using internal::Object;
using internal::sqfs_error;

namespace {

constexpr uint64_t kNoTable = ~uint64_t{0};
constexpr uint32_t kMaxTarget = 4095;
constexpr size_t kSuperSize = 96;

uint16_t le16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const unsigned char* p) {
  return static_cast<uint64_t>(le32(p)) | (static_cast<uint64_t>(le32(p + 4)) << 32);
}

Error corrupt(const std::string& shown, const std::string& why) {
  return Error(Errc::Integrity, shown + ": not a sound SquashFS image: " + why);
}

std::string compressor_name(uint16_t id) {
  const char* name = sqfs_compressor_name_from_id(static_cast<SQFS_COMPRESSOR>(id));
  return name ? name : "unknown";
}

/// Everything libsquashfs would read at an offset from the superblock lies inside the image, in
/// the order a writer puts it; counts that size allocations are bounded.
Result<void> check_super(const sqfs_super_t& s, uint64_t file_size, const ReadLimits& limits,
                         const std::string& shown) {
  if (s.block_size < SQFS_MIN_BLOCK_SIZE || s.block_size > SQFS_MAX_BLOCK_SIZE ||
      (s.block_size & (s.block_size - 1)) != 0 || s.block_log > 20 ||
      (uint32_t{1} << s.block_log) != s.block_size)
    return corrupt(shown, "block size " + std::to_string(s.block_size) + " (log " +
                              std::to_string(s.block_log) + ")");
  if (s.bytes_used < kSuperSize || s.bytes_used > file_size)
    return corrupt(shown, "bytes_used " + std::to_string(s.bytes_used) + " of a " +
                              std::to_string(file_size) + "-byte file");
  const uint64_t end = s.bytes_used;
  if (s.inode_table_start < kSuperSize || s.inode_table_start >= s.directory_table_start ||
      s.directory_table_start >= end)
    return corrupt(shown, "inode and directory tables out of order or out of bounds");
  for (uint64_t start :
       {s.id_table_start, s.fragment_table_start, s.export_table_start, s.xattr_id_table_start}) {
    if (start == kNoTable) continue;
    if (start <= s.directory_table_start || start >= end)
      return corrupt(shown, "a table starts outside the image");
  }
  if (s.id_table_start == kNoTable || s.id_count == 0) return corrupt(shown, "no uid/gid table");
  if (s.inode_count == 0 || s.inode_count > limits.max_entries + 1)
    return corrupt(shown, std::to_string(s.inode_count) + " inodes (at most " +
                              std::to_string(limits.max_entries + 1) + ")");
  // A fragment is the tail of at least one file: more fragments than inodes is a lie, and the
  // table's size is what libsquashfs allocates.
  if (s.fragment_entry_count > s.inode_count)
    return corrupt(shown, std::to_string(s.fragment_entry_count) + " fragments for " +
                              std::to_string(s.inode_count) + " inodes");
  if (s.fragment_entry_count > 0 && s.fragment_table_start == kNoTable)
    return corrupt(shown, "fragments without a fragment table");
  if (s.root_inode_ref >> 16 >= s.directory_table_start - s.inode_table_start)
    return corrupt(shown, "the root inode lies outside the inode table");
  return ok();
}

}  // namespace

struct Reader::Impl {
  // Destroyed bottom-up: the readers before the compressor and the file they use, the file
  // before the descriptor it reads.
  common::Fd fd;
  Object<sqfs_file_t> file;
  sqfs_super_t super{};
  Object<sqfs_compressor_t> compressor;
  Object<sqfs_meta_reader_t> inodes;
  Object<sqfs_meta_reader_t> directories;
  Object<sqfs_data_reader_t> data;
  ReadLimits limits;
  ImageSummary summary;
  std::string shown;

  Result<void> init(uint64_t file_size);
  Result<internal::Inode> read_inode(uint64_t ref) const;
  Result<void> check_inode(uint64_t ref) const;
  struct Child {
    std::string name;
    internal::Inode inode;
  };
  Result<std::vector<Child>> list(const sqfs_inode_generic_t& dir, uint64_t& budget) const;
  Result<std::optional<std::string>> content(const sqfs_inode_generic_t& file, size_t max) const;
};

Result<void> Reader::Impl::init(uint64_t file_size) {
  if (file_size < kSuperSize) return corrupt(shown, "shorter than a superblock");
  int rc = sqfs_super_read(&super, file.get());
  if (rc != 0) return sqfs_error("sqfs_super_read", shown, rc);
  ENVB_TRY(check_super(super, file_size, limits, shown));
  summary.compression = compressor_name(super.compression_id);
  summary.block_size = super.block_size;
  summary.inodes = super.inode_count;
  summary.bytes_used = super.bytes_used;
  summary.mtime = super.modification_time;

  sqfs_compressor_config_t config{};
  rc = sqfs_compressor_config_init(&config, static_cast<SQFS_COMPRESSOR>(super.compression_id),
                                   super.block_size, SQFS_COMP_FLAG_UNCOMPRESS);
  if (rc != 0) return sqfs_error("sqfs_compressor_config_init", shown, rc);
  sqfs_compressor_t* raw = nullptr;
  rc = sqfs_compressor_create(&config, &raw);
  if (rc != 0)
    return sqfs_error("sqfs_compressor_create", shown + " (" + summary.compression + ")", rc);
  compressor.reset(raw);
  if (super.flags & SQFS_FLAG_COMPRESSOR_OPTIONS) {
    rc = compressor->read_options(compressor.get(), file.get());
    if (rc != 0) return sqfs_error("read_options", shown, rc);
  }
  uint64_t directory_end = super.bytes_used;
  for (uint64_t start : {super.id_table_start, super.fragment_table_start, super.export_table_start,
                         super.xattr_id_table_start})
    if (start != kNoTable) directory_end = std::min(directory_end, start);
  ENVB_ASSIGN_OR_RETURN(
      inodes, adopt(sqfs_meta_reader_create(file.get(), compressor.get(), super.inode_table_start,
                                            super.directory_table_start),
                    "sqfs_meta_reader_create", shown));
  ENVB_ASSIGN_OR_RETURN(directories,
                        adopt(sqfs_meta_reader_create(file.get(), compressor.get(),
                                                      super.directory_table_start, directory_end),
                              "sqfs_meta_reader_create", shown));
  ENVB_ASSIGN_OR_RETURN(
      data, adopt(sqfs_data_reader_create(file.get(), super.block_size, compressor.get(), 0),
                  "sqfs_data_reader_create", shown));
  rc = sqfs_data_reader_load_fragment_table(data.get(), &super);
  if (rc != 0) return sqfs_error("sqfs_data_reader_load_fragment_table", shown, rc);
  return ok();
}

/// Reads the fixed part of the inode at `ref` and refuses sizes libsquashfs would allocate
/// blindly: a link target over a page, a file larger than the limit (its block list).
Result<void> Reader::Impl::check_inode(uint64_t ref) const {
  const uint64_t block = super.inode_table_start + (ref >> 16);
  const size_t offset = ref & 0xFFFF;
  int rc = sqfs_meta_reader_seek(inodes.get(), block, offset);
  if (rc != 0) return sqfs_error("sqfs_meta_reader_seek", shown + " (inode table)", rc);
  std::array<unsigned char, 16 + 40> raw{};
  rc = sqfs_meta_reader_read(inodes.get(), raw.data(), 16);
  if (rc != 0) return sqfs_error("sqfs_meta_reader_read", shown + " (inode)", rc);
  const uint16_t type = le16(raw.data());
  uint64_t file_size = 0;
  if (type == SQFS_INODE_FILE || type == SQFS_INODE_EXT_FILE) {
    const size_t fixed = type == SQFS_INODE_FILE ? 16 : 40;
    rc = sqfs_meta_reader_read(inodes.get(), raw.data() + 16, fixed);
    if (rc != 0) return sqfs_error("sqfs_meta_reader_read", shown + " (file inode)", rc);
    file_size = type == SQFS_INODE_FILE ? le32(raw.data() + 16 + 12) : le64(raw.data() + 16 + 8);
    if (file_size > limits.max_file_size)
      return corrupt(shown, "a file of " + std::to_string(file_size) + " bytes (at most " +
                                std::to_string(limits.max_file_size) + ")");
  } else if (type == SQFS_INODE_SLINK || type == SQFS_INODE_EXT_SLINK) {
    rc = sqfs_meta_reader_read(inodes.get(), raw.data() + 16, 8);
    if (rc != 0) return sqfs_error("sqfs_meta_reader_read", shown + " (symlink inode)", rc);
    if (le32(raw.data() + 16 + 4) > kMaxTarget)
      return corrupt(shown,
                     "a symlink target of " + std::to_string(le32(raw.data() + 20)) + " bytes");
  } else if (type < SQFS_INODE_DIR || type > SQFS_INODE_EXT_SOCKET) {
    return corrupt(shown, "inode type " + std::to_string(type));
  }
  return ok();
}

Result<internal::Inode> Reader::Impl::read_inode(uint64_t ref) const {
  ENVB_TRY(check_inode(ref));
  sqfs_inode_generic_t* raw = nullptr;
  int rc = sqfs_meta_reader_read_inode(inodes.get(), &super, ref >> 16, ref & 0xFFFF, &raw);
  if (rc != 0) return sqfs_error("sqfs_meta_reader_read_inode", shown, rc);
  return internal::Inode(raw);
}

namespace {

bool is_directory(const sqfs_inode_generic_t& inode) {
  return inode.base.type == SQFS_INODE_DIR || inode.base.type == SQFS_INODE_EXT_DIR;
}

bool plain_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

}  // namespace

/// The entries of a directory with their inodes. `budget` is what is left of the entry limit.
Result<std::vector<Reader::Impl::Child>> Reader::Impl::list(const sqfs_inode_generic_t& dir,
                                                            uint64_t& budget) const {
  sqfs_readdir_state_t state{};
  int rc = sqfs_readdir_state_init(&state, &super, &dir);
  if (rc != 0) return sqfs_error("sqfs_readdir_state_init", shown, rc);
  std::vector<Child> out;
  while (true) {
    sqfs_dir_entry_t* raw = nullptr;
    sqfs_u32 number = 0;
    sqfs_u64 ref = 0;
    rc = sqfs_meta_reader_readdir(directories.get(), &state, &raw, &number, &ref);
    if (rc > 0) break;
    if (rc < 0) return sqfs_error("sqfs_meta_reader_readdir", shown, rc);
    internal::DirEntry entry(raw);
    if (budget == 0)
      return corrupt(shown, "more than " + std::to_string(limits.max_entries) + " entries");
    --budget;
    std::string name(reinterpret_cast<const char*>(entry->name), size_t{entry->size} + 1);
    if (!plain_name(name)) return corrupt(shown, "an entry named '" + name + "'");
    ENVB_ASSIGN_OR_RETURN(internal::Inode inode, read_inode(ref));
    out.push_back({std::move(name), std::move(inode)});
  }
  return out;
}

Result<std::optional<std::string>> Reader::Impl::content(const sqfs_inode_generic_t& file,
                                                         size_t max) const {
  sqfs_u64 size = 0;
  int rc = sqfs_inode_get_file_size(&file, &size);
  if (rc != 0) return sqfs_error("sqfs_inode_get_file_size", shown, rc);
  if (size > max)
    return fail(Errc::Integrity, shown + ": a file of " + std::to_string(size) +
                                     " bytes where at most " + std::to_string(max) + " fit");
  std::string out(size, '\0');
  for (uint64_t done = 0; done < size;) {
    const auto chunk = static_cast<sqfs_u32>(std::min<uint64_t>(size - done, 1u << 20));
    sqfs_s32 n = sqfs_data_reader_read(data.get(), &file, done, out.data() + done, chunk);
    if (n < 0) return sqfs_error("sqfs_data_reader_read", shown, n);
    if (n == 0) return corrupt(shown, "file data ends early");
    done += static_cast<uint64_t>(n);
  }
  return std::optional<std::string>(std::move(out));
}

Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;
Reader::~Reader() = default;

const ImageSummary& Reader::summary() const noexcept {
  return impl_->summary;
}

Result<Reader> Reader::open(const fs::path& path, const ReadLimits& limits) {
  auto impl = std::make_unique<Impl>();
  impl->shown = path.string();
  impl->limits = limits;
  ENVB_ASSIGN_OR_RETURN(impl->fd, common::open_regular_file(path.string()));
  struct stat st {};
  if (::fstat(impl->fd.get(), &st) != 0) return common::errno_error("fstat", path.string(), errno);
  const auto size = static_cast<uint64_t>(st.st_size);
  ENVB_ASSIGN_OR_RETURN(impl->file, internal::fd_file(impl->fd.get(), size, false));
  ENVB_TRY(impl->init(size));
  return Reader(std::move(impl));
}

Result<Reader> Reader::open_memory(std::span<const std::byte> bytes, const ReadLimits& limits) {
  auto impl = std::make_unique<Impl>();
  impl->shown = "(image in memory)";
  impl->limits = limits;
  ENVB_ASSIGN_OR_RETURN(impl->file, internal::memory_file(bytes));
  ENVB_TRY(impl->init(bytes.size()));
  return Reader(std::move(impl));
}

namespace {

EntryInfo::Kind kind_of(const sqfs_inode_generic_t& inode) {
  switch (inode.base.type) {
    case SQFS_INODE_DIR:
    case SQFS_INODE_EXT_DIR:
      return EntryInfo::Kind::Directory;
    case SQFS_INODE_FILE:
    case SQFS_INODE_EXT_FILE:
      return EntryInfo::Kind::File;
    case SQFS_INODE_SLINK:
    case SQFS_INODE_EXT_SLINK:
      return EntryInfo::Kind::Symlink;
    default:
      return EntryInfo::Kind::Other;
  }
}

EntryInfo info_of(std::string path, const sqfs_inode_generic_t& inode) {
  EntryInfo info;
  info.path = std::move(path);
  info.kind = kind_of(inode);
  info.mode = inode.base.mode & 07777;
  if (info.kind == EntryInfo::Kind::File) {
    sqfs_u64 size = 0;
    if (sqfs_inode_get_file_size(&inode, &size) == 0) info.size = size;
  } else if (info.kind == EntryInfo::Kind::Symlink) {
    info.target.assign(reinterpret_cast<const char*>(inode.extra), inode.data.slink.target_size);
  }
  return info;
}

bool is_device(const sqfs_inode_generic_t& inode) {
  const auto t = inode.base.type;
  return t == SQFS_INODE_BDEV || t == SQFS_INODE_CDEV || t == SQFS_INODE_EXT_BDEV ||
         t == SQFS_INODE_EXT_CDEV;
}

}  // namespace

namespace {

using InodeVisitor = std::function<Result<void>(const std::string&, const sqfs_inode_generic_t&)>;

/// Depth first from the root, parents before children, each directory's entries in the
/// listing's order; every bound of ReadLimits enforced.
Result<void> walk_inodes(const Reader::Impl& impl, const InodeVisitor& visit) {
  ENVB_ASSIGN_OR_RETURN(internal::Inode root, impl.read_inode(impl.super.root_inode_ref));
  if (!is_directory(*root)) return corrupt(impl.shown, "the root is not a directory");
  struct Pending {
    std::string path;
    internal::Inode inode;
    size_t depth;
  };
  std::vector<Pending> stack;
  std::set<uint32_t> seen{root->base.inode_number};  // directory inodes: a repeat is a cycle
  stack.push_back({"", std::move(root), 0});
  uint64_t budget = impl.limits.max_entries;
  while (!stack.empty()) {
    Pending dir = std::move(stack.back());
    stack.pop_back();
    if (dir.depth >= impl.limits.max_depth)
      return corrupt(impl.shown,
                     "directories nested deeper than " + std::to_string(impl.limits.max_depth));
    ENVB_ASSIGN_OR_RETURN(auto children, impl.list(*dir.inode, budget));
    std::vector<Pending> subdirectories;
    for (auto& child : children) {
      std::string path = dir.path.empty() ? child.name : dir.path + "/" + child.name;
      ENVB_TRY(visit(path, *child.inode));
      if (!is_directory(*child.inode)) continue;
      if (!seen.insert(child.inode->base.inode_number).second)
        return corrupt(impl.shown, "directory '" + path + "' appears twice (a cycle?)");
      subdirectories.push_back({std::move(path), std::move(child.inode), dir.depth + 1});
    }
    // Reversed onto the stack, so the first subdirectory is walked first.
    for (auto it = subdirectories.rbegin(); it != subdirectories.rend(); ++it)
      stack.push_back(std::move(*it));
  }
  return ok();
}

}  // namespace

Result<void> Reader::walk(const std::function<Result<void>(const EntryInfo&)>& visit) const {
  return walk_inodes(*impl_, [&](const std::string& path, const sqfs_inode_generic_t& inode) {
    return visit(info_of(path, inode));
  });
}

Result<std::optional<std::string>> Reader::read_file(std::string_view path,
                                                     size_t max_bytes) const {
  const Impl& impl = *impl_;
  ENVB_ASSIGN_OR_RETURN(internal::Inode node, impl.read_inode(impl.super.root_inode_ref));
  uint64_t budget = impl.limits.max_entries;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string_view name = path.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    if (!is_directory(*node)) return std::optional<std::string>();
    ENVB_ASSIGN_OR_RETURN(auto children, impl.list(*node, budget));
    auto found = std::find_if(children.begin(), children.end(),
                              [&](const Impl::Child& c) { return c.name == name; });
    if (found == children.end()) return std::optional<std::string>();
    node = std::move(found->inode);
  }
  if (kind_of(*node) != EntryInfo::Kind::File) return std::optional<std::string>();
  return impl.content(*node, max_bytes);
}

namespace {

/// Streams a file's data into `fd`; returns its size.
Result<uint64_t> copy_data(const Reader::Impl& impl, const sqfs_inode_generic_t& file,
                           const common::Fd& out, const std::string& shown,
                           std::vector<char>& buffer) {
  sqfs_u64 size = 0;
  int rc = sqfs_inode_get_file_size(&file, &size);
  if (rc != 0) return sqfs_error("sqfs_inode_get_file_size", shown, rc);
  for (uint64_t done = 0; done < size;) {
    const auto chunk = static_cast<sqfs_u32>(std::min<uint64_t>(size - done, buffer.size()));
    sqfs_s32 n = sqfs_data_reader_read(impl.data.get(), &file, done, buffer.data(), chunk);
    if (n < 0) return sqfs_error("sqfs_data_reader_read", impl.shown + " (" + shown + ")", n);
    if (n == 0) return corrupt(impl.shown, "the data of '" + shown + "' ends early");
    ENVB_TRY(out.write_all(std::as_bytes(std::span(buffer.data(), static_cast<size_t>(n))), shown));
    done += static_cast<uint64_t>(n);
  }
  return size;
}

}  // namespace

Result<ExtractStats> Reader::extract(const common::RootDir& dest) const {
  const Impl& impl = *impl_;
  ExtractStats stats;
  std::vector<std::pair<std::string, mode_t>> directories;  // final modes, set last
  std::vector<char> buffer(size_t{1} << 20);
  ENVB_TRY(walk_inodes(
      impl, [&](const std::string& path, const sqfs_inode_generic_t& inode) -> Result<void> {
        const mode_t permissions = inode.base.mode & 0777;
        switch (kind_of(inode)) {
          case EntryInfo::Kind::Directory:
            ENVB_TRY(dest.make_dir(path, 0700));
            directories.emplace_back(path, permissions | 0700);
            ++stats.directories;
            return ok();
          case EntryInfo::Kind::File: {
            // O_EXCL: a name the image lists twice is an error, never a write through what the
            // first one made.
            ENVB_ASSIGN_OR_RETURN(common::Fd fd,
                                  dest.open_file(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
            ENVB_ASSIGN_OR_RETURN(uint64_t size,
                                  copy_data(impl, inode, fd, dest.shown(path), buffer));
            stats.bytes += size;
            if (stats.bytes > impl.limits.max_total_size)
              return corrupt(impl.shown, "more than " + std::to_string(impl.limits.max_total_size) +
                                             " bytes of file content");
            if (::fchmod(fd.get(), permissions) != 0)
              return common::errno_error("fchmod", dest.shown(path), errno);
            ++stats.files;
            return ok();
          }
          case EntryInfo::Kind::Symlink: {
            ENVB_ASSIGN_OR_RETURN(common::DirEntry at, dest.parent_of(path));
            std::string target(reinterpret_cast<const char*>(inode.extra),
                               inode.data.slink.target_size);
            if (target.empty() || target.find('\0') != std::string::npos)
              return corrupt(impl.shown, "symlink '" + path + "' has an empty or NUL target");
            if (::symlinkat(target.c_str(), at.dir.get(), at.name.c_str()) != 0)
              return common::errno_error("symlinkat", dest.shown(path), errno);
            ++stats.symlinks;
            return ok();
          }
          case EntryInfo::Kind::Other:
            if (is_device(inode)) return corrupt(impl.shown, "'" + path + "' is a device node");
            ++stats.skipped;
            return ok();
        }
        return ok();
      }));
  // Children first: a directory without write permission is made so only when it is complete.
  for (auto it = directories.rbegin(); it != directories.rend(); ++it) {
    ENVB_ASSIGN_OR_RETURN(common::Fd fd, dest.open_dir(it->first));
    if (::fchmod(fd.get(), it->second) != 0)
      return common::errno_error("fchmod", dest.shown(it->first), errno);
  }
  return stats;
}

bool has_squashfs_magic(const fs::path& path) {
  auto fd = common::open_regular_file(path.string());
  if (!fd) return false;
  char magic[4] = {};
  return ::pread(fd->get(), magic, sizeof magic, 0) == 4 && std::memcmp(magic, "hsqs", 4) == 0;
}

}  // namespace envbuild::squashfs
