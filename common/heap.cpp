#include "common/heap.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

// The end of the program's data (see end(3)): the main arena's heap starts past it.
extern "C" char end;  // NOLINT(readability-identifier-naming)

namespace envbuild::common {

namespace {


constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
/// glibc's thread arenas are heaps of this size, each aligned to it (HEAP_MAX_SIZE: twice the
/// largest mmap threshold on 64-bit). Were it larger, the advice would cover part of a heap.
constexpr uintptr_t kThreadHeapSize = uintptr_t{64} << 20;

/// MADV_COLLAPSE (Linux 6.1), which Debian 12's headers do not name yet.
constexpr int kMadvCollapse = 25;

std::atomic<bool> advised{false};

}  // namespace

void back_heap_with_huge_pages() {
  if constexpr (!kGlibcMalloc) return;
  // glibc's own tunable does all of it (and sizes thread heaps to the huge page size, which
  // advise_thread_heap's 64 MiB would not match).
  if (const char* tunables = std::getenv("GLIBC_TUNABLES");
      tunables && std::strstr(tunables, "malloc.hugetlb"))
    return;
  static std::once_flag once;
  std::call_once(once, [] {
    constexpr size_t kReserve = size_t{1} << 30;
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(kReserve));
    mallopt(M_TRIM_THRESHOLD, static_cast<int>(kReserve));
    // The next growth of the heap takes the whole reserve; 64 MiB steps after it. A thread
    // arena created after this is made writable whole (its 64 MiB) at once.
    mallopt(M_TOP_PAD, static_cast<int>(kReserve));
    void* probe = std::malloc(kHugePage);
    const auto top = reinterpret_cast<uintptr_t>(::sbrk(0));
    const auto from = (reinterpret_cast<uintptr_t>(probe) + kHugePage - 1) & ~(kHugePage - 1);
    // Only when the probe really came from the heap (brk can fail; then malloc used mmap).
    if (probe && from < top && top - from >= kReserve / 2)
      ::madvise(reinterpret_cast<void*>(from), (top - from) & ~(kHugePage - 1), MADV_HUGEPAGE);
    std::free(probe);
    mallopt(M_TOP_PAD, 64 << 20);
    advised.store(true, std::memory_order_release);
  });
}

bool in_main_heap(const void* block) {
  // The main arena grows the program break from past the program's data (`end`); a thread
  // arena is an mmap of its own, above the break or (legacy layout: `ulimit -s unlimited`)
  // below the program. Only addresses are compared: no allocator's memory is read.
  const auto at = reinterpret_cast<uintptr_t>(block);
  return at >= reinterpret_cast<uintptr_t>(&end) && at < reinterpret_cast<uintptr_t>(::sbrk(0));
}

void advise_thread_heap() {
  if constexpr (!kGlibcMalloc) return;
  if (!advised.load(std::memory_order_acquire)) return;
  // The first allocation binds the thread to its arena.
  void* probe = std::malloc(1);
  const auto at = reinterpret_cast<uintptr_t>(probe);
  if (probe && !in_main_heap(probe)) {
    void* heap = reinterpret_cast<void*>(at & ~(kThreadHeapSize - 1));
    ::madvise(heap, kThreadHeapSize, MADV_HUGEPAGE);
    // Making the arena wrote its first pages before the advice: without a collapse its first
    // 2 MiB would be faulted in 4 KiB at a time (Linux 6.1 and later; elsewhere refused).
    ::madvise(heap, kHugePage, kMadvCollapse);
  }
  std::free(probe);
}

}  // namespace envbuild::common
