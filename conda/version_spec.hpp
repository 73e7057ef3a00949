#pragma once

// Conda version constraints: `>=1.20,<2|>=2.1`, `1.26.*`, `=1.26`, `~=1.4.5`, `!=1.2.*`, globs.

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/version.hpp"

namespace envbuild::conda {

/// A tree of version predicates joined by `,` (and, binds tighter) and `|` (or), with
/// parentheses. A bare version is exact (`1.2` is `==1.2`), `1.2.*`, `1.2*` and `=1.2` are
/// "starts with", `>=1.2.*` is read as `>=1.2` (as conda does).
///
/// `to_string()` prints the canonical form, which both conda and libsolv's
/// `pool_conda_matchspec` accept: `==1.2`, `!=1.2`, `1.2.*`, `!=1.2.*`, `~=1.2`, `>=1.2`, globs
/// verbatim, `*` for any. `parse(s.to_string()) == s`.
class VersionSpec {
 public:
  enum class Op { Eq, Ne, Lt, Le, Gt, Ge, StartsWith, NotStartsWith, Compatible, Glob };
  struct Predicate {
    Op op = Op::Eq;
    Version version;
    std::string glob;  // Op::Glob only
    bool operator==(const Predicate&) const = default;
  };

  /// Matches every version (`*` or an empty spec).
  VersionSpec() = default;

  /// Parses a spec; whitespace around operators and separators is allowed. Errors point at the
  /// offending character.
  static Result<VersionSpec> parse(std::string_view text);
  static VersionSpec from_predicate(Predicate predicate);

  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] bool matches(const Version& version) const;
  [[nodiscard]] bool is_any() const noexcept { return kind_ == Kind::Any; }
  /// The version when the spec is a single `==v`.
  [[nodiscard]] const Version* exact() const noexcept;

  bool operator==(const VersionSpec&) const = default;

 private:
  enum class Kind { Any, Leaf, And, Or };
  friend class VersionSpecParser;
  std::string to_string(bool inside_and) const;

  Kind kind_ = Kind::Any;
  Predicate predicate_;
  std::vector<VersionSpec> children_;
};

}  // namespace envbuild::conda
