#include "squashfs/internal/libsquashfs.hpp"

namespace envbuild::squashfs::internal {

namespace {
// libsquashfs 1.2 spells these two SFQS_ERROR_*; by value, so a release that fixes the name
// builds too.
constexpr int kSuperMagic = -9;
constexpr int kSuperVersion = -10;
}  // namespace

std::string_view error_name(int code) {
  switch (code) {
    case SQFS_ERROR_ALLOC:
      return "out of memory";
    case SQFS_ERROR_IO:
      return "I/O error";
    case SQFS_ERROR_COMPRESSOR:
      return "compressor error (corrupt compressed data?)";
    case SQFS_ERROR_INTERNAL:
      return "internal error";
    case SQFS_ERROR_CORRUPTED:
      return "corrupted data";
    case SQFS_ERROR_UNSUPPORTED:
      return "unsupported feature";
    case SQFS_ERROR_OVERFLOW:
      return "numeric overflow";
    case SQFS_ERROR_OUT_OF_BOUNDS:
      return "location out of bounds";
    case kSuperMagic:
      return "not a SquashFS image (wrong magic)";
    case kSuperVersion:
      return "unsupported SquashFS version (4.0 only)";
    case SQFS_ERROR_SUPER_BLOCK_SIZE:
      return "invalid block size";
    case SQFS_ERROR_NOT_DIR:
      return "not a directory";
    case SQFS_ERROR_NO_ENTRY:
      return "no such entry";
    case SQFS_ERROR_LINK_LOOP:
      return "link loop";
    case SQFS_ERROR_NOT_FILE:
      return "not a regular file";
    case SQFS_ERROR_ARG_INVALID:
      return "invalid argument";
    case SQFS_ERROR_SEQUENCE:
      return "calls out of sequence";
    default:
      return "unknown error";
  }
}

Error sqfs_error(std::string_view call, std::string_view what, int code) {
  Errc errc = Errc::Io;
  switch (code) {
    case SQFS_ERROR_COMPRESSOR:
    case SQFS_ERROR_CORRUPTED:
    case SQFS_ERROR_OVERFLOW:
    case SQFS_ERROR_OUT_OF_BOUNDS:
    case kSuperMagic:
    case SQFS_ERROR_SUPER_BLOCK_SIZE:
    case SQFS_ERROR_LINK_LOOP:
    case SQFS_ERROR_NOT_DIR:
    case SQFS_ERROR_NOT_FILE:
      errc = Errc::Integrity;
      break;
    case SQFS_ERROR_UNSUPPORTED:
    case kSuperVersion:
      errc = Errc::Unsupported;
      break;
    case SQFS_ERROR_ALLOC:
    case SQFS_ERROR_INTERNAL:
    case SQFS_ERROR_SEQUENCE:
    case SQFS_ERROR_ARG_INVALID:
      errc = Errc::Internal;
      break;
    default:
      break;
  }
  return Error(errc,
               std::string(call) + "(" + std::string(what) + "): " + std::string(error_name(code)));
}

}  // namespace envbuild::squashfs::internal
