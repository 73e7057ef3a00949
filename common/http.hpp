#pragma once

// The one HTTP client of envbuild, for channels (repodata, packages) and registries (manifests,
// blobs, tokens), over libcurl:
// - any method, a request body read from a reopenable source, every status handed back by
//   perform() (a 401 and its WWW-Authenticate are data to a registry) or turned into a typed
//   error by send();
// - redirects followed only when a request asks, hop by hop by this client rather than by curl,
//   so that credentials (user:pass@ in the URL, an Authorization header) reach the request's own
//   origin (scheme, host, port) only, and no redirect leaves https for plain http;
// - one retry policy, next_retry(): transport errors, missed deadlines, 408, 429 and 5xx,
//   exponential backoff, Retry-After honoured;
// - a deadline for every stage of a request (connect, response headers, body progress, and the
//   whole of a metadata request), so that a server trickling bytes cannot stall a run;
// - TLS verified against the system CAs, a CA file or a containers-certs.d(5) directory;
// - secrets never in messages: URLs go through redact_url(), request headers are never printed.
// file:// URLs are served from the local file system through the same interface.
// curl_global_init is the caller's job (main()).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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

struct TlsOptions {
  /// Verify the server's certificate and host name (skopeo --tls-verify).
  bool verify = true;
  /// A PEM bundle of CAs to trust instead of the system store.
  std::string ca_file;
  /// containers-certs.d(5): `*.crt` CAs (trusted instead of the system store), `*.cert` + `*.key`
  /// client certificate and key.
  std::string cert_dir;
};

/// Options of an HttpClient. The deadlines (README "Network deadlines") are sized for 1.3 GiB
/// packages and layers on slow links; a missed one is a retryable Network error, counted by the
/// retry policy like any other. ENVBUILD_HTTP_TIMEOUTS overrides them (see
/// apply_http_overrides()), so that tests of stalled servers run in seconds.
struct HttpOptions {
  TlsOptions tls;
  /// TCP connect and TLS handshake.
  std::chrono::seconds connect_timeout{30};
  /// From the request sent (its body included) to the end of the response's headers; a request
  /// with a body waits one second more per 16 MiB of it (a registry verifies and moves an
  /// uploaded blob before it answers).
  std::chrono::seconds header_timeout{60};
  /// Progress of an upload and of a response body: at least progress_min_bytes in every
  /// progress_window (or what is left, when less). A server that sends a byte now and then,
  /// too rarely to ever finish, misses it; a slow but alive link (1 KiB/s and up) does not.
  std::chrono::seconds progress_window{60};
  uint64_t progress_min_bytes = 64u << 10;
  /// The whole of a metadata request (HttpRequest::metadata: manifests, tokens, index and
  /// repodata JSON), every stage and redirect included; conda-forge's repodata on a 100 KiB/s
  /// link fits.
  std::chrono::seconds metadata_timeout{600};
  /// Retries after the first attempt (next_retry()).
  int max_retries = 4;
  std::chrono::milliseconds initial_backoff{500};
  /// Upper bound of one wait, Retry-After included.
  std::chrono::milliseconds max_backoff{30'000};
  /// Redirects followed by a request that asks for it (HttpRequest::follow_redirects).
  long max_redirects = 10;
  /// conda's proxy_servers: "scheme://host", "scheme", "all://host" or "all" -> proxy URL
  /// (proxy_for()). A URL none matches goes as libcurl decides (http_proxy, https_proxy, ...).
  /// A proxy URL's user:password@ goes to that proxy only (Proxy-Authorization).
  std::map<std::string, std::string> proxies;
  /// Read ~/.netrc (or netrc_file) for credentials of a host whose URL has none.
  bool use_netrc = true;
  std::string netrc_file;
  std::string user_agent = "envbuild";
};

/// The environment variable that overrides the deadlines and retries of every HttpClient.
inline constexpr const char* kHttpOverridesEnv = "ENVBUILD_HTTP_TIMEOUTS";

/// Applies "key=value,..." overrides: connect, headers, window, total (seconds), min_bytes,
/// retries, backoff_ms. InvalidInput naming the entry for an unknown key or a bad number.
Result<void> apply_http_overrides(HttpOptions& options, std::string_view spec);

/// The proxy of `url` in `proxies` (HttpOptions::proxies), tried as Python requests (and so
/// conda) tries them: "scheme://host", "scheme", "all://host", "all"; "" when none matches or
/// the URL has no origin. Chosen per request and per redirect hop: a hop to another host gets
/// that host's proxy, never the first host's.
std::string proxy_for(std::string_view url, const std::map<std::string, std::string>& proxies);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/// Opens a request body afresh: each attempt (and each 307/308 hop) reads it from the start.
using BodyOpener = std::function<Result<std::unique_ptr<ByteSource>>()>;

struct HttpRequest {
  std::string method = "GET";  // GET HEAD PUT POST PATCH DELETE
  /// May hold `user:pass@` (or a conda /t/<token>/): sent to this URL's origin only.
  std::string url;
  /// Extra headers, e.g. {"If-None-Match", "\"abc\""} or {"Range", "bytes=100-"}. Authorization
  /// (and Cookie) go to the URL's own origin only: a redirect elsewhere drops them.
  HttpHeaders headers;
  /// The body and its exact length (Content-Length); none means an empty body.
  BodyOpener body;
  int64_t body_size = 0;
  /// Where a 2xx body goes; without one it is captured in HttpResponse::body (up to max_body).
  ByteSink* sink = nullptr;
  size_t max_body = 4u << 20;
  bool follow_redirects = false;
  /// A small metadata document (manifest, token, index or repodata JSON): the whole request is
  /// bounded by HttpOptions::metadata_timeout, and it may come compressed (gzip, br).
  bool metadata = false;
  /// Called once per attempt, before the first body byte of a 2xx answer reaches the sink, with
  /// its status and headers (names lower-cased): a resumed download learns here whether the
  /// server sent the rest (206) or the whole file (200). An error aborts the transfer and is
  /// returned by perform().
  std::function<Result<void>(long status, const std::map<std::string, std::string>& headers)>
      before_body;
};

/// A GET of `url` that follows redirects, with optional extra headers.
inline HttpRequest http_get(std::string url, HttpHeaders headers = {}) {
  HttpRequest request;
  request.url = std::move(url);
  request.headers = std::move(headers);
  request.follow_redirects = true;
  return request;
}

struct HttpResponse {
  long status = 0;
  /// Headers of the final response, names lower-cased.
  std::map<std::string, std::string> headers;
  /// The captured body: always for a non-2xx answer, for a 2xx one when there was no sink;
  /// at most HttpRequest::max_body bytes.
  std::string body;
  bool body_truncated = false;
  std::string etag;
  std::string last_modified;
  std::string content_type;
  std::string effective_url;  // after redirects; may hold credentials: redact before printing
  std::string http_version;   // "1.1", "2", "file"
  uint64_t body_bytes = 0;    // bytes written to the sink
  int attempts = 0;

