#include "oci/layer_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/fs.hpp"
#include "oci/internal/libarchive.hpp"

namespace envbuild::oci {

namespace fs = std::filesystem;
using Kind = LayerEntry::Kind;

LayerEntry LayerEntry::file(std::string path, fs::path source) {
  return {std::move(path), Kind::File, std::move(source), {}, {}};
}
LayerEntry LayerEntry::directory(std::string path) {
  return {std::move(path), Kind::Directory, {}, {}, {}};
}
LayerEntry LayerEntry::symlink(std::string path, std::string target) {
  return {std::move(path), Kind::Symlink, {}, std::move(target), {}};
}
LayerEntry LayerEntry::hardlink(std::string path, std::string target) {
  return {std::move(path), Kind::Hardlink, {}, std::move(target), {}};
}
LayerEntry LayerEntry::whiteout(std::string path) {
  return {std::move(path), Kind::Whiteout, {}, {}, {}};
}
LayerEntry LayerEntry::opaque(std::string path) {
  return {std::move(path), Kind::OpaqueWhiteout, {}, {}, {}};
}

int64_t default_source_date_epoch() {
  const char* value = std::getenv("SOURCE_DATE_EPOCH");
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  long long v = std::strtoll(value, &end, 10);
  if (*end != '\0' || v < 0) return 0;
  return static_cast<int64_t>(v);
}

namespace {

constexpr size_t kBufferSize = 1u << 20;
/// Tar output is padded to whole 10240-byte records, as GNU tar and libarchive's default do.
constexpr uint64_t kTarRecord = 10240;

Result<std::string> normalize(std::string_view path) {
  return common::normalize_entry_path(path, "layer");
}

std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

struct Item {
  Kind kind = Kind::Directory;
  fs::path source;
  std::string target;
  std::optional<uint32_t> mode;
};

/// Sorted, normalised, parents added, hardlink groups led by their first path.
Result<std::map<std::string, Item>> plan(std::vector<LayerEntry> entries) {
  std::map<std::string, Item> items;
  for (auto& e : entries) {
    ENVB_ASSIGN_OR_RETURN(std::string path, normalize(e.path));
    Kind kind = e.kind;
    if (kind == Kind::Whiteout || kind == Kind::OpaqueWhiteout) {
      if (kind == Kind::Whiteout && path.empty())
        return fail(Errc::InvalidInput, "cannot white out the layer root");
      std::string name = kind == Kind::Whiteout ? ".wh." + path.substr(path.rfind('/') + 1)
                                                : std::string(".wh..wh..opq");
      path = join(kind == Kind::Whiteout ? parent_of(path) : path, name);
    }
    if (path.empty()) {
      if (kind == Kind::Directory) continue;  // the root itself
      return fail(Errc::InvalidInput, "layer entry '" + e.path + "' names the layer root");
    }
    if (kind == Kind::Hardlink) {
      ENVB_ASSIGN_OR_RETURN(e.target, normalize(e.target));
    }
    Item item{kind, std::move(e.source), std::move(e.target), e.mode};
    auto [it, inserted] = items.emplace(path, item);
    if (!inserted) {
      if (it->second.kind == Kind::Directory && kind == Kind::Directory) {
        if (item.mode) it->second.mode = item.mode;
        continue;
      }
      return fail(Errc::InvalidInput, "duplicate layer path '" + path + "'");
    }
  }
  // Explicit parents, so extraction never invents directories with host-dependent modes.
  std::vector<std::string> parents;
  for (const auto& [path, item] : items)
    for (std::string p = parent_of(path); !p.empty(); p = parent_of(p)) parents.push_back(p);
  for (auto& p : parents) {
    auto [it, inserted] = items.emplace(p, Item{});
    if (!inserted && it->second.kind != Kind::Directory)
      return fail(Errc::InvalidInput, "layer path '" + p + "' is used as a directory and a file");
  }
  // Hardlinks: each group is led by its smallest path, which carries the content.
  std::map<std::string, std::vector<std::string>> groups;  // file path -> link paths
  for (const auto& [path, item] : items) {
    if (item.kind != Kind::Hardlink) continue;
    std::string target = item.target;
    for (int hops = 0;; ++hops) {
      auto t = items.find(target);
      if (t == items.end() || hops > 64 ||
          (t->second.kind != Kind::File && t->second.kind != Kind::Hardlink))
        return fail(Errc::InvalidInput, "hardlink '" + path + "' -> '" + item.target +
                                            "': target is not a regular file in this layer");
      if (t->second.kind == Kind::File) break;
      target = t->second.target;
    }
    groups[target].push_back(path);
  }
  for (auto& [file, links] : groups) {
    const std::string& leader = std::min(file, *std::min_element(links.begin(), links.end()));
    if (leader == file) {
      for (auto& l : links) items[l].target = file;
      continue;
    }
    std::string lead = leader;  // copy: `links` is rewritten below
    Item content = items[file];
    items[lead] = content;
    for (auto& l : links)
      if (l != lead) items[l] = Item{Kind::Hardlink, {}, lead, {}};
    items[file] = Item{Kind::Hardlink, {}, lead, {}};
  }
  return items;
}

uint32_t clean_mode(uint32_t mode) {
  return mode & 01777;  // never setuid/setgid
}

class LayerTarWriter {
 public:
  LayerTarWriter(archive* a, const LayerOptions& options, int64_t mtime)
      : a_(a), options_(options), mtime_(mtime), buffer_(kBufferSize) {}

