#pragma once

// PEP 508 environment markers (`python_version < "3.11" and sys_platform == "linux"`), parsed by
// hand (no std::regex, bounded depth and length) and evaluated the way pip's `packaging` 21.3
// does: a comparison whose right side parses as a version specifier is a version comparison,
// anything else compares strings; `and` binds tighter than `or`.
//
// Markers are evaluated for the *target* environment (the solved python, the target platform),
// never for the machine envbuild runs on: see MarkerEnvironment.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda::pypi {

/// The values markers are evaluated against (PEP 508 "Environment Markers"). Values a build
/// machine cannot know for a target it is not (platform_release, platform_version) stay empty.
struct MarkerEnvironment {
  std::string implementation_name = "cpython";
  std::string implementation_version;  // "3.11.9"
  std::string os_name = "posix";
  std::string platform_machine = "x86_64";
  std::string platform_python_implementation = "CPython";
  std::string platform_release;
  std::string platform_system = "Linux";
  std::string platform_version;
  std::string python_full_version;  // "3.11.9"
  std::string python_version;       // "3.11"
  std::string sys_platform = "linux";
  /// The value of a variable by its PEP 508 name (or a legacy dotted alias such as
  /// `os.name`); nullptr for an unknown name. `extra` is not here: it is per evaluation.
  [[nodiscard]] const std::string* find(std::string_view variable) const;
};

/// Limits on marker text from metadata (untrusted): length and nesting of parentheses.
inline constexpr size_t kMaxMarkerLength = 16 * 1024;
inline constexpr size_t kMaxMarkerDepth = 32;

class Marker {
 public:
  /// One node of the expression. Comparisons have lhs/op/rhs, each side a variable name or a
  /// quoted string; And/Or have children.
  struct Node {
    enum class Kind { Compare, And, Or };
    Kind kind = Kind::Compare;
    std::string lhs, op, rhs;
    bool lhs_is_variable = false, rhs_is_variable = false;
    std::vector<Node> children;
    bool operator==(const Node&) const = default;
  };

  /// Errors (InvalidInput) quote the marker and point at the column.
  static Result<Marker> parse(std::string_view text);

  /// `extra` is the extra being asked for ("" for none); compared after name normalization.
  /// An undefined comparison (`os_name ~= "x"`) is an InvalidInput error.
  [[nodiscard]] Result<bool> evaluate(const MarkerEnvironment& env,
                                      std::string_view extra = {}) const;
  /// True when any of `extras` (or, without any, the empty extra) makes the marker true.
  [[nodiscard]] Result<bool> evaluate_any(const MarkerEnvironment& env,
                                          const std::vector<std::string>& extras) const;
  /// Whether the marker mentions `extra` at all.
  [[nodiscard]] bool mentions_extra() const;
  /// Normal form: `python_version >= "3.8" and (os_name == "posix" or extra == "x")`.
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] const Node& root() const noexcept { return root_; }

  bool operator==(const Marker&) const = default;

 private:
  Node root_;
};

}  // namespace envbuild::conda::pypi
