#pragma once

// Conda package versions, ordered as CEP 33 says (conda/ceps cep-0033; landscape.md 4.6).

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

/// A conda version: `[epoch!]main[+local]`. Compares as CEP 33 says: components split at `.`,
/// `_` and `-`, digit and letter runs compared element-wise with `dev` < other strings <
/// numbers < `post`, missing components read as 0 (so `1.1 == 1.1.0`), strings compared
/// case-insensitively, the local part only when the main parts are equal.
///
/// `to_string()` returns the text that was parsed, so two equal versions may print differently
/// (`1.1` and `1.1.0`); `parse(v.to_string()) == v` always holds.
class Version {
 public:
  /// One element of a component: a number, or a lowercased letter run.
  struct Atom {
    std::uint64_t number = 0;
    std::string text;  // empty for a number
    bool operator==(const Atom&) const = default;
  };
  using Component = std::vector<Atom>;

  Version() = default;  // "0"

  /// Parses a version; errors point at the offending character. Digit runs may be up to
  /// 2^64-1 (CEP 33 says 2^31-1, but real builds have date-time versions) and the length is
  /// not limited (CEP 26 says 64).
  static Result<Version> parse(std::string_view text);

  [[nodiscard]] const std::string& to_string() const noexcept { return text_; }
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] const std::vector<Component>& components() const noexcept { return version_; }
  [[nodiscard]] const std::vector<Component>& local() const noexcept { return local_; }

  /// True when this version lies inside `prefix.*` (`1.26.4` and `1.26` start with `1.26`,
  /// `1.260` does not; a trailing letter run matches by prefix: `1.1alpha` starts with `1.1a`).
  [[nodiscard]] bool starts_with(const Version& prefix) const;
  /// `~=base`: at least `base`, and inside `base` minus its last component (`~=1.4.5` is
  /// `>=1.4.5,1.4.*`). A one-component base only requires `>=`.
  [[nodiscard]] bool compatible_with(const Version& base) const;

  friend std::weak_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) { return (a <=> b) == 0; }

  /// Consistent with ==: `1.1` and `1.1.0` hash alike.
  [[nodiscard]] std::size_t hash() const noexcept;

 private:
  std::uint64_t epoch_ = 0;
  std::vector<Component> version_{Component{Atom{}}};
  std::vector<Component> local_;
  std::string text_ = "0";
};

}  // namespace envbuild::conda

template <>
struct std::hash<envbuild::conda::Version> {
  std::size_t operator()(const envbuild::conda::Version& v) const noexcept { return v.hash(); }
};
