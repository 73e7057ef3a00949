#include "common/io.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>
#include "common/root_dir.hpp"

namespace envbuild::common {

Result<std::unique_ptr<FileSource>> FileSource::open(const std::string& path) {
  // Packages, layers and blobs: a FIFO or device under a blob's name must not hang or feed us.
  ENVB_ASSIGN_OR_RETURN(Fd fd, open_regular_file(path));
  return std::make_unique<FileSource>(std::move(fd), path);
}

Result<void> FdSink::write(std::span<const std::byte> data) {
  Fd borrowed(fd_);
  auto result = borrowed.write_all(data, name_);
  borrowed.release();
  return result;
}

Result<size_t> StringSource::read(std::span<std::byte> buffer) {
  size_t n = std::min(buffer.size(), data_.size() - pos_);
  std::memcpy(buffer.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Result<void> HashingSink::write(std::span<const std::byte> data) {
  hasher_.update(data);
  size_ += data.size();
  return next_ ? next_->write(data) : ok();
}

Result<uint64_t> copy_stream(ByteSource& source, ByteSink& sink) {
  constexpr size_t kSize = 1 << 20;
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(kSize);  // not zero-filled
  uint64_t total = 0;
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, source.read(std::span(buffer.get(), kSize)));
    if (n == 0) return total;
    ENVB_TRY(sink.write(std::span(buffer.get(), n)));
    total += n;
  }
}

}  // namespace envbuild::common
