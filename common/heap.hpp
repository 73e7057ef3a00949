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

namespace envbuild::common {

/// Once per process, before the threads that allocate are started; a no-op under a sanitizer
/// (its allocator is not glibc's).
void back_heap_with_huge_pages();

/// The calling thread's malloc arena, when it is one of glibc's thread arenas, gets the advice
/// too; nothing unless back_heap_with_huge_pages() ran.
void advise_thread_heap();

}  // namespace envbuild::common