  Result<void> add(const std::string& path, const Item& item) {
    internal::Entry e(archive_entry_new());
    if (!e) return fail(Errc::Internal, "archive_entry_new failed");
    archive_entry_copy_pathname(e.get(), path.c_str());
    archive_entry_set_uid(e.get(), options_.uid);
    archive_entry_set_gid(e.get(), options_.gid);
    archive_entry_set_mtime(e.get(), mtime_, 0);
    common::Fd fd;
    int64_t size = 0;
    switch (item.kind) {
      case Kind::Directory:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        archive_entry_set_perm(e.get(), clean_mode(item.mode.value_or(0755)));
        break;
      case Kind::Symlink:
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_perm(e.get(), 0777);
        archive_entry_copy_symlink(e.get(), item.target.c_str());
        break;
      case Kind::Hardlink:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0644);
        archive_entry_copy_hardlink(e.get(), item.target.c_str());
        archive_entry_set_size(e.get(), 0);
        break;
      case Kind::Whiteout:
      case Kind::OpaqueWhiteout:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0644);
        archive_entry_set_size(e.get(), 0);
        break;
      case Kind::File: {
        ENVB_ASSIGN_OR_RETURN(fd, common::Fd::open(item.source.string(), O_RDONLY | O_NOFOLLOW));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
          return common::errno_error("fstat", item.source.string(), errno);
        if (!S_ISREG(st.st_mode))
          return fail(Errc::InvalidInput, "layer entry '" + path + "': source " +
                                              item.source.string() + " is not a regular file");
        size = st.st_size;
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(),
                               clean_mode(item.mode.value_or((st.st_mode & 0111) ? 0755 : 0644)));
        archive_entry_set_size(e.get(), size);
        break;
      }
    }
    if (archive_write_header(a_, e.get()) != ARCHIVE_OK)
      return internal::archive_error(a_, "archive_write_header(" + path + ")");
    if (!fd.valid()) return ok();
    int64_t copied = 0;
    for (;;) {
      ENVB_ASSIGN_OR_RETURN(size_t n, fd.read_some(buffer_, item.source.string()));
      if (n == 0) break;
      copied += static_cast<int64_t>(n);
      if (copied > size) break;
      if (archive_write_data(a_, buffer_.data(), n) < 0)
        return internal::archive_error(a_, "archive_write_data(" + path + ")");
    }
    if (copied != size)
      return fail(Errc::Io, item.source.string() + ": file changed size while being read (" +
                                std::to_string(size) + " -> " + std::to_string(copied) + " bytes)");
    return ok();
  }

 private:
  archive* a_;
  const LayerOptions& options_;
  int64_t mtime_;
  std::vector<std::byte> buffer_;
};

