#include "common/parallel.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <stdexcept>
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

// Tasks that add tasks (a walk of a tree): every one runs once, on any number of threads.
TEST(GrowingWork, RunsEveryTaskAddedWhileRunning) {
  for (size_t jobs : {1, 2, 8}) {
    GrowingWork work;
    std::atomic<int> ran{0};
    std::function<void(int)> node = [&](int depth) {
      work.add([&, depth](size_t) -> Result<void> {
        ++ran;
        if (depth < 6) {
          node(depth + 1);
          node(depth + 1);
        }
        return ok();
      });
    };
    node(0);
    ASSERT_TRUE(work.run(jobs).has_value());
    EXPECT_EQ(ran.load(), 127) << jobs;  // 2^7 - 1
  }
}

// One thread shows the order: the highest rank first, equal ranks in the order added, and a
// task added while running waits its turn by rank.
TEST(GrowingWork, HighestRankFirstThenOrderAdded) {
  GrowingWork work;
  std::vector<std::string> order;
  auto task = [&](std::string name) {
    return [&order, name](size_t) -> Result<void> {
      order.push_back(name);
      return ok();
    };
  };
  work.add(task("small"), 1);
  work.add([&](size_t) -> Result<void> {
    order.push_back("big");
    work.add(task("added-big"), 9);
    work.add(task("added-small"), 1);
    return ok();
  }, 10);
  work.add(task("small-2"), 1);
  work.add(task("mid"), 5);
  ASSERT_TRUE(work.run(1).has_value());
  EXPECT_EQ(order, (std::vector<std::string>{"big", "added-big", "mid", "small", "small-2",
                                             "added-small"}));
}

// After a failure no task starts; run() returns the failure and nothing is left for a later run.
TEST(GrowingWork, AFailureStopsNewTasksAndComesBack) {
  GrowingWork work;
  std::atomic<int> ran{0};
  work.add([&](size_t) -> Result<void> {
    ++ran;
    return fail(Errc::Io, "first");
  }, 2);
  for (int i = 0; i < 5; ++i)
    work.add([&](size_t) -> Result<void> {
      ++ran;
      return ok();
    }, 1);
  auto r = work.run(1);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().to_string().find("first"), std::string::npos);
  EXPECT_EQ(ran.load(), 1);
  EXPECT_TRUE(work.run(2).has_value());
  EXPECT_EQ(ran.load(), 1);
}

// A task that throws (on the caller's thread or another) stops the work and comes back as
// the exception, once every thread is done: no thread is left waiting for it.
TEST(GrowingWork, AThrowingTaskComesBackAsItsException) {
  for (size_t jobs : {1, 2, 4}) {
    GrowingWork work;
    std::atomic<int> ran{0};
    for (int i = 0; i < 8; ++i)
      work.add([&, i](size_t) -> Result<void> {
        ++ran;
        if (i == 3) throw std::runtime_error("task 3");
        return ok();
      });
    EXPECT_THROW((void)work.run(jobs), std::runtime_error) << jobs;
    EXPECT_LE(ran.load(), 8);
  }
}

// Nothing runs before start(); then one other thread runs every task in the order added,
// those added after start() (and by a task) too, and all are done when the destructor returns.
TEST(LaterWork, RunsNothingBeforeStartThenAllInOrderOnItsThread) {
  std::vector<int> order;  // written by the one worker thread only
  std::atomic<int> ran_before_start{0};
  std::thread::id worker_id;
  {
    LaterWork later;
    for (int i = 0; i < 3; ++i)
      later.add([&, i] {
        order.push_back(i);
        worker_id = std::this_thread::get_id();
      });
    later.add([&] { ++ran_before_start; });
    EXPECT_EQ(ran_before_start.load(), 0);  // no thread until start()
    later.start();
    later.start();  // once is enough
    later.add([&] {
      order.push_back(3);
      later.add([&] { order.push_back(4); });
    });
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ran_before_start.load(), 1);
  EXPECT_NE(worker_id, std::this_thread::get_id());
}

// Work never started (its owner returned early, say on an error) still runs, on the caller's
// thread, before the destructor returns; a task that throws does not stop the next.
TEST(LaterWork, NeverStartedRunsOnTheDestroyingThreadAndSurvivesAThrow) {
  std::vector<std::thread::id> ran_on;
  {
    LaterWork later;
    later.add([&] { ran_on.push_back(std::this_thread::get_id()); });
    later.add([] { throw std::runtime_error("a cache write failed"); });
    later.add([&] { ran_on.push_back(std::this_thread::get_id()); });
  }
  EXPECT_EQ(ran_on,
            (std::vector<std::thread::id>{std::this_thread::get_id(), std::this_thread::get_id()}));
}

}  // namespace
}  // namespace envbuild::common
