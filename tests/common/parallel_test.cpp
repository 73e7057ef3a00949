#include "common/parallel.hpp"

#include <gtest/gtest.h>

#include <atomic>
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

}  // namespace
}  // namespace envbuild::common
