#pragma once

// Channel resolution: what a user writes in `channels:` or --channel, turned into base URLs.
//   conda-forge, conda-forge/label/dev  -> <alias>/<name>   (alias default
//   https://conda.anaconda.org) https://host/path, http://...      -> as written (credentials kept,
//   redacted in messages) file:///dir, /dir, ./dir, ~/dir    -> file:// URL of the absolute
//   directory (must exist) defaults                           ->
//   https://repo.anaconda.com/pkgs/main and .../pkgs/r
//                                         (conda's default_channels on Linux; configurable)
//   nodefaults                         -> removed (conda-lock / conda env convention)
// The order is the priority: the first channel is the highest.

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder {

struct ChannelOptions {
  std::string alias = "https://conda.anaconda.org";
  std::vector<std::string> default_channels = {"https://repo.anaconda.com/pkgs/main",
                                               "https://repo.anaconda.com/pkgs/r"};
};

struct Channel {
  std::string name;      // canonical name: "conda-forge", or the redacted URL of a URL channel
  std::string base_url;  // no trailing slash; may hold credentials: never print it
  [[nodiscard]] bool is_local() const { return base_url.starts_with("file://"); }
  /// <base_url>/<subdir>/<file>.
  [[nodiscard]] std::string url(std::string_view subdir, std::string_view file) const;
  /// The same without secrets, for messages.
  [[nodiscard]] std::string display_url(std::string_view subdir, std::string_view file) const;
};

/// Resolves one channel text (not "defaults"/"nodefaults").
Result<Channel> resolve_channel(std::string_view text, const ChannelOptions& options = {});

/// Resolves a channel list in priority order: expands "defaults", drops "nodefaults" and
/// duplicates. An empty result is an error (no channel to solve from).
Result<std::vector<Channel>> resolve_channels(const std::vector<std::string>& texts,
                                              const ChannelOptions& options = {});

/// The base URLs of `channels` that hold credentials (user:password@, a conda /t/<token>/).
/// Solved records carry the redacted form of their URLs ("https://user:***@host/..."), so that
/// lock files, conda-meta records and images never hold a secret; a download puts the
/// credentials back with with_credentials().
std::vector<std::string> credentialed_base_urls(const std::vector<Channel>& channels);
/// The same for channel texts as given (-c, `channels:`); texts that do not resolve are skipped
/// (this only supplies credentials; solving reports bad channels).
std::vector<std::string> credentialed_base_urls(const std::vector<std::string>& texts,
                                                const ChannelOptions& options = {});

/// `url` with the credentials of the first of `bases` whose redacted form is a prefix of it
/// (at a '/'), else `url` unchanged. The result may hold a secret: never print it.
std::string with_credentials(std::string_view url, const std::vector<std::string>& bases);

/// Resolves a URL reference against a base URL (RFC 3986 section 5.2, without query or
/// fragment handling): an absolute reference ("https://h/x/", "file:///d/") is returned as is, "/p"
/// keeps the base's scheme and authority, anything else replaces the base's last path segment,
/// with "." and ".." segments removed. Used for CEP 15 `info.base_url`, which is relative to the
/// URL of the repodata.json that holds it.
std::string resolve_url(std::string_view base, std::string_view reference);

/// conda platforms envbuild knows ("linux-64", "linux-aarch64", "osx-arm64", ...).
bool is_known_platform(std::string_view platform);
/// The platform of this machine, e.g. "linux-64".

}  // namespace envbuild::builder
