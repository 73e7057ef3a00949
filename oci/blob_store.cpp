#include "oci/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/hash.hpp"

namespace envbuild::oci {

namespace fs = std::filesystem;

namespace {

constexpr size_t kBufferSize = 1u << 20;

class VerifyingSource final : public common::ByteSource {
 public:
  VerifyingSource(std::unique_ptr<common::ByteSource> inner, Digest digest,
                  std::optional<int64_t> size, std::string what)
      : inner_(std::move(inner)), digest_(std::move(digest)), size_(size), what_(std::move(what)) {}

  Result<size_t> read(std::span<std::byte> buffer) override {
    if (done_) return size_t{0};
    if (size_) {
      // Ask for one byte past the declared size so that an oversized blob is caught.
      uint64_t left = static_cast<uint64_t>(*size_) - count_ + 1;
      if (buffer.size() > left) buffer = buffer.first(static_cast<size_t>(left));
    }
    ENVB_ASSIGN_OR_RETURN(size_t n, inner_->read(buffer));
    count_ += n;
    if (size_ && count_ > static_cast<uint64_t>(*size_))
      return fail(Errc::Integrity,
                  what_ + ": more than the expected " + std::to_string(*size_) + " bytes");
    if (n > 0) {
      hasher_.update(buffer.first(n));
      return n;
    }
    done_ = true;
    if (size_ && count_ != static_cast<uint64_t>(*size_))
      return fail(Errc::Integrity, what_ + ": size mismatch: expected " + std::to_string(*size_) +
                                       " bytes, got " + std::to_string(count_));
    std::string got = hasher_.hex_digest();
    if (got != digest_.hex())
      return fail(Errc::Integrity, what_ + ": digest mismatch: expected " + digest_.to_string() +
                                       ", got sha256:" + got);
    return size_t{0};
  }

 private:
  std::unique_ptr<common::ByteSource> inner_;
  Digest digest_;
  std::optional<int64_t> size_;
  std::string what_;
  common::Hasher hasher_;
  uint64_t count_ = 0;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<common::ByteSource> verifying_source(std::unique_ptr<common::ByteSource> inner,
                                                     Digest digest, std::optional<int64_t> size,
                                                     std::string what) {
  return std::make_unique<VerifyingSource>(std::move(inner), std::move(digest), size,
                                           std::move(what));
}

struct BlobWriter::Impl {
  fs::path dir;
  fs::path temp;  // a unique name in `dir`: rename/link within one file system
  common::Fd fd;
  common::Hasher hasher;
  std::vector<std::byte> buffer;
  int64_t size = 0;

