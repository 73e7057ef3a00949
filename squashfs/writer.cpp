#include "squashfs/writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <span>

#include "common/format.hpp"
#include "common/fs.hpp"
#include "common/root_dir.hpp"
#include "squashfs/internal/file.hpp"
#include "squashfs/internal/libsquashfs.hpp"

namespace envbuild::squashfs {

namespace fs = std::filesystem;
using internal::adopt;
using internal::Object;
using internal::sqfs_error;
using Kind = Entry::Kind;

std::string_view to_string(Compression c) {
  return c == Compression::Gzip ? "gzip" : "zstd";
}

Result<Compression> parse_compression(std::string_view text) {
  if (text == "gzip") return Compression::Gzip;
  if (text == "zstd") return Compression::Zstd;
  return fail(Errc::InvalidInput,
              "unknown SquashFS compression '" + std::string(text) + "' (gzip or zstd)");
}

int default_level(Compression c) {
  return c == Compression::Gzip ? 9 : 15;
}

Entry Entry::file(std::string path, fs::path source) {
  return {std::move(path), Kind::File, std::move(source), std::nullopt, {}, {}};
}
Entry Entry::file_with_content(std::string path, std::string content) {
  return {std::move(path), Kind::File, {}, std::move(content), {}, {}};
}
Entry Entry::directory(std::string path) {
  return {std::move(path), Kind::Directory, {}, std::nullopt, {}, {}};
}
Entry Entry::symlink(std::string path, std::string target) {
  return {std::move(path), Kind::Symlink, {}, std::nullopt, std::move(target), {}};
}

namespace {

constexpr size_t kBufferSize = 1u << 20;
constexpr size_t kMaxName = 255;     // a SquashFS directory entry holds up to 256 bytes
constexpr size_t kMaxTarget = 4095;  // the kernel reads a link target into one page
constexpr uint32_t kNoXattr = 0xFFFFFFFF;

/// "./a//b/" -> "a/b"; "" for the root. Refuses "..", NUL and names over 255 bytes.
Result<std::string> normalize(std::string_view path) {
  ENVB_ASSIGN_OR_RETURN(std::string out, common::normalize_entry_path(path, "image"));
  for (size_t start = 0; start <= out.size();) {
    size_t end = std::min(out.find('/', start), out.size());
    if (end - start > kMaxName)
      return fail(Errc::InvalidInput, "image path '" + common::printable(out) +
                                          "' has a name over " + std::to_string(kMaxName) +
                                          " bytes");
    start = end + 1;
  }
  return out;
}

/// One inode of the image. Nodes live in a deque (their addresses never change): the block
/// processor keeps a pointer to `file_inode` and updates it until it has finished.
struct Node {
  std::string name;
  Kind kind = Kind::Directory;
  uint32_t permissions = 0755;
  fs::path source;
  std::optional<std::string> content;
  std::string target;
  Node* parent = nullptr;
  std::map<std::string, Node*> children;       // by name: the byte order SquashFS directories need
  sqfs_inode_generic_t* file_inode = nullptr;  // File: made and filled by the block processor
  uint32_t inode_number = 0;
  uint64_t inode_ref = 0;
  uint32_t subdirectories = 0;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() { sqfs_free(file_inode); }
};

uint32_t normalized_permissions(Kind kind, std::optional<uint32_t> mode, uint32_t source_mode) {
  if (mode) return *mode & 01777;  // setuid/setgid dropped
  if (kind == Kind::Directory) return 0755;
  if (kind == Kind::Symlink) return 0777;
  return (source_mode & 0111) ? 0755 : 0644;
}

class Tree {
 public:
  Tree() { root_ = &nodes_.emplace_back(); }

