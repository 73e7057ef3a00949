#pragma once

// Independent work on a few threads, the one loop every parallel step uses: the calling thread
// works too, items are handed out in index order, and the first failure stops the hand-out.

#include <cstddef>
#include <functional>

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

}  // namespace envbuild::common
