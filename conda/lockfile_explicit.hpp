#pragma once

// `@EXPLICIT` spec files (CEP 23): one package URL per line, optional `#<md5>` or
// `#sha256:<hex>`, no solve.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

struct ExplicitEntry {
  std::string url;     // without the hash fragment
  std::string md5;     // lowercase hex or empty
  std::string sha256;  // lowercase hex or empty
  /// Comment and blank lines just above this entry, verbatim (kept so that writing is
  /// byte-identical).
  std::vector<std::string> comments_before;

  /// The file name: last URL segment (`numpy-1.26.4-py311h_0.conda`).
  [[nodiscard]] std::string_view file_name() const;
  /// The subdir: the segment before the file name (`linux-64`, `noarch`).
  [[nodiscard]] std::string_view subdir() const;
  /// The channel URL: everything before the subdir.
  [[nodiscard]] std::string_view channel() const;

  bool operator==(const ExplicitEntry&) const = default;
};

struct ExplicitFile {
  std::vector<std::string> header;  // lines before `@EXPLICIT`, verbatim
  std::vector<ExplicitEntry> entries;
  std::vector<std::string> trailer;  // comment/blank lines after the last entry
  bool final_newline = true;

  /// From a `# platform: linux-64` header line, if any.
  [[nodiscard]] std::optional<std::string> platform() const;

  bool operator==(const ExplicitFile&) const = default;
};

/// Parses an explicit file. Errors (InvalidInput) name `file:line:col`: a missing `@EXPLICIT`,
/// a line that is not a `.conda`/`.tar.bz2` URL, a malformed hash.
Result<ExplicitFile> parse_explicit_file(std::string_view text, std::string_view file);
/// Writes header, `@EXPLICIT`, entries (`url#md5` or `url#sha256:hex`) and trailer.
std::string to_string(const ExplicitFile& file);

}  // namespace envbuild::conda
