#pragma once

// Independent work on a few threads: the calling thread works too, and the first error stops
// the hand-out of new items.

#include <cstddef>
#include <functional>

#include "common/result.hpp"

namespace envbuild::common {

/// Runs task(i) for every i in [0, count) on up to `jobs` threads (the caller's included). After
/// the first error no new index is started; the ones running finish, and that error is returned.
Result<void> for_each_index(size_t count, size_t jobs,
                            const std::function<Result<void>(size_t)>& task);

}  // namespace envbuild::common
