#pragma once

// A channel as written by a user, before resolution against channel_alias/mirrors
// (mamba's UnresolvedChannel, conda's Channel before .urls()).

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

/// `conda-forge`, `conda-forge/linux-64`, `pkgs/main`, `https://host/t/${TOKEN}/stable`,
/// `file:///srv/channel`, `/srv/channel`, `./local`, optionally followed by a platform filter
/// `[linux-64,noarch]`. A trailing known subdir (`conda-forge/linux-64`) is split off into
/// platforms(). Environment variables (`${VAR}`) are kept verbatim.
class UnresolvedChannel {
 public:
  enum class Kind { Name, Url, Path };

  static Result<UnresolvedChannel> parse(std::string_view text);

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  /// The name, URL or path without the platform filter and without a trailing slash.
  [[nodiscard]] const std::string& location() const noexcept { return location_; }
  [[nodiscard]] const std::vector<std::string>& platforms() const noexcept { return platforms_; }
  /// Last path segment of a name or URL ("conda-forge" for https://x/conda-forge), used to
  /// compare a spec's channel with a record's.
  [[nodiscard]] std::string short_name() const;
  /// `location[plat1,plat2]`, or `location` when there is no filter. Round-trips.
  [[nodiscard]] std::string to_string() const;
  /// The same channel without its platform filter. Not a re-parse: `x/osx-64/osx-64` keeps
  /// `x/osx-64` as its location, where parsing that text again would split off a second subdir.
  [[nodiscard]] UnresolvedChannel without_platforms() const;

  bool operator==(const UnresolvedChannel&) const = default;

 private:
  Kind kind_ = Kind::Name;
  std::string location_;
  std::vector<std::string> platforms_;
};

}  // namespace envbuild::conda
