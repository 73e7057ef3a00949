#pragma once

// PEP 508 dependency specifications: `name[extra,...] (specifiers | @ url) [; marker]`, as
// written in `pip:` sections, requirements files and wheels' `Requires-Dist`.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/pypi/marker.hpp"
#include "conda/pypi/specifier.hpp"

namespace envbuild::conda::pypi {

/// Longest requirement line accepted (metadata is untrusted; real ones are far shorter).
inline constexpr size_t kMaxRequirementLength = 64 * 1024;

struct Requirement {
  std::string name;                 // as written
  std::vector<std::string> extras;  // normalized, sorted, unique
  SpecifierSet specifier;
  std::string url;  // `name @ url`; empty otherwise
  std::optional<Marker> marker;

  /// Errors (InvalidInput) quote the text and point at the column.
  static Result<Requirement> parse(std::string_view text);
  /// The normalized name (PEP 503).
  [[nodiscard]] std::string key() const;
  /// Normal form: `name[a,b]>=1.0,<2; python_version < "3.11"` (`name @ url ; marker`).
  [[nodiscard]] std::string to_string() const;
  bool operator==(const Requirement&) const = default;
};

}  // namespace envbuild::conda::pypi
