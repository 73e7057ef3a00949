#include "common/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace envbuild::common {

size_t worker_count(size_t count, size_t jobs) {
  return std::max<size_t>(1, std::min(jobs, count));
}

Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t, size_t)>& task) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  size_t failed_index = count;
  std::optional<Error> first_error;
  auto worker = [&](size_t self) {
    for (size_t i; !failed.load() && (i = next.fetch_add(1)) < count;) {
      auto r = task(i, self);
      if (r) continue;
      std::lock_guard<std::mutex> lock(mutex);
      if (i < failed_index) {
        failed_index = i;
        first_error = std::move(r).error();
      }
      failed.store(true);
    }
  };
  {
    std::vector<std::jthread> threads;
    for (size_t t = 1; t < worker_count(count, jobs); ++t) threads.emplace_back(worker, t);
    worker(0);
  }
  if (first_error) return std::move(*first_error);
  return ok();
}

Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t)>& task) {
  return for_each_index(count, jobs, [&](size_t i, size_t) { return task(i); });
}

}  // namespace envbuild::common
