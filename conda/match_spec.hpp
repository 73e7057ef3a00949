#pragma once

// Conda match specs: `numpy`, `numpy 1.26.*`, `conda-forge::numpy>=1.20,<2|>=2.1`,
// `pytorch=2.1=*cuda*`, `numpy[version='>=1.20',build=py*,build_number=2]`, `__cuda>=12`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "conda/channel_spec.hpp"
#include "conda/package_record.hpp"
#include "conda/version_spec.hpp"

namespace envbuild::conda {

/// A build_number constraint: `2`, `>=2`, `<3`, `!=1`.
struct BuildNumberSpec {
  enum class Op { Eq, Ne, Lt, Le, Gt, Ge };
  Op op = Op::Eq;
  std::uint64_t value = 0;

  static Result<BuildNumberSpec> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] bool matches(std::uint64_t build_number) const;
  bool operator==(const BuildNumberSpec&) const = default;
};

/// A parsed match spec. Forms accepted (conda's MatchSpec grammar, as far as real files use it):
///   name                       any build of `name` (the name may be a `*` glob)
///   name <version> [<build>]   space form: a bare version is exact, `1.2.*` starts with
///   name<op><version>          `>=1.20,<2|>=2.1`, `==1.26.4`, `!=1.2`, `~=1.4.5`
///   name=<version>[=<build>]   `=1.26` is fuzzy (1.26.*); with a build it is exact
///   channel[/subdir]::spec     channel and subdir
///   spec[key=value,...]        version, build, build_number, channel, subdir, md5, sha256,
///                              fn, license, url (values may be quoted)
/// Whitespace next to operators is ignored (`python >= 3.8, < 3.9`). Names are lowercased.
/// Errors point at the offending character.
class MatchSpec {
 public:
  static Result<MatchSpec> parse(std::string_view text);

  /// Canonical text: `[channel[/subdir]::]name[ version[ build]][[key=value,...]]`, with the
  /// version in VersionSpec's canonical form. `parse(s.to_string()) == s`.
  [[nodiscard]] std::string to_string() const;
  /// `name[ version[ build]]` for libsolv's pool_conda_matchspec (conda.c): only the parts
  /// libsolv evaluates. Channel, subdir, build_number, md5, sha256, fn and license are left
  /// out: callers filter on those themselves (see has_extra_constraints()).
  [[nodiscard]] std::string to_libsolv_string() const;
  /// True when the spec constrains more than libsolv's string can say.
  [[nodiscard]] bool has_extra_constraints() const;

  /// Does `record` satisfy every part of the spec? A spec channel matches a record channel
  /// with the same last segment(s), ignoring a trailing subdir (`conda-forge` matches
  /// `https://conda.anaconda.org/conda-forge/noarch`).
  [[nodiscard]] bool matches(const PackageRecord& record) const;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] bool is_virtual() const noexcept { return name_.starts_with("__"); }
  [[nodiscard]] bool name_is_glob() const noexcept;
  [[nodiscard]] const VersionSpec& version() const noexcept { return version_; }
  /// Exact build string or `*` glob; empty for any.
  [[nodiscard]] const std::string& build() const noexcept { return build_; }
  [[nodiscard]] const std::optional<BuildNumberSpec>& build_number() const noexcept {
    return build_number_;
  }
  [[nodiscard]] const std::optional<UnresolvedChannel>& channel() const noexcept {
    return channel_;
  }
  [[nodiscard]] const std::string& subdir() const noexcept { return subdir_; }
  [[nodiscard]] const std::string& md5() const noexcept { return md5_; }
  [[nodiscard]] const std::string& sha256() const noexcept { return sha256_; }
  [[nodiscard]] const std::string& fn() const noexcept { return fn_; }
  [[nodiscard]] const std::string& license() const noexcept { return license_; }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

  bool operator==(const MatchSpec&) const = default;

 private:
  friend class MatchSpecParser;

  std::string name_;
  VersionSpec version_;
  std::string build_;
  std::optional<BuildNumberSpec> build_number_;
  std::optional<UnresolvedChannel> channel_;
  std::string subdir_;
  std::string md5_;
  std::string sha256_;
  std::string fn_;
  std::string license_;
  std::string url_;
};

}  // namespace envbuild::conda
