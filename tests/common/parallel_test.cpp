#include "common/parallel.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace envbuild::common {
namespace {

TEST(ForEachIndex, RunsEveryIndexOnceOnAnyNumberOfThreads) {
  for (size_t jobs : {0u, 1u, 3u, 64u}) {
    std::vector<std::atomic<int>> runs(100);
    auto r = for_each_index(runs.size(), jobs, [&](size_t i) -> Result<void> {
      ++runs[i];
      return ok();
    });
    ASSERT_TRUE(r) << r.error().to_string();
    for (const auto& n : runs) EXPECT_EQ(n.load(), 1) << "jobs " << jobs;
  }
  EXPECT_TRUE(for_each_index(0, 4, [](size_t) -> Result<void> { return ok(); }));
}

TEST(ForEachIndex, TheFirstErrorStopsNewWorkAndComesBack) {
  std::atomic<size_t> started{0};
  auto r = for_each_index(1000, 1, [&](size_t i) -> Result<void> {
    ++started;
    if (i == 3) return fail(Errc::InvalidInput, "item 3 is bad");
    return ok();
  });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("item 3 is bad"), std::string::npos);
  EXPECT_EQ(started.load(), 4u);
}

// Each worker number is one thread's at a time (so per-worker state needs no lock), the caller's
// thread is worker 0, and of several failures the lowest index is the one returned.
TEST(ForEachIndex, WorkerNumbersAreThreadsAndTheLowestFailureWins) {
  const size_t jobs = 4;
  ASSERT_EQ(worker_count(100, jobs), 4u);
  EXPECT_EQ(worker_count(2, jobs), 2u);
  EXPECT_EQ(worker_count(0, jobs), 1u);
  std::vector<std::atomic<int>> busy(worker_count(100, jobs));
  std::atomic<bool> overlapped{false};
  std::atomic<bool> caller_is_zero{true};
  const auto caller = std::this_thread::get_id();
  auto r = for_each_index(100, jobs, [&](size_t i, size_t worker) -> Result<void> {
    if (busy[worker]++ != 0) overlapped = true;
    if ((std::this_thread::get_id() == caller) != (worker == 0)) caller_is_zero = false;
    busy[worker]--;
    if (i == 7 || i == 9) return fail(Errc::InvalidInput, "item " + std::to_string(i));
    return ok();
  });
  EXPECT_FALSE(overlapped.load());
  EXPECT_TRUE(caller_is_zero.load());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "item 7");
}

}  // namespace
}  // namespace envbuild::common