  Result<void> add(Entry& e) {
    ENVB_ASSIGN_OR_RETURN(std::string path, normalize(e.path));
    if (path.empty()) {
      if (e.kind != Kind::Directory)
        return fail(Errc::InvalidInput, "image entry '" + e.path + "' names the image root");
      if (e.mode) root_->permissions = *e.mode & 01777;
      return ok();
    }
    if (e.kind == Kind::Symlink && (e.target.empty() || e.target.size() > kMaxTarget ||
                                    e.target.find('\0') != std::string::npos))
      return fail(Errc::InvalidInput,
                  "symlink '" + path + "' has an empty, over-long or NUL target");
    Node* dir = root_;
    size_t start = 0;
    for (size_t slash; (slash = path.find('/', start)) != std::string::npos; start = slash + 1) {
      ENVB_ASSIGN_OR_RETURN(dir, child_dir(dir, path.substr(start, slash - start), path));
    }
    std::string name = path.substr(start);
    auto it = dir->children.find(name);
    if (it != dir->children.end()) {
      if (it->second->kind == Kind::Directory && e.kind == Kind::Directory) {
        if (e.mode) it->second->permissions = *e.mode & 01777;
        return ok();
      }
      return fail(Errc::InvalidInput, "duplicate image path '" + path + "'");
    }
    Node& node = nodes_.emplace_back();
    node.name = name;
    node.kind = e.kind;
    node.parent = dir;
    node.source = std::move(e.source);
    node.content = std::move(e.content);
    node.target = std::move(e.target);
    uint32_t source_mode = 0;
    if (e.kind == Kind::File && !node.content) {
      struct stat st {};
      if (::lstat(node.source.c_str(), &st) != 0)
        return common::errno_error("lstat", node.source.string(), errno);
      if (!S_ISREG(st.st_mode))
        return fail(Errc::InvalidInput, "image file '" + path + "': source " +
                                            node.source.string() + " is not a regular file");
      source_mode = st.st_mode;
    }
    node.permissions = normalized_permissions(e.kind, e.mode, source_mode);
    dir->children.emplace(std::move(name), &node);
    if (e.kind == Kind::Directory) ++dir->subdirectories;
    return ok();
  }

  Node* root() const { return root_; }
  /// Entries of a kind, the root not counted.
  uint64_t count(Kind kind) const {
    uint64_t n = 0;
    for (const Node& node : nodes_) n += node.kind == kind ? 1 : 0;
    return kind == Kind::Directory ? n - 1 : n;
  }

 private:
  Result<Node*> child_dir(Node* dir, const std::string& name, const std::string& path) {
    auto it = dir->children.find(name);
    if (it != dir->children.end()) {
      if (it->second->kind != Kind::Directory)
        return fail(Errc::InvalidInput, "image path '" + path + "' lies below '" + name +
                                            "', which is not a directory");
      return it->second;
    }
    Node& node = nodes_.emplace_back();
    node.name = name;
    node.parent = dir;
    dir->children.emplace(name, &node);
    ++dir->subdirectories;
    return &node;
  }