  ~Impl() {
    if (!temp.empty()) ::unlink(temp.c_str());
  }
  Result<void> flush() {
    if (buffer.empty()) return ok();
    ENVB_TRY(fd.write_all(buffer, temp.string()));
    buffer.clear();
    return ok();
  }
};

BlobWriter::BlobWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;
BlobWriter& BlobWriter::operator=(BlobWriter&&) noexcept = default;
BlobWriter::~BlobWriter() = default;

Result<void> BlobWriter::write(std::span<const std::byte> data) {
  ENVB_CHECK(impl_ != nullptr);
  impl_->hasher.update(data);
  impl_->size += static_cast<int64_t>(data.size());
  if (impl_->buffer.size() + data.size() > kBufferSize) ENVB_TRY(impl_->flush());
  if (data.size() >= kBufferSize) return impl_->fd.write_all(data, impl_->temp.string());
  impl_->buffer.insert(impl_->buffer.end(), data.begin(), data.end());
  return ok();
}

Result<BlobInfo> BlobWriter::commit(const std::optional<Digest>& expected) {
  ENVB_CHECK(impl_ != nullptr);
  std::unique_ptr<Impl> impl = std::move(impl_);  // the temp file goes away on every path
  ENVB_TRY(impl->flush());
  ENVB_ASSIGN_OR_RETURN(Digest digest, Digest::from_sha256_hex(impl->hasher.hex_digest()));
  if (expected && *expected != digest)
    return fail(Errc::Integrity, "writing blob " + expected->to_string() +
                                     ": digest mismatch: content hashes to " + digest.to_string());
  if (::fsync(impl->fd.get()) != 0) return common::errno_error("fsync", impl->temp.string(), errno);
  impl->fd.reset();
  // link(2) rather than rename(2): an existing blob with this name has this content by
  // construction, so a concurrent writer that got there first wins and we keep its file.
  fs::path final_path = impl->dir / digest.hex();
  if (::link(impl->temp.c_str(), final_path.c_str()) != 0 && errno != EEXIST)
    return common::errno_error("link", final_path.string(), errno);
  ENVB_TRY(common::sync_dir(impl->dir));
  return BlobInfo{std::move(digest), impl->size};
}

fs::path BlobStore::path_of(const Digest& digest) const {
  return root_ / "blobs" / "sha256" / digest.hex();
}

bool BlobStore::contains(const Digest& digest, std::optional<int64_t> size) const {
  struct stat st {};
  if (::stat(path_of(digest).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return !size || st.st_size == *size;
}

Result<BlobWriter> BlobStore::writer() const {
  fs::path dir = root_ / "blobs" / "sha256";
  ENVB_TRY(common::make_dirs(dir));
  auto impl = std::make_unique<BlobWriter::Impl>();
  impl->dir = dir;
  fs::path temp = common::temp_sibling(dir / "incoming");
  ENVB_ASSIGN_OR_RETURN(impl->fd,
                        common::Fd::open(temp.string(), O_WRONLY | O_CREAT | O_EXCL, 0644));
  impl->temp = std::move(temp);
  // open() applies the umask; blob modes must not depend on the umask.
  if (::fchmod(impl->fd.get(), 0644) != 0)
    return common::errno_error("fchmod", impl->temp.string(), errno);
  impl->buffer.reserve(kBufferSize);
  return BlobWriter(std::move(impl));
}

Result<BlobInfo> BlobStore::put(std::string_view bytes) const {
  Digest digest = Digest::of(bytes);
  if (contains(digest, static_cast<int64_t>(bytes.size())))
    return BlobInfo{digest, static_cast<int64_t>(bytes.size())};
  ENVB_ASSIGN_OR_RETURN(BlobWriter w, writer());
  ENVB_TRY(w.write(std::as_bytes(std::span(bytes))));
  return w.commit(digest);
}

Result<Descriptor> BlobStore::put_document(std::string_view bytes,
                                           std::string_view media_type) const {
  ENVB_ASSIGN_OR_RETURN(BlobInfo info, put(bytes));
  Descriptor d;
  d.media_type = std::string(media_type);
  d.digest = info.digest;
  d.size = info.size;
  return d;
}

Result<BlobInfo> BlobStore::put_stream(common::ByteSource& source,
                                       const std::optional<Descriptor>& expected) const {
  if (expected && contains(expected->digest, expected->size))
    return BlobInfo{expected->digest, expected->size};
  ENVB_ASSIGN_OR_RETURN(BlobWriter w, writer());
  ENVB_TRY(common::copy_stream(source, w));
  if (expected) {
    // Checked by commit() too, but a size mismatch deserves both numbers.
    ENVB_ASSIGN_OR_RETURN(BlobInfo info, w.commit(expected->digest));
    if (info.size != expected->size)
      return fail(Errc::Integrity, "blob " + expected->digest.to_string() + ": expected " +
                                       std::to_string(expected->size) + " bytes, got " +
                                       std::to_string(info.size));
    return info;
  }
  return w.commit();
}

Result<std::unique_ptr<common::ByteSource>> BlobStore::open(const Digest& digest, Verify verify,
                                                            std::optional<int64_t> size) const {
  std::string path = path_of(digest).string();
  auto file = common::FileSource::open(path);
  if (!file) return std::move(file).error().with_context("opening blob " + digest.short_string());
  std::unique_ptr<common::ByteSource> source = std::move(*file);
  if (verify == Verify::Yes) return verifying_source(std::move(source), digest, size, path);
  return source;
}

Result<std::string> BlobStore::read_small(const Digest& digest, size_t max_bytes) const {
  std::string path = path_of(digest).string();
  auto text = common::read_file(path, max_bytes);
  if (!text) return std::move(text).error().with_context("reading blob " + digest.short_string());
  if (Digest::of(*text) != digest)
    return fail(Errc::Integrity,
                path + ": digest mismatch: content hashes to " + Digest::of(*text).to_string());
  return text;
}

Result<void> copy_blob(const Descriptor& d, const std::optional<std::filesystem::path>& local,
                       const BlobOpen& open, const BlobStore& to) {
  if (to.contains(d.digest, d.size)) return ok();
  const std::filesystem::path dest = to.path_of(d.digest);
  ENVB_TRY(common::make_dirs(dest.parent_path()));
  if (local && ::link(local->c_str(), dest.c_str()) == 0) return ok();
  ENVB_ASSIGN_OR_RETURN(auto source, open());
  ENVB_ASSIGN_OR_RETURN(BlobInfo info, to.put_stream(*source, d)
                                           .context("copying blob " + d.digest.short_string()));
  (void)info;
  return ok();
}

Result<void> copy_blob(const BlobStore& from, const Descriptor& d, const BlobStore& to) {
  return copy_blob(d, from.path_of(d.digest), [&] { return from.open(d.digest); }, to);
}

}  // namespace envbuild::oci