/// Hands the tar stream to its consumers (the diff_id hasher and the compressor), each on its own
/// thread, so that reading files, hashing and compressing overlap. Every consumer gets every byte,
/// in order and in the same pieces whatever the timing, so the output does not depend on
/// scheduling. Memory is bounded by a fixed pool of chunks: the writer waits while all are in
/// flight, whatever the layer size.
class TeeStage final : public common::ByteSink {
 public:
  explicit TeeStage(std::vector<common::ByteSink*> consumers)
      : consumers_(std::move(consumers)), queues_(consumers_.size()) {
    for (size_t i = 0; i < kChunks; ++i) free_.push_back(i);
    threads_.reserve(consumers_.size());
    for (size_t i = 0; i < consumers_.size(); ++i) threads_.emplace_back([this, i] { run(i); });
  }
  TeeStage(const TeeStage&) = delete;
  TeeStage& operator=(const TeeStage&) = delete;
  /// Without close(), the consumers drop what is queued and stop (they are not closed).
  ~TeeStage() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    join();
  }

  Result<void> write(std::span<const std::byte> data) override {
    while (!data.empty()) {
      if (!current_) ENVB_TRY(acquire());
      Chunk& c = chunks_[*current_];
      size_t n = std::min(data.size(), kChunkSize - c.used);
      std::memcpy(c.bytes.get() + c.used, data.data(), n);
      c.used += n;
      size_ += n;
      data = data.subspan(n);
      if (c.used == kChunkSize) ENVB_TRY(publish());
    }
    return ok();
  }

  /// Hands over the last chunk, lets every consumer drain and close on its own thread, and
  /// returns the first error of any of them.
  Result<void> close() override {
    if (closed_) return ok();
    closed_ = true;
    if (current_ && chunks_[*current_].used > 0) ENVB_TRY(publish());
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    changed_.notify_all();
    join();
    if (error_) return *error_;
    return ok();
  }

  /// Bytes written so far.
  [[nodiscard]] uint64_t size() const noexcept { return size_; }

 private:
  static constexpr size_t kChunkSize = 1u << 20;
  static constexpr size_t kChunks = 8;

  struct Chunk {
    std::unique_ptr<std::byte[]> bytes;
    size_t used = 0;
    size_t pending = 0;  // consumers that still have to take it
  };

  Result<void> acquire() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return stop_ || !free_.empty(); });
    if (stop_) return error_ ? *error_ : fail(Errc::Internal, "layer pipeline stopped");
    current_ = free_.back();
    free_.pop_back();
    Chunk& c = chunks_[*current_];
    if (!c.bytes) c.bytes = std::make_unique_for_overwrite<std::byte[]>(kChunkSize);
    c.used = 0;
    return ok();
  }

  Result<void> publish() {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return error_ ? *error_ : fail(Errc::Internal, "layer pipeline stopped");
      chunks_[*current_].pending = consumers_.size();
      for (auto& q : queues_) q.push_back(*current_);
    }
    current_.reset();
    changed_.notify_all();
    return ok();
  }

  void run(size_t i) {
    for (;;) {
      size_t index = 0;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || finished_ || !queues_[i].empty(); });
        if (stop_) return;
        if (queues_[i].empty()) break;  // finished and drained
        index = queues_[i].front();
        queues_[i].pop_front();
      }
      // The chunk is not touched by anyone else until every consumer has given it back.
      const Chunk& c = chunks_[index];
      auto r = consumers_[i]->write(std::span(c.bytes.get(), c.used));
      {
        std::lock_guard lock(mutex_);
        if (!r) return stop(std::move(r).error());
        if (--chunks_[index].pending == 0) free_.push_back(index);
      }
      changed_.notify_all();
    }
    auto r = consumers_[i]->close();
    if (!r) {
      std::lock_guard lock(mutex_);
      stop(std::move(r).error());
    }
  }

  /// With the lock held: keeps the first error and tells everyone to stop.
  void stop(Error error) {
    if (!error_) error_ = std::move(error);
    stop_ = true;
    changed_.notify_all();
  }

  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::vector<common::ByteSink*> consumers_;
  std::array<Chunk, kChunks> chunks_;
  std::optional<size_t> current_;  // the chunk being filled; only the writer touches it
  uint64_t size_ = 0;
  bool closed_ = false;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<size_t> free_;
  std::vector<std::deque<size_t>> queues_;  // per consumer: chunks to take, in order
  bool finished_ = false;                   // the writer is done: drain, then close
  bool stop_ = false;                       // an error, or abandoned: drop everything
  std::optional<Error> error_;
  std::vector<std::thread> threads_;
};

