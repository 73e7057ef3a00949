#pragma once

// Channel resolution: what a user writes in `channels:` or --channel, turned into base URLs.
//   conda-forge, conda-forge/label/dev -> <custom_channels[name]>/<name> when the name (or its
//                                         first segments) is a custom channel, else
//                                         <alias>/<name> (alias default https://conda.anaconda.org)
//   https://host/path, http://...      -> as written (credentials kept, redacted in messages)
//   file:///dir, /dir, ./dir, ~/dir    -> file:// URL of the absolute directory (must exist)
//   defaults                           -> default_channels (conda's on Linux:
//                                         https://repo.anaconda.com/pkgs/main and .../pkgs/r)
//   nodefaults                         -> removed (conda-lock / conda env convention)
// The order is the priority: the first channel is the highest.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder {

/// A mirror of a channel (--mirror ORIGINAL=MIRROR): repodata and packages of ORIGINAL (a base
/// URL, or a URL prefix of several channels) are downloaded from MIRROR, while records, locks
/// and images keep naming ORIGINAL, so a mirror changes no digest.
struct Mirror {
  std::string original;  // base URL, redacted (records hold redacted URLs)
  std::string mirror;    // base URL; may hold credentials: never print it
  bool operator==(const Mirror&) const = default;
};

struct ChannelOptions {
  std::string alias = "https://conda.anaconda.org";
  std::vector<std::string> default_channels = {"https://repo.anaconda.com/pkgs/main",
                                               "https://repo.anaconda.com/pkgs/r"};
  /// conda's custom_channels: a channel name (or its first segments, `org` for `org/label/dev`)
  /// -> the base URL that holds it, instead of the alias: {internal: https://conda.corp} makes
  /// `internal` https://conda.corp/internal. The longest matching name wins.
  std::map<std::string, std::string> custom_channels;
  std::vector<Mirror> mirrors;
};

struct Channel {
  std::string name;      // canonical name: "conda-forge", or the redacted URL of a URL channel
  std::string base_url;  // no trailing slash; may hold credentials: never print it
  /// Where the channel is fetched from when a mirror is configured (base_url otherwise):
  /// records name base_url.
  std::string mirror_url;
  [[nodiscard]] const std::string& fetch_base() const {
    return mirror_url.empty() ? base_url : mirror_url;
  }
  [[nodiscard]] bool is_local() const { return fetch_base().starts_with("file://"); }
  /// <fetch_base()>/<subdir>/<file>: where repodata is downloaded from.
  [[nodiscard]] std::string url(std::string_view subdir, std::string_view file) const;
  /// The same without secrets, for messages.
  [[nodiscard]] std::string display_url(std::string_view subdir, std::string_view file) const;
};

/// Parses --mirror ORIGINAL=MIRROR; each side is a channel text (a name resolves against the
/// alias, `${VAR}` is expanded). InvalidInput naming the text when it is not of that form.
Result<Mirror> parse_mirror(std::string_view text, const ChannelOptions& options = {});

/// `url` under the first mirror whose original is a prefix of it (at a '/'), else `url`. The
/// result may hold a secret: never print it.
std::string mirrored_url(std::string_view url, const std::vector<Mirror>& mirrors);

/// Resolves one channel text (not "defaults"/"nodefaults"). `${VAR}` is replaced by the
/// variable's value, as conda does (an unset one is an error): put tokens where URLs are
/// redacted (`https://user:${PASS}@host/...`, `/t/${TOKEN}/`).
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
