#pragma once

// Tuning glibc's malloc for work that allocates hundreds of MB in many small blocks (loading
// and solving a large channel: the pool, millions of rules; a walk of shards on a few threads).
//
// With glibc's defaults each big block is a fresh mmap, faulted in 4 KiB at a time and unmapped
// on free, and every thread's arena is fresh memory faulted in 4 KiB at a time; on virtual
// machines page faults are dear (they were half the CPU time of a warm solve from 300k records,
// and a fifth of a cold solve's from shards). back_heap_with_huge_pages() keeps big blocks on
// the heap, keeps freed memory for the next block, and asks the kernel to back the heap with
// transparent huge pages (where THP is "always" or "madvise"; elsewhere the advice is ignored).
// Threads that allocate then call advise_thread_heap() (common/parallel's workers do), which
// gives their arena the same advice: glibc's own `glibc.malloc.hugetlb=1` tunable, which a
// process cannot set for itself once it runs. Address space only: untouched pages cost nothing.

#include <cstdlib>  // and so glibc's <features.h>: __GLIBC__

namespace envbuild::common {

/// Whether malloc here is glibc's: not under a sanitizer, whose allocator replaces it (nor
/// outside glibc). An allocator put in front by LD_PRELOAD is not seen: the advice then lands
/// on its memory, where it is a hint and no more.
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    defined(__SANITIZE_HWADDRESS__)
inline constexpr bool kGlibcMalloc = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
inline constexpr bool kGlibcMalloc = false;
#else
inline constexpr bool kGlibcMalloc = true;
#endif
#else
inline constexpr bool kGlibcMalloc = true;
#endif

/// Whether `block` lies in glibc's main arena (the heap below the program break), by its
/// address alone; else it is a thread arena's (or an allocator's own mmap).
bool in_main_heap(const void* block);

/// Once per process, before the threads that allocate are started; a no-op under a sanitizer
/// (its allocator is not glibc's).
void back_heap_with_huge_pages();

/// The calling thread's malloc arena, when it is one of glibc's thread arenas, gets the advice
/// too; nothing unless back_heap_with_huge_pages() ran.
void advise_thread_heap();

}  // namespace envbuild::common
