#include "common/heap.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "common/parallel.hpp"

namespace envbuild::common {
namespace {

/// The VmFlags line of the mapping holding `address` ("rd wr mr mw me ac hg"), from smaps.
std::string vm_flags_of(const void* address) {
  const auto at = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> start >> dash >> end && dash == '-') {
      inside = start <= at && at < end;
      continue;
    }
    if (inside && line.starts_with("VmFlags:")) return line.substr(8) + " ";
  }
  return "(not mapped)";
}

/// Whether the kernel takes advice on transparent huge pages at all (built with them).
bool kernel_has_thp() {
  return std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled");
}

/// The flags of the mapping of a block a worker thread allocates, and whether the block lies
/// in a thread arena (not the main heap: a worker that got the main arena proves nothing).
struct Look {
  std::string flags;
  bool thread_arena = false;
};

Look look() {
  std::unique_ptr<char[]> block(new char[256 << 10]);
  block[0] = 1;
  return {vm_flags_of(block.get()), !in_main_heap(block.get())};
}

void expect_advised(const Look& seen) {
  if (kGlibcMalloc && kernel_has_thp()) {
    EXPECT_TRUE(seen.thread_arena);
    EXPECT_NE(seen.flags.find(" hg "), std::string::npos) << seen.flags;
  } else {  // a sanitizer's allocator is not glibc's: left alone
    EXPECT_EQ(seen.flags.find(" hg "), std::string::npos) << seen.flags;
  }
}

// A solve allocates hundreds of MB on worker threads; their arenas get the main heap's advice
// (glibc's hugetlb tunable, which the process cannot set for itself), so that the kernel backs
// them with huge pages where it does: "hg" is MADV_HUGEPAGE's mark on a mapping. One test per
// kind of worker: glibc hands an exited thread's arena to the next thread, so each kind must
// be the first to run in its process (as ctest runs each test) to show its own advice.
TEST(Heap, ForEachIndexWorkersArenasGetTheHeapsAdvice) {
  back_heap_with_huge_pages();
  // Two items on two threads: the caller (worker 0) holds its item until worker 1, a thread
  // of its own, has looked, so that worker 1 surely takes the other one.
  std::atomic<bool> looked{false};
  Look seen;
  EXPECT_TRUE(for_each_index(2, 2, [&](size_t, size_t worker) -> Result<void> {
    if (worker == 1 && !looked.exchange(true)) {
      seen = look();
      looked.notify_all();
    }
    if (worker == 0) looked.wait(false);
    return ok();
  }));
  ASSERT_TRUE(looked);
  expect_advised(seen);
  // Twice is once.
  back_heap_with_huge_pages();
  advise_thread_heap();
}

TEST(Heap, GrowingWorkWorkersArenasGetTheHeapsAdvice) {
  back_heap_with_huge_pages();
  std::atomic<bool> looked{false};
  Look seen;
  GrowingWork growing;
  for (int i = 0; i < 2; ++i)
    growing.add([&](size_t worker) -> Result<void> {
      if (worker == 1 && !looked.exchange(true)) {
        seen = look();
        looked.notify_all();
      }
      if (worker == 0) looked.wait(false);
      return ok();
    });
  EXPECT_TRUE(growing.run(2));
  ASSERT_TRUE(looked);
  expect_advised(seen);
}

TEST(Heap, LaterWorksArenaGetsTheHeapsAdvice) {
  back_heap_with_huge_pages();
  Look seen;
  {
    LaterWork later;
    later.add([&] { seen = look(); });
    later.start();
  }
  expect_advised(seen);
}

}  // namespace
}  // namespace envbuild::common
