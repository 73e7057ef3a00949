#include "common/heap.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>

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

void advise_thread_heap() {
  if constexpr (!kGlibcMalloc) return;
  if (!advised.load(std::memory_order_acquire)) return;
  // The first allocation binds the thread to its arena. The main arena lies below the program
  // break (advised above); a thread arena is an mmap of its own, above it.
  void* probe = std::malloc(1);
  const auto at = reinterpret_cast<uintptr_t>(probe);
  if (probe && at > reinterpret_cast<uintptr_t>(::sbrk(0))) {
    void* heap = reinterpret_cast<void*>(at & ~(kThreadHeapSize - 1));
    ::madvise(heap, kThreadHeapSize, MADV_HUGEPAGE);
    // Making the arena wrote its first pages before the advice: without a collapse its first
    // 2 MiB would be faulted in 4 KiB at a time (Linux 6.1 and later; elsewhere refused).
    ::madvise(heap, kHugePage, kMadvCollapse);
  }
  std::free(probe);
}

}  // namespace envbuild::common
