#pragma once

// Independent work on a few threads: for_each_index() for a list known up front (items handed
// out in index order), GrowingWork for work that finds more work as it runs (a walk of shards,
// files cut into pieces). In both the calling thread works too, and the first failure stops
// the hand-out. LaterWork holds work nobody waits for (cache files) until a core is idle.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/result.hpp"

namespace envbuild::common {

/// How many threads for_each_index() runs for `count` items and `jobs` (at least 1, at most
/// count): the size of a per-worker table such as one HTTP client per thread.
size_t worker_count(size_t count, size_t jobs);

/// Runs task(i, worker) for every i in [0, count) on worker_count(count, jobs) threads, the
/// caller's being worker 0; `worker` says which thread runs the item, so that a caller can keep
/// per-thread state (a connection) without locking. After the first failure no new index is
/// started; the ones running finish, and the error of the lowest failed index is returned (the
/// same one whatever the thread timing, as items are handed out in order).
Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t index, size_t worker)>& task);

/// The same without the worker number.
Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t index)>& task);

/// Work that grows as it runs: run() runs every task added, before it or by a running task,
/// on up to `jobs` threads (the caller's is worker 0), and returns when no task is left or
/// running. A task added starts as soon as a thread is free: the highest `rank` first, then
/// the earliest added (so equal ranks run in the order added). On a failure no new task
/// starts, and the first failure reported is returned (a task that throws stops the work too,
/// and run() rethrows it once every thread is done). add() may be called from any thread.
class GrowingWork {
 public:
  using Task = std::function<Result<void>(size_t worker)>;
  void add(Task task, uint64_t rank = 0);
  Result<void> run(size_t jobs);

 private:
  struct Entry {
    uint64_t rank = 0;
    uint64_t order = 0;
    Task task;
  };
  /// The heap's order: `a` runs after `b` (lower rank, or equal rank and added later).
  static bool runs_later(const Entry& a, const Entry& b);
  void work(size_t worker);

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Entry> heap_;  // std::push_heap order: the next task on top
  uint64_t added_ = 0;
  size_t running_ = 0;
  std::optional<Error> error_;
  std::exception_ptr thrown_;
};

/// Work whose result nobody waits for, such as writing to a cache what a solve has already
/// read: added from any thread while the work that matters runs, started when that work leaves
/// a core idle (a solve's last, one-threaded step), done before its owner is destroyed. Until
/// start(), nothing runs; after it one thread runs the tasks in the order added, and those
/// added later. The destructor runs what was never started on the calling thread and waits for
/// the rest, so every task has run when it returns; so does it when no thread could be
/// started. A task must not throw (one that does is stopped there; the others still run).
class LaterWork {
 public:
  using Task = std::function<void()>;
  LaterWork() = default;
  LaterWork(const LaterWork&) = delete;
  LaterWork& operator=(const LaterWork&) = delete;
  ~LaterWork();
  void add(Task task);
  void start();

 private:
  void drain();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::jthread thread_;
};

}  // namespace envbuild::common
