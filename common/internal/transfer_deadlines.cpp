#include "common/internal/transfer_deadlines.hpp"

#include <algorithm>
#include <limits>

namespace envbuild::common::internal {

namespace {

std::string seconds(std::chrono::seconds s) {
  return std::to_string(s.count()) + " s";
}

}  // namespace

TransferDeadlines::TransferDeadlines(const HttpOptions& options, bool metadata,
                                     uint64_t upload_size, Clock::time_point start)
    : options_(options),
      metadata_(metadata),
      upload_size_(upload_size),
      start_(start),
      stage_start_(start),
      window_start_(start) {}

std::optional<std::string> TransferDeadlines::check(const TransferProgress& progress,
                                                    Clock::time_point now) {
  if (metadata_ && now - start_ > options_.metadata_timeout)
    return "no complete answer within " + seconds(options_.metadata_timeout) +
           " (the limit of a metadata request)";
  const Stage stage = !progress.connected                ? Stage::Connecting
                      : progress.headers_done            ? Stage::Receiving
                      : progress.uploaded < upload_size_ ? Stage::Uploading
                                                         : Stage::Waiting;
  if (stage != stage_) {
    stage_ = stage;
    stage_start_ = window_start_ = now;
    window_mark_ = stage == Stage::Uploading ? progress.uploaded : progress.downloaded;
  }
  switch (stage_) {
    case Stage::Connecting:  // CURLOPT_CONNECTTIMEOUT's job
      return std::nullopt;
    case Stage::Uploading:
      return check_window(progress.uploaded, upload_size_ - window_mark_, now);
    case Stage::Waiting: {
      // A registry checks the digest of an uploaded blob (and may copy it in its storage)
      // before it answers: the wait grows with the body.
      const auto limit = options_.header_timeout + std::chrono::seconds(upload_size_ >> 24);
      if (now - stage_start_ > limit) return "no response headers within " + seconds(limit);
      return std::nullopt;
    }
    case Stage::Receiving: {
      uint64_t left = std::numeric_limits<uint64_t>::max();
      if (progress.download_size > 0)
        left = progress.download_size > window_mark_ ? progress.download_size - window_mark_ : 0;
      return check_window(progress.downloaded, left, now);
    }
  }
  return std::nullopt;
}

std::optional<std::string> TransferDeadlines::check_window(uint64_t bytes, uint64_t left,
                                                           Clock::time_point now) {
  if (now - window_start_ < options_.progress_window) return std::nullopt;
  const uint64_t need = std::min(options_.progress_min_bytes, left);
  const uint64_t moved = bytes - window_mark_;
  if (moved < need)
    return "stalled: " + std::to_string(moved) + " bytes moved in the last " +
           seconds(options_.progress_window) + ", at least " + std::to_string(need) + " expected";
  window_start_ = now;
  window_mark_ = bytes;
  return std::nullopt;
}

}  // namespace envbuild::common::internal
