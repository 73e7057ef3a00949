#pragma once

// PEP 440 version specifiers (`>=1.2,!=1.3.*,<2`) as pip's `packaging` evaluates them,
// including its pre-release rules (a specifier that names a pre-release lets pre-releases in;
// `filter` falls back to pre-releases when nothing else matches).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "conda/pypi/version.hpp"

namespace envbuild::conda::pypi {

enum class Operator { Compatible, Equal, NotEqual, LessEqual, GreaterEqual, Less, Greater, Arbitrary };
std::string_view to_string(Operator op);

/// One clause: an operator and a version (`==1.4.*` has wildcard set; `===foo` keeps its text).
class Specifier {
 public:
  /// `>=1.0`, `== 1.4.*`, `~=2.2`, `===foobar`. Errors quote the text and point at the spot.
  static Result<Specifier> parse(std::string_view text);

  [[nodiscard]] Operator op() const noexcept { return op_; }
  [[nodiscard]] const Version& version() const noexcept { return version_; }
  [[nodiscard]] bool wildcard() const noexcept { return wildcard_; }
  /// Normal form: operator and normalized version, no spaces (`>=1.0`, `==1.4.*`).
  [[nodiscard]] std::string to_string() const;
  /// Whether this clause lets pre-releases in (it names one with ==, ===, >=, <=, ~=).
  [[nodiscard]] bool allows_prereleases() const noexcept;
  /// Whether `v` satisfies the clause (pre-releases are not filtered here).
  [[nodiscard]] bool contains(const Version& v) const;
  /// `===` compares text: the candidate's text as given.
  [[nodiscard]] bool contains_text(std::string_view version_text) const;

  bool operator==(const Specifier& other) const { return to_string() == other.to_string(); }

 private:
  Operator op_ = Operator::GreaterEqual;
  Version version_;
  bool wildcard_ = false;
  std::string arbitrary_;  // ===: the text, as written
};

enum class Prereleases : uint8_t { Default, Allow, Deny };

/// A comma-separated set of clauses; empty matches every final release.
class SpecifierSet {
 public:
  SpecifierSet() = default;
  /// "" (any), ">=1.0,<2", ">= 1.0 , < 2". Errors point into the whole text.
  static Result<SpecifierSet> parse(std::string_view text);

  [[nodiscard]] const std::vector<Specifier>& specifiers() const noexcept { return specifiers_; }
  [[nodiscard]] bool empty() const noexcept { return specifiers_.empty(); }
  /// Clauses sorted by their text, joined with ",": what packaging's str() prints.
  [[nodiscard]] std::string to_string() const;
  /// Any clause allows pre-releases.
  [[nodiscard]] bool allows_prereleases() const noexcept;
  /// Every clause contains `v`; a pre-release only when allowed (Default: when a clause
  /// names one).
  [[nodiscard]] bool contains(const Version& v, Prereleases pre = Prereleases::Default) const;
  /// The clauses of both.
  void add(const SpecifierSet& other);

  bool operator==(const SpecifierSet& other) const { return to_string() == other.to_string(); }

 private:
  std::vector<Specifier> specifiers_;
};

/// packaging's SpecifierSet.filter: the versions `set` contains, in order; pre-releases only
/// when allowed, or (with Default) when nothing else matched. Returns indexes into `versions`.
std::vector<size_t> filter_versions(const SpecifierSet& set, const std::vector<Version>& versions,
                                    Prereleases pre = Prereleases::Default);

}  // namespace envbuild::conda::pypi
