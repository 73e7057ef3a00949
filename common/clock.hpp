#pragma once

// The one clock that phase timings (`--timings`, build and install reports) are measured with.

#include <chrono>

namespace envbuild::common {

using Clock = std::chrono::steady_clock;

/// Milliseconds from `start` until now.
inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace envbuild::common