  std::deque<Node> nodes_;
  Node* root_;
};

/// Files in the order of a depth-first walk with names sorted: the order their data is written.
void collect_files(Node* dir, std::vector<Node*>& out) {
  for (auto& [_, child] : dir->children) {
    if (child->kind == Kind::File) out.push_back(child);
    if (child->kind == Kind::Directory) collect_files(child, out);
  }
}

/// Inode numbers as gensquashfs gives them: the children of every directory after those of its
/// subdirectories, the root last. A directory is thus written after everything it lists.
void number_inodes(Node* dir, std::vector<Node*>& order) {
  for (auto& [_, child] : dir->children)
    if (child->kind == Kind::Directory) number_inodes(child, order);
  for (auto& [_, child] : dir->children) {
    order.push_back(child);
    child->inode_number = static_cast<uint32_t>(order.size());
  }
}

// Every libsquashfs object of one write. Destroyed in reverse order: the block processor (which
// holds the compressor, block writer and fragment table) before them, and the file before all.
struct Writer {
  Object<sqfs_file_t> file;
  Object<sqfs_compressor_t> compressor;
  sqfs_super_t super{};
  Object<sqfs_block_writer_t> blocks;
  Object<sqfs_frag_table_t> fragments;
  Object<sqfs_block_processor_t> data;
  Object<sqfs_id_table_t> ids;
  Object<sqfs_meta_writer_t> inodes;
  Object<sqfs_meta_writer_t> directories;  // kept in memory until the inode table is written
  Object<sqfs_dir_writer_t> dir_writer;
  std::string shown;
};

Result<void> check(int rc, std::string_view call, const Writer& w) {
  if (rc != 0) return sqfs_error(call, w.shown, rc);
  return ok();
}

Result<void> open_writer(Writer& w, int fd, const WriteOptions& o) {
  ENVB_ASSIGN_OR_RETURN(w.file, internal::fd_file(fd, 0, true));
  const auto id = o.compression == Compression::Gzip ? SQFS_COMP_GZIP : SQFS_COMP_ZSTD;
  sqfs_compressor_config_t config{};
  ENVB_TRY(check(sqfs_compressor_config_init(&config, id, o.block_size, 0),
                 "sqfs_compressor_config_init", w));
  config.level = static_cast<sqfs_u32>(o.level.value_or(default_level(o.compression)));
  sqfs_compressor_t* compressor = nullptr;
  ENVB_TRY(check(sqfs_compressor_create(&config, &compressor), "sqfs_compressor_create", w));
  w.compressor.reset(compressor);
  ENVB_TRY(check(sqfs_super_init(&w.super, o.block_size, static_cast<sqfs_u32>(o.mtime), id),
                 "sqfs_super_init", w));
  w.super.flags |= SQFS_FLAG_NO_XATTRS;
  ENVB_TRY(check(sqfs_super_write(&w.super, w.file.get()), "sqfs_super_write", w));
  int written = w.compressor->write_options(w.compressor.get(), w.file.get());
  if (written < 0) return sqfs_error("write_options", w.shown, written);
  if (written > 0) w.super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
  ENVB_ASSIGN_OR_RETURN(w.blocks, adopt(sqfs_block_writer_create(w.file.get(), SQFS_DEVBLK_SIZE, 0),
                                        "sqfs_block_writer_create", w.shown));
  ENVB_ASSIGN_OR_RETURN(w.fragments,
                        adopt(sqfs_frag_table_create(0), "sqfs_frag_table_create", w.shown));
  const unsigned workers = static_cast<unsigned>(o.jobs == 0 ? 1 : o.jobs);
  ENVB_ASSIGN_OR_RETURN(
      w.data, adopt(sqfs_block_processor_create(o.block_size, w.compressor.get(), workers,
                                                workers * 4, w.blocks.get(), w.fragments.get()),
                    "sqfs_block_processor_create", w.shown));
  ENVB_ASSIGN_OR_RETURN(w.ids, adopt(sqfs_id_table_create(0), "sqfs_id_table_create", w.shown));
  ENVB_ASSIGN_OR_RETURN(w.inodes,
                        adopt(sqfs_meta_writer_create(w.file.get(), w.compressor.get(), 0),
                              "sqfs_meta_writer_create", w.shown));
  ENVB_ASSIGN_OR_RETURN(w.directories,
                        adopt(sqfs_meta_writer_create(w.file.get(), w.compressor.get(),
                                                      SQFS_META_WRITER_KEEP_IN_MEMORY),
                              "sqfs_meta_writer_create", w.shown));
  ENVB_ASSIGN_OR_RETURN(w.dir_writer, adopt(sqfs_dir_writer_create(w.directories.get(), 0),
                                            "sqfs_dir_writer_create", w.shown));
  return ok();
}

Result<uint64_t> append_file_data(Writer& w, Node& node, std::vector<std::byte>& buffer) {
  ENVB_TRY(check(sqfs_block_processor_begin_file(w.data.get(), &node.file_inode, nullptr, 0),
                 "sqfs_block_processor_begin_file", w));
  uint64_t total = 0;
  if (node.content) {
    ENVB_TRY(
        check(sqfs_block_processor_append(w.data.get(), node.content->data(), node.content->size()),
              "sqfs_block_processor_append", w));
    total = node.content->size();
  } else {
    ENVB_ASSIGN_OR_RETURN(common::Fd fd, common::open_regular_file(node.source.string()));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return common::errno_error("fstat", node.source, errno);
    while (true) {
      ENVB_ASSIGN_OR_RETURN(size_t n, fd.read_some(buffer, node.source.string()));
      if (n == 0) break;
      ENVB_TRY(check(sqfs_block_processor_append(w.data.get(), buffer.data(), n),
                     "sqfs_block_processor_append", w));
      total += n;
    }
    if (total != static_cast<uint64_t>(st.st_size))
      return fail(Errc::Io, node.source.string() + " changed size while it was read");
  }
  ENVB_TRY(check(sqfs_block_processor_end_file(w.data.get()), "sqfs_block_processor_end_file", w));
  return total;
}

/// The inode of a directory, after its entries are written to the directory table.
Result<internal::Inode> directory_inode(Writer& w, const Node& dir) {
  ENVB_TRY(check(sqfs_dir_writer_begin(w.dir_writer.get(), 0), "sqfs_dir_writer_begin", w));
  for (const auto& [name, child] : dir.children) {
    const uint16_t type = child->kind == Kind::Directory ? S_IFDIR
                          : child->kind == Kind::File    ? S_IFREG
                                                         : S_IFLNK;
    ENVB_TRY(check(sqfs_dir_writer_add_entry(w.dir_writer.get(), name.c_str(), child->inode_number,
                                             child->inode_ref,
                                             static_cast<uint16_t>(type | child->permissions)),
                   "sqfs_dir_writer_add_entry", w));
  }
  ENVB_TRY(check(sqfs_dir_writer_end(w.dir_writer.get()), "sqfs_dir_writer_end", w));
  const uint32_t parent = dir.parent ? dir.parent->inode_number : 0;
  internal::Inode inode(
      sqfs_dir_writer_create_inode(w.dir_writer.get(), 2 + dir.subdirectories, kNoXattr, parent));
  if (!inode) return sqfs_error("sqfs_dir_writer_create_inode", w.shown, SQFS_ERROR_ALLOC);
  return inode;
}

Result<internal::Inode> symlink_inode(const Node& link) {
  const size_t size = link.target.size();
  auto* raw =
      static_cast<sqfs_inode_generic_t*>(std::calloc(1, sizeof(sqfs_inode_generic_t) + size));
  if (raw == nullptr) return sqfs_error("calloc", link.name, SQFS_ERROR_ALLOC);
  internal::Inode inode(raw);
  inode->base.type = SQFS_INODE_SLINK;
  inode->data.slink.nlink = 1;
  inode->data.slink.target_size = static_cast<sqfs_u32>(size);
  inode->payload_bytes_available = static_cast<sqfs_u32>(size);
  inode->payload_bytes_used = static_cast<sqfs_u32>(size);
  std::memcpy(inode->extra, link.target.data(), size);
  return inode;
}

Result<void> write_inode(Writer& w, Node& node, int64_t mtime) {
  internal::Inode inode;
  uint16_t type = S_IFREG;
  if (node.kind == Kind::Directory) {
    ENVB_ASSIGN_OR_RETURN(inode, directory_inode(w, node));
    type = S_IFDIR;
  } else if (node.kind == Kind::Symlink) {
    ENVB_ASSIGN_OR_RETURN(inode, symlink_inode(node));
    type = S_IFLNK;
  } else {
    inode.reset(std::exchange(node.file_inode, nullptr));
    if (!inode) return sqfs_error("writing the inode of", node.name, SQFS_ERROR_INTERNAL);
    if (inode->base.type == SQFS_INODE_EXT_FILE) inode->data.file_ext.nlink = 1;
  }
  inode->base.mode = static_cast<sqfs_u16>(type | node.permissions);
  inode->base.mod_time = static_cast<sqfs_u32>(mtime);
  inode->base.inode_number = node.inode_number;
  ENVB_TRY(check(sqfs_id_table_id_to_index(w.ids.get(), 0, &inode->base.uid_idx),
                 "sqfs_id_table_id_to_index", w));
  inode->base.gid_idx = inode->base.uid_idx;
  sqfs_u64 block = 0;
  sqfs_u32 offset = 0;
  sqfs_meta_writer_get_position(w.inodes.get(), &block, &offset);
  node.inode_ref = (block << 16) | offset;
  return check(sqfs_meta_writer_write_inode(w.inodes.get(), inode.get()),
               "sqfs_meta_writer_write_inode", w);
}

/// Inode and directory tables, fragment and id tables, then the final superblock.
Result<void> write_tables(Writer& w, Tree& tree, int64_t mtime) {
  std::vector<Node*> order;
  number_inodes(tree.root(), order);
  order.push_back(tree.root());
  tree.root()->inode_number = static_cast<uint32_t>(order.size());
  w.super.inode_count = static_cast<sqfs_u32>(order.size());
  w.super.inode_table_start = w.file->get_size(w.file.get());
  for (Node* node : order) ENVB_TRY(write_inode(w, *node, mtime));
  ENVB_TRY(check(sqfs_meta_writer_flush(w.inodes.get()), "sqfs_meta_writer_flush", w));
  ENVB_TRY(check(sqfs_meta_writer_flush(w.directories.get()), "sqfs_meta_writer_flush", w));
  w.super.root_inode_ref = tree.root()->inode_ref;
  w.super.directory_table_start = w.file->get_size(w.file.get());
  ENVB_TRY(check(sqfs_meta_write_write_to_file(w.directories.get()),
                 "sqfs_meta_write_write_to_file", w));
  ENVB_TRY(
      check(sqfs_frag_table_write(w.fragments.get(), w.file.get(), &w.super, w.compressor.get()),
            "sqfs_frag_table_write", w));
  ENVB_TRY(check(sqfs_id_table_write(w.ids.get(), w.file.get(), &w.super, w.compressor.get()),
                 "sqfs_id_table_write", w));
  w.super.bytes_used = w.file->get_size(w.file.get());
  ENVB_TRY(check(sqfs_super_write(&w.super, w.file.get()), "sqfs_super_write", w));
  // Padded to the device block size, as mksquashfs does (loop devices read whole blocks).
  const uint64_t padding =
      (SQFS_DEVBLK_SIZE - w.super.bytes_used % SQFS_DEVBLK_SIZE) % SQFS_DEVBLK_SIZE;
  if (padding > 0) {
    std::vector<char> zeros(padding, 0);
    ENVB_TRY(check(w.file->write_at(w.file.get(), w.super.bytes_used, zeros.data(), padding),
                   "write_at", w));
  }
  return ok();
}

}  // namespace

Result<WriteInfo> write_image(std::vector<Entry> entries, const WriteOptions& options,
                              const fs::path& output) {
  if (options.block_size < SQFS_MIN_BLOCK_SIZE || options.block_size > SQFS_MAX_BLOCK_SIZE ||
      (options.block_size & (options.block_size - 1)) != 0)
    return fail(Errc::InvalidInput, "SquashFS block size " + std::to_string(options.block_size) +
                                        " is not a power of two from 4 KiB to 1 MiB");
  if (options.mtime < 0 || options.mtime > 0xFFFFFFFFLL)
    return fail(Errc::InvalidInput,
                "SquashFS mtime " + std::to_string(options.mtime) + " does not fit in 32 bits");
  Tree tree;
  WriteInfo info;
  for (auto& e : entries) ENVB_TRY(tree.add(e));
  std::vector<Node*> files;
  collect_files(tree.root(), files);

  ENVB_ASSIGN_OR_RETURN(common::AtomicFile out, common::AtomicFile::create(output, 0644));
  Writer w;
  w.shown = output.string();
  ENVB_TRY(open_writer(w, out.fd().get(), options));
  std::vector<std::byte> buffer(kBufferSize);
  for (Node* node : files) {
    ENVB_ASSIGN_OR_RETURN(uint64_t n, append_file_data(w, *node, buffer));
    info.content_bytes += n;
  }
  ENVB_TRY(check(sqfs_block_processor_finish(w.data.get()), "sqfs_block_processor_finish", w));
  ENVB_TRY(write_tables(w, tree, options.mtime));
  info.size = w.file->get_size(w.file.get());
  ENVB_TRY(out.commit());
  info.files = files.size();
  info.directories = tree.count(Kind::Directory);
  info.symlinks = tree.count(Kind::Symlink);
  return info;
}

Result<std::vector<Entry>> entries_from_tree(const fs::path& dir) {
  std::vector<Entry> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return fail(Errc::Io, "opendir(" + dir.string() + "): " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return fail(Errc::Io, "readdir(" + dir.string() + "): " + ec.message());
    const fs::path& p = it->path();
    std::string relative = p.lexically_relative(dir).generic_string();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return common::errno_error("lstat", p.string(), errno);
    if (S_ISDIR(st.st_mode)) {
      out.push_back(Entry::directory(std::move(relative)));
    } else if (S_ISLNK(st.st_mode)) {
      fs::path target = fs::read_symlink(p, ec);
      if (ec) return fail(Errc::Io, "readlink(" + p.string() + "): " + ec.message());
      out.push_back(Entry::symlink(std::move(relative), target.string()));
      continue;
    } else if (S_ISREG(st.st_mode)) {
      out.push_back(Entry::file(std::move(relative), p));
    } else {
      return fail(Errc::Unsupported, p.string() + ": not a file, directory or symlink");
    }
    // The tree's own permissions (an unpacked image's), setuid/setgid dropped.
    out.back().mode = static_cast<uint32_t>(st.st_mode & 01777);
  }
  return out;
}

}  // namespace envbuild::squashfs
