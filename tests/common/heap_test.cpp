#include "common/heap.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <sstream>
#include <string>

#include "common/parallel.hpp"

namespace envbuild::common {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcMalloc = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif
#else
constexpr bool kGlibcMalloc = true;
#endif

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

/// The flags of a block a worker thread allocates, for each of common/parallel's kinds of
/// worker: for_each_index's, GrowingWork's and LaterWork's.
std::vector<std::string> worker_block_flags() {
  std::vector<std::string> flags;
  std::mutex mutex;
  auto look = [&] {
    std::unique_ptr<char[]> block(new char[256 << 10]);
    block[0] = 1;
    std::lock_guard lock(mutex);
    flags.push_back(vm_flags_of(block.get()));
  };
  // Two items on two threads: the caller (worker 0) holds its item until worker 1, a thread
  // of its own, has looked, so that worker 1 surely takes the other one.
  std::atomic<bool> looked{false};
  auto take = [&](size_t worker) -> Result<void> {
    if (worker == 1 && !looked.exchange(true)) {
      look();
      looked.notify_all();
    }
    if (worker == 0) looked.wait(false);
    return ok();
  };
  EXPECT_TRUE(for_each_index(2, 2, [&](size_t, size_t worker) { return take(worker); }));
  looked = false;
  GrowingWork growing;
  for (int i = 0; i < 2; ++i) growing.add(take);
  EXPECT_TRUE(growing.run(2));
  {
    LaterWork later;
    later.add(look);
    later.start();
  }
  return flags;
}

// A solve allocates hundreds of MB on worker threads; their arenas get the main heap's advice
// (glibc's hugetlb tunable, which the process cannot set for itself), so that the kernel backs
// them with huge pages where it does: "hg" is MADV_HUGEPAGE's mark on a mapping.
TEST(Heap, WorkerThreadsArenasGetTheHeapsAdvice) {
  back_heap_with_huge_pages();
  const std::vector<std::string> flags = worker_block_flags();
  ASSERT_EQ(flags.size(), 3u);
  for (const std::string& f : flags) {
    if (kGlibcMalloc && kernel_has_thp())
      EXPECT_NE(f.find(" hg "), std::string::npos) << f;
    else  // a sanitizer's allocator is not glibc's: left alone
      EXPECT_EQ(f.find(" hg "), std::string::npos) << f;
  }
  // Twice is once.
  back_heap_with_huge_pages();
  advise_thread_heap();
}

}  // namespace
}  // namespace envbuild::common
