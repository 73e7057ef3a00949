#pragma once

// PEP 440 versions of Python distributions (the "Version specifiers" specification of
// packaging.python.org), as pip's vendored `packaging` parses, normalizes and orders them.
// Not conda versions (conda/version.hpp): the two orders differ (`1.0.dev0 < 1.0a0` here,
// `1.0post1` rules, local versions), so a PyPI version is never a conda::Version.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda::pypi {

/// A PEP 440 version: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, parsed with the spec's
/// normalizations (case, `v` prefix, `alpha`/`c`/`pre`/`preview` spellings, `-`/`_`/`.`
/// separators, implicit numbers, `1.0-1` as a post release). `to_string()` gives the normal
/// form ("1.0rc1.post2.dev3+ubuntu.1"), so `parse(v.to_string()) == v` and the text
/// round-trips once normalized. Ordered as PEP 440 says: release compared with trailing zeros
/// ignored (`1.0 == 1.0.0`), dev < pre < final < post, a local version after its public one.
class Version {
 public:
  enum class PreKind : uint8_t { Alpha, Beta, Rc };
  struct Pre {
    PreKind kind = PreKind::Alpha;
    uint64_t number = 0;
    auto operator<=>(const Pre&) const = default;
  };
  /// A segment of a local version: a number or a lowercased alphanumeric run.
  using LocalSegment = std::variant<uint64_t, std::string>;

  Version() = default;  // "0"

  /// Errors (InvalidInput) quote the text and point at the first character that does not fit.
  static Result<Version> parse(std::string_view text);

  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] const std::vector<uint64_t>& release() const noexcept { return release_; }
  [[nodiscard]] const std::optional<Pre>& pre() const noexcept { return pre_; }
  [[nodiscard]] const std::optional<uint64_t>& post() const noexcept { return post_; }
  [[nodiscard]] const std::optional<uint64_t>& dev() const noexcept { return dev_; }
  [[nodiscard]] const std::vector<LocalSegment>& local() const noexcept { return local_; }

  /// A pre-release or a development release (PEP 440 "pre-releases" include `.devN`).
  [[nodiscard]] bool is_prerelease() const noexcept { return pre_ || dev_; }
  [[nodiscard]] bool is_postrelease() const noexcept { return post_.has_value(); }
  /// The version without its local part.
  [[nodiscard]] Version public_version() const;
  /// Epoch and release only ("1!2.0rc1.post3+x" -> "1!2.0").
  [[nodiscard]] Version base_version() const;

  friend std::strong_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) { return (a <=> b) == 0; }

 private:
  uint64_t epoch_ = 0;
  std::vector<uint64_t> release_{0};
  std::optional<Pre> pre_;
  std::optional<uint64_t> post_;
  std::optional<uint64_t> dev_;
  std::vector<LocalSegment> local_;
};

/// The longest version text accepted: a version is one short token, and the parsers that
/// take one from untrusted metadata stop here.
inline constexpr size_t kMaxVersionLength = 256;

}  // namespace envbuild::conda::pypi