/// Writes the compressed layer into `sink` (closed at the end) and fills in everything but the
/// blob's digest and size, which the caller takes from whatever hashes the sink.
Result<LayerInfo> write_compressed(std::vector<LayerEntry> entries, const LayerOptions& options,
                                   common::ByteSink& sink) {
  ENVB_ASSIGN_OR_RETURN(auto items, plan(std::move(entries)));
  int level = options.level.value_or(default_level(options.compression));
  int64_t mtime = options.mtime.value_or(default_source_date_epoch());

  // tar (this thread) -> tee -> sha256 (diff_id)    (a thread)
  //                          -> compress -> sink    (a thread, plus zstd's workers)
  ENVB_ASSIGN_OR_RETURN(auto compressor, make_compressor(options.compression, level, sink));
  common::HashingSink uncompressed;
  TeeStage tee({&uncompressed, compressor.get()});
  internal::SinkContext ctx{&tee, std::nullopt};
  ENVB_ASSIGN_OR_RETURN(internal::ArchiveWriter a, internal::open_tar_writer(ctx, true));
  LayerTarWriter writer(a.get(), options, mtime);
  for (const auto& [path, item] : items) {
    auto r = writer.add(path, item);
    if (!r) return ctx.error ? *ctx.error : std::move(r).error();
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return ctx.error ? *ctx.error : internal::archive_error(a.get(), "archive_write_close");
  // The writer is unblocked: pad to whole records here, as a blocked writer would have.
  static const std::array<std::byte, kTarRecord> zeros{};
  ENVB_TRY(tee.write(std::span(zeros).first((kTarRecord - tee.size() % kTarRecord) % kTarRecord)));
  ENVB_TRY(tee.close());

  LayerInfo info;
  ENVB_ASSIGN_OR_RETURN(info.diff_id, Digest::from_sha256_hex(uncompressed.hex_digest()));
  info.uncompressed_size = static_cast<int64_t>(uncompressed.size());
  info.descriptor.media_type = std::string(layer_media_type(options.compression));
  return info;
}

}  // namespace

Result<LayerInfo> write_layer_to(std::vector<LayerEntry> entries, const LayerOptions& options,
                                 common::ByteSink& sink) {
  common::HashingSink compressed(&sink);
  ENVB_ASSIGN_OR_RETURN(LayerInfo info, write_compressed(std::move(entries), options, compressed));
  ENVB_ASSIGN_OR_RETURN(info.descriptor.digest, Digest::from_sha256_hex(compressed.hex_digest()));
  info.descriptor.size = static_cast<int64_t>(compressed.size());
  return info;
}

Result<LayerInfo> write_layer(std::vector<LayerEntry> entries, const LayerOptions& options,
                              const BlobStore& store) {
  ENVB_ASSIGN_OR_RETURN(BlobWriter blob, store.writer());
  // The blob writer hashes what it stores: no second pass over the compressed bytes.
  ENVB_ASSIGN_OR_RETURN(LayerInfo info,
                        write_compressed(std::move(entries), options, blob)
                            .context("writing layer into " + store.root().string()));
  ENVB_ASSIGN_OR_RETURN(BlobInfo committed, blob.commit());
  info.descriptor.digest = std::move(committed.digest);
  info.descriptor.size = committed.size;
  return info;
}

Result<std::vector<LayerEntry>> entries_from_tree(const fs::path& dir, const std::string& prefix) {
  std::vector<LayerEntry> out;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return fail(Errc::Io, "opendir(" + dir.string() + "): " + ec.message());
  std::vector<fs::path> paths;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return fail(Errc::Io, "readdir(" + dir.string() + "): " + ec.message());
    paths.push_back(it->path());
  }
  // Sorted so that the first path of a hardlink group is stable whatever the readdir order.
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    std::string rel = join(prefix, p.lexically_relative(dir).generic_string());
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return common::errno_error("lstat", p.string(), errno);
    if (S_ISDIR(st.st_mode)) {
      out.push_back(LayerEntry::directory(rel));
    } else if (S_ISLNK(st.st_mode)) {
      fs::path target = fs::read_symlink(p, ec);
      if (ec) return fail(Errc::Io, "readlink(" + p.string() + "): " + ec.message());
      out.push_back(LayerEntry::symlink(rel, target.string()));
    } else if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1) {
        auto [pos, inserted] = inodes.emplace(std::pair{st.st_dev, st.st_ino}, rel);
        if (!inserted) {
          out.push_back(LayerEntry::hardlink(rel, pos->second));
          continue;
        }
      }
      out.push_back(LayerEntry::file(rel, p));
    } else {
      return fail(Errc::Unsupported, p.string() + ": not a file, directory or symlink");
    }
  }
  return out;
}

}  // namespace envbuild::oci
