// What the HTTP client decides without talking to a server: redaction of secrets in URLs, the
// meaning of statuses, the one retry policy, and the overrides of its options.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/ascii.hpp"
#include "common/json.hpp"

namespace envbuild::common {

namespace {

bool is_secret_param(std::string_view name) {
  static constexpr std::string_view kNames[] = {"token",  "access_token", "password",  "passwd",
                                                "secret", "sig",          "signature", "api_key",
                                                "apikey", "auth"};
  std::string n = ascii_lower(name);
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [&](std::string_view k) { return n == k; });
}

// What a non-2xx body says, for the error message: a registry's error codes (distribution-spec
// "Error Codes"), else the first line of a short plain-text body; "" for anything else (HTML).
std::string body_detail(const std::string& body) {
  // An error document is small: a large body is not read as JSON at all (its depth and size
  // are the server's to choose).
  auto j = body.size() <= (64u << 10)
               ? parse_json(body, "error body").value_or(nlohmann::json())
               : nlohmann::json();
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    std::string codes;
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      auto text = [&](const char* key) {
        return e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : std::string();
      };
      if (!codes.empty()) codes += "; ";
      std::string code = text("code");
      codes += (code.empty() ? "?" : code) + ": " + text("message");
    }
    return codes.empty() ? "" : " (" + codes.substr(0, 512) + ")";
  }
  std::string line = ascii_trim(body.substr(0, body.find('\n')));
  if (line.empty() || line.size() >= 200 || line.find('<') != std::string::npos) return "";
  return ": " + line;
}

}  // namespace

std::string redact_url(std::string_view url) {
  std::string out(url);
  // user:pass@ in the authority.
  size_t scheme = out.find("://");
  size_t auth_start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t auth_end = out.find_first_of("/?#", auth_start);
  if (auth_end == std::string::npos) auth_end = out.size();
  size_t at = out.rfind('@', auth_end);
  if (at != std::string::npos && at >= auth_start) {
    size_t colon = out.find(':', auth_start);
    if (colon != std::string::npos && colon < at)
      out.replace(colon + 1, at - colon - 1, "***");
    else
      out.replace(auth_start, at - auth_start, "***");
  }
  // conda tokens: /t/<token>/
  for (size_t pos = out.find("/t/"); pos != std::string::npos; pos = out.find("/t/", pos + 3)) {
    size_t start = pos + 3;
    size_t end = out.find_first_of("/?#", start);
    if (end == std::string::npos) end = out.size();
    if (end > start && out.compare(start, end - start, "***") != 0)
      out.replace(start, end - start, "***");
  }
  // query parameters.
  size_t q = out.find('?');
  if (q != std::string::npos) {
    size_t pos = q + 1;
    while (pos < out.size()) {
      size_t amp = out.find('&', pos);
      if (amp == std::string::npos) amp = out.size();
      size_t eq = out.find('=', pos);
      if (eq != std::string::npos && eq < amp &&
          is_secret_param(std::string_view(out).substr(pos, eq - pos))) {
        out.replace(eq + 1, amp - eq - 1, "***");
        amp = eq + 4;
      }
      pos = amp + 1;
    }
  }
  return out;
}

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(ascii_lower(name));
  return it == headers.end() ? std::string() : it->second;
}

std::string_view http_reason_phrase(long status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

bool http_status_retryable(long status) {
  return status == 408 || status == 429 || status >= 500;
}

std::chrono::milliseconds parse_retry_after(std::string_view value,
                                            std::chrono::system_clock::time_point now) {
  std::string v = ascii_trim(value);
  if (v.empty()) return std::chrono::milliseconds(0);
  if (std::all_of(v.begin(), v.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return std::chrono::hours(24);
    return std::chrono::seconds(std::stol(v));
  }
  time_t when = curl_getdate(v.c_str(), nullptr);
  if (when < 0) return std::chrono::milliseconds(0);
  auto delta = std::chrono::system_clock::from_time_t(when) - now;
  if (delta.count() < 0) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(delta);
}

std::optional<std::chrono::milliseconds> next_retry(const HttpOptions& options, int attempts,
                                                    bool retryable, std::string_view retry_after,
                                                    std::chrono::system_clock::time_point now) {
  if (!retryable || attempts > options.max_retries) return std::nullopt;
  std::chrono::milliseconds wait = options.initial_backoff;
  for (int i = 1; i < attempts && wait < options.max_backoff; ++i) wait *= 2;
  wait = std::max(wait, parse_retry_after(retry_after, now));
  return std::min(wait, options.max_backoff);
}

Error http_status_error(std::string_view method, std::string_view url,
                        const HttpResponse& response) {
  const long s = response.status;
  std::string message = std::string(method) + " " + redact_url(url) + ": " + std::to_string(s);
  if (auto reason = http_reason_phrase(s); !reason.empty()) message += " " + std::string(reason);
  if (response.attempts > 1)
    message += " (after " + std::to_string(response.attempts) + " attempts)";
  message += body_detail(response.body);
  const Errc code = s == 401 || s == 403       ? Errc::Unauthorized
                    : s == 404 || s == 410     ? Errc::NotFound
                    : http_status_retryable(s) ? Errc::Network
                                               : Errc::InvalidInput;
  return fail(code, std::move(message)).set_retryable(http_status_retryable(s));
}

Result<void> apply_http_overrides(HttpOptions& options, std::string_view spec) {
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view entry = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    const std::string_view key = entry.substr(0, eq);
    const std::string_view text = eq == std::string_view::npos ? "" : entry.substr(eq + 1);
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        value > (1ull << 40))
      return fail(Errc::InvalidInput, std::string(kHttpOverridesEnv) + ": '" + std::string(entry) +
                                          "' is not KEY=NUMBER");
    const auto secs = std::chrono::seconds(value);
    if (key == "connect") {
      options.connect_timeout = secs;
    } else if (key == "headers") {
      options.header_timeout = secs;
    } else if (key == "window") {
      options.progress_window = secs;
    } else if (key == "total") {
      options.metadata_timeout = secs;
    } else if (key == "min_bytes") {
      options.progress_min_bytes = value;
    } else if (key == "retries") {
      options.max_retries = static_cast<int>(std::min<uint64_t>(value, 100));
    } else if (key == "backoff_ms") {
      options.initial_backoff = std::chrono::milliseconds(value);
    } else {
      return fail(Errc::InvalidInput,
                  std::string(kHttpOverridesEnv) + ": unknown key '" + std::string(key) +
                      "' (connect, headers, window, total, min_bytes, retries, backoff_ms)");
    }
  }
  return ok();
}

}  // namespace envbuild::common
