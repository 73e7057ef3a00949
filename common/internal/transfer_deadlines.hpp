#pragma once

// The stage deadlines of one HTTP transfer (HttpOptions: connect is curl's own), kept apart from
// libcurl so that a test can walk a transfer through its stages with a clock of its own.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/http.hpp"

namespace envbuild::common::internal {

/// Where a transfer stands, as curl's progress callback reports it.
struct TransferProgress {
  bool connected = false;  // connection (and TLS) set up: the request is going out
  uint64_t uploaded = 0;
  bool headers_done = false;   // the response's headers have all arrived
  uint64_t download_size = 0;  // Content-Length, 0 when unknown
  uint64_t downloaded = 0;
};

/// Checks a transfer against its deadlines: the whole (metadata requests only), the wait for the
/// response headers once the request is sent, and progress windows while the body goes up and
/// while the answer comes down.
class TransferDeadlines {
 public:
  using Clock = std::chrono::steady_clock;

  TransferDeadlines(const HttpOptions& options, bool metadata, uint64_t upload_size,
                    Clock::time_point start);

  /// nullopt while on time; else the deadline missed, for the error message ("no response
  /// headers within 60 s").
  std::optional<std::string> check(const TransferProgress& progress, Clock::time_point now);

 private:
  enum class Stage { Connecting, Uploading, Waiting, Receiving };
  std::optional<std::string> check_window(uint64_t bytes, uint64_t left, Clock::time_point now);

  const HttpOptions& options_;
  bool metadata_;
  uint64_t upload_size_;
  Clock::time_point start_;
  Stage stage_ = Stage::Connecting;
  Clock::time_point stage_start_;
  Clock::time_point window_start_;
  uint64_t window_mark_ = 0;  // bytes of the stage when the window began
};

}  // namespace envbuild::common::internal
