#pragma once

// Progress of long transfers (package downloads, pushes) for a person watching: on a terminal
// one status line, redrawn at most ten times a second, with bytes done and expected, rate and
// ETA; elsewhere (CI logs, pipes) only the plain lines the caller prints, one per finished item,
// so that logs stay readable.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace envbuild::common {

/// "12.0 MiB / 40.0 MiB, 3.0 MiB/s, ETA 0:09": bytes done of `total` (0: unknown, then no ETA)
/// after `elapsed`. Pure: what the status line says.
std::string transfer_status(uint64_t done, uint64_t total, std::chrono::duration<double> elapsed);

/// A batch of transfers. Thread-safe: workers report bytes and finished items from any thread.
class TransferProgress {
 public:
  /// `what` starts the status line ("downloading 25 packages"); `total` is the bytes expected
  /// (0 when unknown). `terminal`: draw the status line (the CLI passes isatty(stderr)).
  TransferProgress(std::string what, uint64_t total, bool terminal, std::FILE* out = stderr);
  ~TransferProgress();
  TransferProgress(const TransferProgress&) = delete;
  TransferProgress& operator=(const TransferProgress&) = delete;

  void add_bytes(uint64_t bytes);
  /// Bytes that will not be transferred after all (a blob the registry has): off the total.
  void skip(uint64_t bytes);
  /// Prints a plain line (above the status line on a terminal).
  void line(const std::string& text);
  /// Clears the status line; the destructor does it too.
  void finish();

 private:
  void draw_locked(bool force);
  std::mutex mutex_;
  std::string what_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool terminal_;
  std::FILE* out_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace envbuild::common
