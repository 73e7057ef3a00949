#include "common/progress.hpp"

#include <algorithm>
#include <cmath>

#include "common/format.hpp"

namespace envbuild::common {

namespace {

std::string clock_text(double seconds) {
  const auto s = static_cast<uint64_t>(std::llround(std::max(seconds, 0.0)));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llu:%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  }
  return buf;
}

}  // namespace

std::string transfer_status(uint64_t done, uint64_t total, std::chrono::duration<double> elapsed) {
  std::string out = human_bytes(done);
  if (total > 0) out += " / " + human_bytes(total);
  const double seconds = elapsed.count();
  // The first half second says little about the rate.
  if (seconds < 0.5 || done == 0) return out;
  const double rate = static_cast<double>(done) / seconds;
  out += ", " + human_bytes(static_cast<uint64_t>(rate)) + "/s";
  if (total > done) out += ", ETA " + clock_text(static_cast<double>(total - done) / rate);
  return out;
}

TransferProgress::TransferProgress(std::string what, uint64_t total, bool terminal, std::FILE* out)
    : what_(std::move(what)), total_(total), terminal_(terminal), out_(out) {}

TransferProgress::~TransferProgress() {
  finish();
}

void TransferProgress::add_bytes(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += bytes;
  draw_locked(false);
}

void TransferProgress::skip(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  total_ -= std::min(total_, bytes);
}

void TransferProgress::line(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (drawn_) std::fputs("\r\033[K", out_);
  std::fputs((text + "\n").c_str(), out_);
  drawn_ = false;
  draw_locked(true);
}

void TransferProgress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (drawn_) std::fputs("\r\033[K", out_);
  std::fflush(out_);
  drawn_ = false;
  terminal_ = false;  // nothing more is drawn
}

void TransferProgress::draw_locked(bool force) {
  if (!terminal_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const std::string status = what_ + ": " + transfer_status(done_, total_, now - start_);
  std::fputs(("\r\033[K" + status).c_str(), out_);
  std::fflush(out_);
  drawn_ = true;
}

}  // namespace envbuild::common
