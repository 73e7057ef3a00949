#include "squashfs/internal/file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace envbuild::squashfs::internal {

namespace {

// The sqfs_file_t must be the first member: libsquashfs passes the base pointer back to us.
struct FdFile {
  sqfs_file_t base;
  int fd;
  uint64_t size;
};

struct MemoryFile {
  sqfs_file_t base;
  std::span<const std::byte> bytes;
};

bool out_of_bounds(uint64_t offset, size_t size, uint64_t limit) {
  return offset > limit || size > limit - offset;
}

int fd_read_at(sqfs_file_t* file, sqfs_u64 offset, void* buffer, size_t size) {
  auto* self = reinterpret_cast<FdFile*>(file);
  if (out_of_bounds(offset, size, self->size)) return SQFS_ERROR_OUT_OF_BOUNDS;
  auto* out = static_cast<char*>(buffer);
  while (size > 0) {
    ssize_t n = ::pread(self->fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    // A short file (truncated while we read it) is as bad as an I/O error.
    if (n <= 0) return SQFS_ERROR_IO;
    out += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return 0;
}

int fd_write_at(sqfs_file_t* file, sqfs_u64 offset, const void* buffer, size_t size) {
  auto* self = reinterpret_cast<FdFile*>(file);
  const auto* in = static_cast<const char*>(buffer);
  uint64_t end = offset + size;
  while (size > 0) {
    ssize_t n = ::pwrite(self->fd, in, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return SQFS_ERROR_IO;
    in += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  if (end > self->size) self->size = end;
  return 0;
}

int read_only_write_at(sqfs_file_t*, sqfs_u64, const void*, size_t) {
  return SQFS_ERROR_UNSUPPORTED;
}

sqfs_u64 fd_get_size(const sqfs_file_t* file) {
  return reinterpret_cast<const FdFile*>(file)->size;
}

int fd_truncate(sqfs_file_t* file, sqfs_u64 size) {
  auto* self = reinterpret_cast<FdFile*>(file);
  if (::ftruncate(self->fd, static_cast<off_t>(size)) != 0) return SQFS_ERROR_IO;
  self->size = size;
  return 0;
}

int read_only_truncate(sqfs_file_t*, sqfs_u64) {
  return SQFS_ERROR_UNSUPPORTED;
}

void fd_destroy(sqfs_object_t* object) {
  delete reinterpret_cast<FdFile*>(object);
}

int memory_read_at(sqfs_file_t* file, sqfs_u64 offset, void* buffer, size_t size) {
  auto* self = reinterpret_cast<MemoryFile*>(file);
  if (out_of_bounds(offset, size, self->bytes.size())) return SQFS_ERROR_OUT_OF_BOUNDS;
  if (size > 0) std::memcpy(buffer, self->bytes.data() + offset, size);
  return 0;
}

sqfs_u64 memory_get_size(const sqfs_file_t* file) {
  return reinterpret_cast<const MemoryFile*>(file)->bytes.size();
}

void memory_destroy(sqfs_object_t* object) {
  delete reinterpret_cast<MemoryFile*>(object);
}

}  // namespace

Result<Object<sqfs_file_t>> fd_file(int fd, uint64_t size, bool writable) {
  auto* file = new (std::nothrow) FdFile{};
  if (file == nullptr) return sqfs_error("allocating", "an image file", SQFS_ERROR_ALLOC);
  file->base.base.destroy = fd_destroy;
  file->base.read_at = fd_read_at;
  file->base.write_at = writable ? fd_write_at : read_only_write_at;
  file->base.get_size = fd_get_size;
  file->base.truncate = writable ? fd_truncate : read_only_truncate;
  file->fd = fd;
  file->size = size;
  return Object<sqfs_file_t>(&file->base);
}

Result<Object<sqfs_file_t>> memory_file(std::span<const std::byte> bytes) {
  auto* file = new (std::nothrow) MemoryFile{};
  if (file == nullptr) return sqfs_error("allocating", "an image in memory", SQFS_ERROR_ALLOC);
  file->base.base.destroy = memory_destroy;
  file->base.read_at = memory_read_at;
  file->base.write_at = read_only_write_at;
  file->base.get_size = memory_get_size;
  file->base.truncate = read_only_truncate;
  file->bytes = bytes;
  return Object<sqfs_file_t>(&file->base);
}

}  // namespace envbuild::squashfs::internal
