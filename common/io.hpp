#pragma once

// Byte streams: small interfaces that decorators stack on (hashing, compression, limits), so
// large data (layers, packages) is streamed through fixed buffers and never held in memory.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/result.hpp"

namespace envbuild::common {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Reads up to buffer.size() bytes; returns 0 only at the end.
  virtual Result<size_t> read(std::span<std::byte> buffer) = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Result<void> write(std::span<const std::byte> data) = 0;
  /// Flushes whatever a decorator still buffers (compressor trailers). Idempotent.
  virtual Result<void> close() { return ok(); }
};

/// Reads a file descriptor it owns.
class FileSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<FileSource>> open(const std::string& path);
  explicit FileSource(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  Result<size_t> read(std::span<std::byte> buffer) override { return fd_.read_some(buffer, name_); }

 private:
  Fd fd_;
  std::string name_;
};

/// Writes to a descriptor it does not own (an AtomicFile's, stdout).
class FdSink final : public ByteSink {
 public:
  FdSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  Result<void> write(std::span<const std::byte> data) override;

 private:
  int fd_;
  std::string name_;
};

/// Appends to a string; for tests and small metadata only.
class StringSink final : public ByteSink {
 public:
  Result<void> write(std::span<const std::byte> data) override {
    out.append(reinterpret_cast<const char*>(data.data()), data.size());
    return ok();
  }
  std::string out;
};

class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  Result<size_t> read(std::span<std::byte> buffer) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

/// Hashes (sha256) and counts what passes through to an optional next sink.
class HashingSink final : public ByteSink {
 public:
  explicit HashingSink(ByteSink* next = nullptr) : next_(next) {}
  Result<void> write(std::span<const std::byte> data) override;
  Result<void> close() override { return next_ ? next_->close() : ok(); }
  std::string hex_digest() { return hasher_.hex_digest(); }
  [[nodiscard]] uint64_t size() const noexcept { return size_; }

 private:
  ByteSink* next_;
  Hasher hasher_;
  uint64_t size_ = 0;
};

/// Copies a source to a sink through a 1 MiB buffer; returns the byte count.
Result<uint64_t> copy_stream(ByteSource& source, ByteSink& sink);

}  // namespace envbuild::common
