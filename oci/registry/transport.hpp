#pragma once

// The registry's HTTP transport: one libcurl easy handle (kept-alive connections) per
// HttpTransport, any method with a request body streamed from a reopenable ByteSource, every HTTP
// status handed back to the caller (a 401 and its WWW-Authenticate are data, not errors), no
// redirect following unless asked, TLS verification on by default with system CAs, a CA file or a
// containers-certs.d(5) style directory. Retries with exponential backoff on transport errors,
// 5xx and 429 (Retry-After honoured). URLs in messages go through common::redact_url(); request
// headers (Authorization) never appear in any message.
// curl_global_init is the caller's job (main(), or the test's main).

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

namespace envbuild::oci::registry {

struct TlsOptions {
  /// Verify the server's certificate and host name (skopeo --tls-verify).
  bool verify = true;
  /// A PEM bundle of CAs to trust instead of the system store.
  std::string ca_file;
  /// containers-certs.d(5): `*.crt` CAs (trusted instead of the system store), `*.cert` + `*.key`
  /// client certificate and key.
  std::string cert_dir;
};

struct TransportOptions {
  TlsOptions tls;
  std::chrono::seconds connect_timeout{30};
  /// A transfer slower than low_speed_bytes/s for low_speed_time is aborted (then retried).
  long low_speed_bytes = 1;
  std::chrono::seconds low_speed_time{60};
  /// Retries after the first attempt, for transport errors, 5xx and 429.
  int max_retries = 4;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  std::string user_agent = "envbuild";
};

using Headers = std::vector<std::pair<std::string, std::string>>;

/// Opens the request body afresh (each attempt reads it from the start).
using BodyOpener = std::function<Result<std::unique_ptr<common::ByteSource>>()>;

struct Response;

struct Request {
  std::string method = "GET";  // GET HEAD PUT POST PATCH DELETE
  std::string url;
  Headers headers;
  /// The body and its exact length (Content-Length); none means an empty body.
  BodyOpener body;
  int64_t body_size = 0;
  /// Where a 2xx body goes; without one it is captured in Response::body (up to max_body).
  common::ByteSink* sink = nullptr;
  size_t max_body = 4u << 20;
  bool follow_redirects = false;
  /// Called once, with the status and headers, before the first body byte of a 2xx response
  /// reaches the sink (a ranged GET checks its 206 here); an error aborts the transfer.
  std::function<Result<void>(const Response&)> on_body_start;
};

struct Response {
  long status = 0;
  /// Headers of the final response, names lower-cased.
  std::map<std::string, std::string> headers;
  /// The captured body (non-2xx bodies always; 2xx bodies when there was no sink), capped.
  std::string body;
  bool body_truncated = false;
  uint64_t sink_bytes = 0;  // bytes written to Request::sink
  int attempts = 0;

  [[nodiscard]] std::string header(std::string_view name) const;
  [[nodiscard]] bool ok() const noexcept { return status >= 200 && status < 300; }
};

/// Request counters, shared by the transports of one operation (thread-safe).
struct Counters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> get{0}, head{0}, put{0}, post{0}, patch{0};
};

/// One curl handle; not thread-safe (give each thread its own HttpTransport).
class HttpTransport {
 public:
  explicit HttpTransport(TransportOptions options = {},
                         std::shared_ptr<Counters> counters = std::make_shared<Counters>());
  ~HttpTransport();
  HttpTransport(HttpTransport&&) noexcept;
  HttpTransport& operator=(HttpTransport&&) noexcept;
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  /// Sends the request. Every HTTP status is a Response; errors are transport failures
  /// (Network, retryable; "PUT <url>: Couldn't connect to server"), body source or sink errors,
  /// and 5xx/429 are retried first. Nothing is retried once part of a body reached the sink.
  Result<Response> send(const Request& request);

  [[nodiscard]] const TransportOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::shared_ptr<Counters>& counters() const noexcept { return counters_; }

 private:
  Result<Response> send_once(const Request& request);
  struct Impl;
  TransportOptions options_;
  std::shared_ptr<Counters> counters_;
  std::unique_ptr<Impl> impl_;
};

/// "404 Not Found" style reason phrase for a status.
std::string_view reason_phrase(long status);

/// The error for an unexpected status: "PUT <redacted url>: 400 Bad Request (MANIFEST_INVALID:
/// manifest invalid)" with the registry's error codes (distribution-spec "Error Codes").
/// Errc: Unauthorized for 401/403, NotFound for 404, Network (retryable) for 5xx/429, else
/// InvalidInput.
Error status_error(std::string_view method, std::string_view url, const Response& response);

/// Percent-encodes a query parameter value.
std::string url_escape(std::string_view text);

}  // namespace envbuild::oci::registry