  [[nodiscard]] bool ok() const noexcept { return status >= 200 && status < 300; }
  [[nodiscard]] bool not_modified() const noexcept { return status == 304; }
  /// The header's value, or "" (name is case-insensitive).
  [[nodiscard]] std::string header(std::string_view name) const;
};

/// Request counters, shared by the clients of one operation (thread-safe).
struct HttpCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> get{0}, head{0}, put{0}, post{0}, patch{0};
};

/// The standard reason phrase of an HTTP status ("Not Found"), "" for one not listed.
std::string_view http_reason_phrase(long status);

/// Whether a request answered with `status` may succeed when sent again (408, 429, 5xx).
bool http_status_retryable(long status);

/// Parses a Retry-After value (seconds or an HTTP date) into a wait; 0 when absent or
/// unparsable.
std::chrono::milliseconds parse_retry_after(std::string_view value,
                                            std::chrono::system_clock::time_point now);

/// The retry policy of every request: after `attempts` attempts (1 = the first) the last of
/// which ended `retryable` (a transport error or missed deadline, or a 408/429/5xx status,
/// before any body byte reached the sink), the wait before the next attempt, or nullopt to
/// stop. The wait doubles from initial_backoff, is at least what Retry-After asks, and at most
/// max_backoff.
std::optional<std::chrono::milliseconds> next_retry(const HttpOptions& options, int attempts,
                                                    bool retryable, std::string_view retry_after,
                                                    std::chrono::system_clock::time_point now);

/// The error for an unexpected status: "PUT <redacted url>: 400 Bad Request (after 3 attempts)
/// (MANIFEST_INVALID: manifest invalid)" with a registry's error codes (distribution-spec "Error
/// Codes") or the first line of a short plain-text body. Errc: Unauthorized for 401/403,
/// NotFound for 404/410, Network (retryable) for 408/429/5xx, else InvalidInput.
Error http_status_error(std::string_view method, std::string_view url,
                        const HttpResponse& response);

/// One libcurl handle (connections, DNS and TLS sessions kept between requests); not
/// thread-safe: give each thread its own client.
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {},
                      std::shared_ptr<HttpCounters> counters = std::make_shared<HttpCounters>());
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends the request, retried by next_retry(). Every HTTP status is a response (after the
  /// retries of a retryable one); errors are transport failures and missed deadlines (Network,
  /// retryable: "GET <url>: no response headers within 60 s"), a refused redirect, and errors of
  /// the body source, the sink or before_body. Nothing is retried once part of a body reached
  /// the sink (it cannot rewind): the error says so by the response's absence, the caller
  /// resumes.
  Result<HttpResponse> perform(const HttpRequest& request);

  /// perform() with the 2xx body streamed into `body`, for requests that expect success: a 304
  /// is a response; any other status is http_status_error(), with a hint about credentials for
  /// Unauthorized.
  Result<HttpResponse> send(const HttpRequest& request, ByteSink& body);

  [[nodiscard]] const HttpOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::shared_ptr<HttpCounters>& counters() const noexcept { return counters_; }

 private:
  struct Hop;
  Result<HttpResponse> follow(const HttpRequest& request, uint64_t& delivered);
  Result<HttpResponse> transfer(const HttpRequest& request, const Hop& hop, uint64_t& delivered);
  Result<HttpResponse> send_file(const HttpRequest& request);
  struct Impl;
  HttpOptions options_;
  std::shared_ptr<HttpCounters> counters_;
  std::unique_ptr<Impl> impl_;
};

/// One HttpClient per worker of common::for_each_index(), each with its own kept-alive
/// connections, made on the worker's first use: `clients.of(worker)` needs no lock, as a worker
/// number belongs to one thread at a time.
class HttpClients {
 public:
  HttpClients(HttpOptions options, size_t workers);
  HttpClient& of(size_t worker);

 private:
  HttpOptions options_;
  std::vector<std::unique_ptr<HttpClient>> clients_;
};

}  // namespace envbuild::common
