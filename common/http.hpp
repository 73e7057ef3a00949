#pragma once

// A small HTTP client over libcurl: one request at a time per client, the connection kept between
// requests, retries with exponential backoff on 5xx/429/transport errors (honouring Retry-After),
// timeouts that only kill stalled transfers, and credentials (user:pass@, conda /t/<token>/,
// ~/.netrc) that never appear in messages: every message goes through redact_url().
// file:// URLs are served from the local file system with the same interface.
// curl_global_init is the caller's job (main()).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/io.hpp"
#include "common/result.hpp"

namespace envbuild::common {

/// The URL with secrets replaced by "***": the password of `user:pass@`, a conda token
/// (`/t/<token>/`) and the values of query parameters named token, access_token, password, ...
std::string redact_url(std::string_view url);

struct HttpOptions {
  std::chrono::seconds connect_timeout{30};
  /// A transfer slower than low_speed_bytes per second for low_speed_time is aborted (and
  /// retried). There is no total timeout: a slow but alive download is never killed.
  long low_speed_bytes = 1;
  std::chrono::seconds low_speed_time{60};
  /// Retries after the first attempt, for 5xx, 429 and transport errors.
  int max_retries = 4;
  std::chrono::milliseconds initial_backoff{500};
  /// Upper bound of one wait, Retry-After included.
  std::chrono::milliseconds max_backoff{30'000};
  long max_redirects = 10;
  /// Read ~/.netrc (or netrc_file) for credentials when the URL has none.
  bool use_netrc = true;
  std::string netrc_file;
  std::string user_agent = "envbuild";
};

struct HttpRequest {
  std::string url;
  std::string method = "GET";  // GET or HEAD
  /// Extra headers, e.g. {"If-None-Match", "\"abc\""} or {"Range", "bytes=100-"}.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Called once per attempt, before the first body byte of a 2xx answer, with its status and
  /// headers (names lower-cased): a resumed download learns here whether the server sent the
  /// rest (206) or the whole file (200) and rewinds its sink. An error aborts the transfer and
  /// is returned by send().
  std::function<Result<void>(long status, const std::map<std::string, std::string>& headers)>
      before_body;
};

/// A GET request for `url` with optional extra headers.
inline HttpRequest http_get(std::string url,
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
  return HttpRequest{std::move(url), "GET", std::move(headers), {}};
}

struct HttpResponse {
  long status = 0;  // 200..299 or 304 (send() fails on anything else)
  /// Headers of the final response, names lower-cased.
  std::map<std::string, std::string> headers;
  std::string etag;
  std::string last_modified;
  std::string content_type;
  std::string effective_url;  // after redirects; may hold credentials: redact before printing
  std::string http_version;   // "1.1", "2", "file"
  uint64_t body_bytes = 0;    // bytes written to the sink
  int attempts = 0;

  [[nodiscard]] bool not_modified() const noexcept { return status == 304; }
  /// The header's value, or "" (name is case-insensitive).
  [[nodiscard]] std::string header(std::string_view name) const;
};

/// The standard reason phrase of an HTTP status ("Not Found"), "" for one not listed.
std::string_view http_reason_phrase(long status);

/// Whether a request answered with `status` may succeed when sent again (408, 429, 5xx).
bool http_status_retryable(long status);

/// Parses a Retry-After value (seconds or an HTTP date) into a wait; nullopt-like 0 when absent
/// or unparsable.
std::chrono::milliseconds parse_retry_after(std::string_view value,
                                            std::chrono::system_clock::time_point now);

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends the request and streams a 2xx body into `body`; a 304 writes nothing. Errors:
  /// NotFound (404, 410), Unauthorized (401, 403), Network (other statuses, transport errors;
  /// retryable for 5xx/429/transport) — each naming "METHOD <redacted url>: <status> <reason>".
  /// A failure after part of the body reached the sink is not retried (the sink cannot rewind).
  Result<HttpResponse> send(const HttpRequest& request, ByteSink& body);

  [[nodiscard]] const HttpOptions& options() const noexcept { return options_; }

 private:
  Result<HttpResponse> send_file(const HttpRequest& request, ByteSink& body);
  struct Impl;
  HttpOptions options_;
  std::unique_ptr<Impl> impl_;
};

/// Runs task(i, client) for every i in [0, count) on up to `jobs` threads, each thread with its
/// own HttpClient (and so its own kept-alive connections). Returns one Result per index.
std::vector<Result<void>> run_parallel(
    size_t count, size_t jobs, const HttpOptions& options,
    const std::function<Result<void>(size_t index, HttpClient& client)>& task);

}  // namespace envbuild::common
