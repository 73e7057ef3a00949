#pragma once

// Project pages of Python package indexes: the Simple Repository API in its JSON form
// (PEP 691, application/vnd.pypi.simple.v1+json) and its HTML form (PEP 503), and find-links
// pages (any HTML page of links to distribution files). Pages come from untrusted servers: the
// parsers are hand-written (no std::regex), bounded in size and depth, and every URL is resolved
// against the page's own URL.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder::pypi {

/// One distribution file a page lists.
struct DistributionFile {
  std::string filename;  // the last URL path segment, percent-decoded
  std::string url;       // absolute, no fragment; credentials redacted (user:***@)
  std::string sha256;    // lowercase hex; empty when the page gives none
  std::string requires_python;  // data-requires-python / requires-python, as given
  bool yanked = false;
  /// PEP 658/714: the core metadata is served at url + ".metadata" (its sha256 when given).
  bool has_metadata = false;
  std::string metadata_sha256;
  bool operator==(const DistributionFile&) const = default;
};

/// Largest page accepted (PyPI's biggest project pages are a few MiB).
inline constexpr size_t kMaxPageBytes = size_t{64} << 20;

/// `page_url` is where the page came from (relative links resolve against it; a `<base href>`
/// in HTML wins). Errors are InvalidInput naming the page.
Result<std::vector<DistributionFile>> parse_simple_json(std::string_view body,
                                                        std::string_view page_url);
Result<std::vector<DistributionFile>> parse_simple_html(std::string_view body,
                                                        std::string_view page_url);

/// The percent-decoded last path segment of `url` (query and fragment ignored): a file's name.
std::string filename_of(std::string_view url);

/// "%2B" -> "+" (invalid escapes are kept as written).
std::string percent_decode(std::string_view text);

}  // namespace envbuild::builder::pypi
