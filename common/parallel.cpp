#include "common/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace envbuild::common {

Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t)>& task) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::optional<Error> first_error;
  auto worker = [&] {
    for (size_t i; !failed.load() && (i = next.fetch_add(1)) < count;) {
      auto r = task(i);
      if (!r) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::move(r).error();
        failed.store(true);
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(std::max<size_t>(jobs, 1), count); ++t)
    threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (first_error) return std::move(*first_error);
  return ok();
}

}  // namespace envbuild::common
