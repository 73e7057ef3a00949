#include "common/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "common/heap.hpp"

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
    for (size_t t = 1; t < worker_count(count, jobs); ++t)
      threads.emplace_back([&worker, t] {
        advise_thread_heap();
        worker(t);
      });
    worker(0);
  }
  if (first_error) return std::move(*first_error);
  return ok();
}

Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t)>& task) {
  return for_each_index(count, jobs, [&](size_t i, size_t) { return task(i); });
}

bool GrowingWork::runs_later(const Entry& a, const Entry& b) {
  return a.rank != b.rank ? a.rank < b.rank : a.order > b.order;
}

void GrowingWork::add(Task task, uint64_t rank) {
  {
    std::lock_guard lock(mutex_);
    heap_.push_back(Entry{rank, added_++, std::move(task)});
    std::push_heap(heap_.begin(), heap_.end(), runs_later);
  }
  changed_.notify_one();
}

void GrowingWork::work(size_t worker) {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return error_ || thrown_ || !heap_.empty() || running_ == 0; });
    if (error_ || thrown_ || heap_.empty()) return;  // failed, or nothing queued nor coming
    std::pop_heap(heap_.begin(), heap_.end(), runs_later);
    Task task = std::move(heap_.back().task);
    heap_.pop_back();
    ++running_;
    lock.unlock();
    // A task that throws (bad_alloc) stops the work as a failure does, and run() rethrows it:
    // the other threads must still see it finish.
    Result<void> done = ok();
    std::exception_ptr thrown;
    try {
      done = task(worker);
    } catch (...) {
      thrown = std::current_exception();
    }
    task = nullptr;  // what it holds goes before the next task
    lock.lock();
    --running_;
    if (thrown && !thrown_) thrown_ = thrown;
    if (!done && !error_) error_ = std::move(done).error();
    changed_.notify_all();
  }
}

Result<void> GrowingWork::run(size_t jobs) {
  {
    std::vector<std::jthread> threads;
    for (size_t t = 1; t < std::max<size_t>(jobs, 1); ++t)
      threads.emplace_back([this, t] {
        advise_thread_heap();
        work(t);
      });
    work(0);
  }
  std::lock_guard lock(mutex_);
  heap_.clear();
  if (thrown_) std::rethrow_exception(std::exchange(thrown_, nullptr));
  if (error_) return std::move(*std::exchange(error_, std::nullopt));
  return ok();
}

LaterWork::~LaterWork() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable())
    thread_.join();
  else
    drain();
}

void LaterWork::add(Task task) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  changed_.notify_all();
}

void LaterWork::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  try {
    thread_ = std::jthread([this] {
      advise_thread_heap();
      drain();
    });
  } catch (const std::system_error&) {  // no thread to be had: the destructor runs them
  }
}

void LaterWork::drain() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task();
    } catch (...) {  // NOLINT(bugprone-empty-catch): nobody waits for the result
    }
  }
}

}  // namespace envbuild::common
