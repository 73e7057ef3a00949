#pragma once

// A read-only memory mapping of a whole file: lets large binaries be scanned without reading
// them into memory.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include "common/fs.hpp"

namespace envbuild::conda::internal {

class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path, int flags = O_RDONLY) {
    ENVB_ASSIGN_OR_RETURN(common::Fd fd, common::Fd::open(path, flags | O_NOFOLLOW));
    return map(std::move(fd), path);
  }
  /// Maps the regular file open on `fd` (`shown` names it in errors).
  static Result<MappedFile> map(common::Fd fd, const std::string& shown) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return common::errno_error("fstat", shown, errno);
    if (!S_ISREG(st.st_mode)) return fail(Errc::InvalidInput, shown + " is not a regular file");
    MappedFile file(std::move(fd), static_cast<size_t>(st.st_size), st.st_mode & 07777);
    file.stat_ = st;
    if (file.size_ > 0) {
      void* data = ::mmap(nullptr, file.size_, PROT_READ, MAP_SHARED, file.fd_.get(), 0);
      if (data == MAP_FAILED) return common::errno_error("mmap", shown, errno);
      file.data_ = static_cast<const char*>(data);
    }
    return file;
  }
  MappedFile(MappedFile&& other) noexcept
      : fd_(std::move(other.fd_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        mode_(other.mode_),
        stat_(other.stat_) {}
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }

  [[nodiscard]] std::string_view view() const noexcept { return {data_ ? data_ : "", size_}; }
  [[nodiscard]] const common::Fd& fd() const noexcept { return fd_; }
  [[nodiscard]] unsigned mode() const noexcept { return mode_; }
  /// fstat(2) of the file when it was mapped.
  [[nodiscard]] const struct stat& stat() const noexcept { return stat_; }

 private:
  MappedFile(common::Fd fd, size_t size, unsigned mode)
      : fd_(std::move(fd)), size_(size), mode_(mode) {}
  common::Fd fd_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  unsigned mode_ = 0;
  struct stat stat_ {};
};

}  // namespace envbuild::conda::internal
