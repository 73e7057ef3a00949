#include "common/url.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "common/http.hpp"
#include "common/ascii.hpp"

namespace envbuild::common {

namespace {

struct UrlFree {
  void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
using Url = std::unique_ptr<CURLU, UrlFree>;

// One part of a parsed URL; "" when it is absent.
std::string part(CURLU* url, CURLUPart which, unsigned flags = 0) {
  char* out = nullptr;
  if (curl_url_get(url, which, &out, flags) != CURLUE_OK || !out) return {};
  std::string value(out);
  curl_free(out);
  return value;
}

Result<Url> parse(std::string_view text) {
  Url url(curl_url());
  if (!url) return fail(Errc::Internal, "curl_url failed");
  // curl wants a NUL-terminated string; a NUL inside would cut the URL short.
  if (text.find('\0') != std::string_view::npos)
    return fail(Errc::InvalidInput, "URL '" + redact_url(text) + "' holds a NUL byte");
  const std::string copy(text);
  if (auto rc = curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), 0); rc != CURLUE_OK)
    return fail(Errc::InvalidInput,
                "URL '" + redact_url(text) + "': " + std::string(curl_url_strerror(rc)));
  return url;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string Origin::to_string() const {
  return scheme + "://" + host + ":" + std::to_string(port);
}

Result<Origin> url_origin(std::string_view text) {
  ENVB_ASSIGN_OR_RETURN(Url url, parse(text));
  Origin origin;
  origin.scheme = ascii_lower(part(url.get(), CURLUPART_SCHEME));
  if (origin.scheme != "http" && origin.scheme != "https")
    return fail(Errc::InvalidInput, "URL '" + redact_url(text) + "': scheme '" + origin.scheme +
                                        "' is not http or https");
  origin.host = ascii_lower(part(url.get(), CURLUPART_HOST));
  origin.port = std::atoi(part(url.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT).c_str());
  if (origin.host.empty() || origin.port <= 0)
    return fail(Errc::InvalidInput, "URL '" + redact_url(text) + "' has no host");
  return origin;
}

bool same_origin(std::string_view a, std::string_view b) {
  auto x = url_origin(a);
  auto y = url_origin(b);
  return x && y && *x == *y;
}

bool is_downgrade(std::string_view from, std::string_view to) {
  auto x = url_origin(from);
  auto y = url_origin(to);
  return x && y && x->scheme == "https" && y->scheme == "http";
}

Result<std::string> resolve_url(std::string_view base, std::string_view reference) {
  ENVB_ASSIGN_OR_RETURN(Url url, parse(base));
  if (reference.find('\0') != std::string_view::npos)
    return fail(Errc::InvalidInput, "Location '" + redact_url(reference) + "' holds a NUL byte");
  const std::string copy(reference);
  if (auto rc = curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), 0); rc != CURLUE_OK)
    return fail(Errc::InvalidInput, "Location '" + redact_url(reference) + "' (from " +
                                        redact_url(base) + "): " + curl_url_strerror(rc));
  std::string out = part(url.get(), CURLUPART_URL);
  if (out.empty()) return fail(Errc::InvalidInput, "Location '" + redact_url(reference) + "'");
  return out;
}

std::string url_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string strip_userinfo(std::string_view text) {
  auto url = parse(text);
  if (!url) return std::string(text);
  curl_url_set(url->get(), CURLUPART_USER, nullptr, 0);
  curl_url_set(url->get(), CURLUPART_PASSWORD, nullptr, 0);
  curl_url_set(url->get(), CURLUPART_OPTIONS, nullptr, 0);
  std::string out = part(url->get(), CURLUPART_URL);
  return out.empty() ? std::string(text) : out;
}

bool is_loopback_host(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with('[')) {  // [::1] or [::1]:5000
    size_t close = name.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = name.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && all_digits(rest.substr(1)))) return false;
    name = name.substr(1, close - 1);
  } else if (std::count(name.begin(), name.end(), ':') == 1) {  // name:port
    size_t colon = name.find(':');
    if (!all_digits(name.substr(colon + 1))) return false;
    name = name.substr(0, colon);
  }
  if (ascii_lower(name) == "localhost") return true;
  // inet_pton takes exactly four decimal octets without leading zeros: the forms a resolver
  // cannot reinterpret ("0177.0.0.1", "127.1" are left to verification).
  const std::string address(name);
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, address.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace envbuild::common
