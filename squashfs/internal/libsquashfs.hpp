#pragma once

// Thin owners for squashfs-tools-ng's libsquashfs (Debian 12: libsquashfs-dev 1.2.0). This header
// and the .cpp files of squashfs/ are the only places that include <sqfs/...>.
//
// Every libsquashfs object starts with a sqfs_object_t whose destroy() frees it; inodes, directory
// entries and paths are plain allocations released with sqfs_free(). Functions return 0 or a
// negative SQFS_ERROR_* code.

#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir.h>
#include <sqfs/dir_reader.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_reader.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::squashfs::internal {

struct ObjectDeleter {
  void operator()(void* object) const noexcept { sqfs_destroy(object); }
};
/// Owns any libsquashfs object (compressor, writers, readers, tables).
template <typename T>
using Object = std::unique_ptr<T, ObjectDeleter>;

struct FreeDeleter {
  void operator()(void* p) const noexcept { sqfs_free(p); }
};
using Inode = std::unique_ptr<sqfs_inode_generic_t, FreeDeleter>;
using DirEntry = std::unique_ptr<sqfs_dir_entry_t, FreeDeleter>;

/// The name of a SQFS_ERROR_* code ("corrupted", "out of bounds").
std::string_view error_name(int code);

/// `call` failed with `code`: an Error naming the call, the object and libsquashfs's reason.
/// Corruption and bounds errors are Integrity (a damaged or hostile image), allocation failures
/// Internal, the rest Io.
Error sqfs_error(std::string_view call, std::string_view what, int code);

/// Owners built with a factory (so that a NULL from the library becomes an Error).
template <typename T>
Result<Object<T>> adopt(T* object, std::string_view call, std::string_view what) {
  if (object == nullptr) return sqfs_error(call, what, SQFS_ERROR_ALLOC);
  return Object<T>(object);
}

}  // namespace envbuild::squashfs::internal
