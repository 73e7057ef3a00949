#pragma once

// Thin RAII layer over libarchive's read side. Only conda/*.cpp include this header, so public
// headers never pull in <archive.h>.

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::conda::internal {

struct ArchiveReadDeleter {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};
/// Owns an `archive*` opened for reading.
using ArchiveReader = std::unique_ptr<archive, ArchiveReadDeleter>;

/// "archive_read_next_header(numpy.conda): Truncated input" from libarchive's own text.
inline Error archive_error(std::string_view call, std::string_view object, archive* a,
                           Errc code = Errc::Integrity) {
  const char* text = a ? archive_error_string(a) : nullptr;
  std::string message(call);
  message += "(";
  message += object;
  message += "): ";
  message += text ? text : "unknown libarchive error";
  return Error(code, std::move(message));
}

}  // namespace envbuild::conda::internal
