#pragma once

// sqfs_file_t implementations: libsquashfs reads and writes an image only through this table of
// function pointers, so the bounds and the descriptor handling are ours.

#include <cstdint>
#include <span>

#include "squashfs/internal/libsquashfs.hpp"

namespace envbuild::squashfs::internal {

/// Reads (and, when writable, writes) the image in `fd`, which the caller keeps open for the
/// object's lifetime. A read is refused unless it lies within the first `size` bytes (the size
/// when the image was opened: a file that grows later is not read further), so a table offset
/// in a hostile superblock reads nothing outside the image.
Result<Object<sqfs_file_t>> fd_file(int fd, uint64_t size, bool writable);

/// A read-only image held in memory (tests, the fuzzer); `bytes` must outlive the object.
Result<Object<sqfs_file_t>> memory_file(std::span<const std::byte> bytes);

}  // namespace envbuild::squashfs::internal
