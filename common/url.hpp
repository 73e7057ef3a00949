#pragma once

// URL questions that decide where secrets may go: the origin (scheme, host, port) of a URL as
// libcurl will connect to it, resolving a Location against the URL that sent it, and which hosts
// count as this machine. Parsing goes through libcurl's own URL parser, so that the origin we
// check is the one curl connects to (a hand-written parser could read "http://a@b\@c/" another
// way than curl does).

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::common {

/// Where a request goes: RFC 6454's origin. Two URLs with equal origins reach the same server.
struct Origin {
  std::string scheme;  // lower-case: "http" or "https"
  std::string host;    // lower-case; an IPv6 address keeps its brackets ("[::1]")
  int port = 0;        // the default port of the scheme when the URL has none

  bool operator==(const Origin&) const = default;
  /// "https://host:443".
  [[nodiscard]] std::string to_string() const;
};

/// The origin of an absolute http(s) URL. InvalidInput (naming the redacted URL) for another
/// scheme, a relative URL or one that libcurl cannot parse.
Result<Origin> url_origin(std::string_view url);

/// Whether both URLs parse and have the same origin.
bool same_origin(std::string_view a, std::string_view b);

/// Whether going from `from` to `to` leaves TLS for plain http (https -> http).
bool is_downgrade(std::string_view from, std::string_view to);

/// `reference` (a Location header: absolute, scheme-relative, absolute-path or relative) resolved
/// against `base` (RFC 3986 section 5), as libcurl resolves redirects.
Result<std::string> resolve_url(std::string_view base, std::string_view reference);

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string url_escape(std::string_view text);

/// The URL without its `user:password@` part (credentials belong to one origin only).
std::string strip_userinfo(std::string_view url);

/// Whether `host` (a name, an IPv4 address or a bracketed IPv6 address, each with an optional
/// ":port") names this machine: the exact name "localhost" (any case), an IPv4 address in
/// 127.0.0.0/8 written as four decimal octets, or the IPv6 loopback ::1. Anything else is not
/// local, so "127.evil.example", "localhost.example" and "127.1" are not: a name only counts
/// when no resolver can point it elsewhere.
bool is_loopback_host(std::string_view host);

}  // namespace envbuild::common
