#pragma once

// libsolv sorts through qsort_r (solv_sort): rules, whatprovides lists, repodata keys. Every
// binary that links libsolv is linked with -Wl,--wrap=qsort_r (and -Wl,--undefined for the
// wrapper, so that it is taken out of its archive), which sends libsolv's calls here; calls
// from shared libraries still reach glibc.
//
// glibc's qsort_r (2.36) is a merge sort that moves elements through a loop over their bytes
// and calls the comparator through a pointer. The wrapper sorts elements of a fixed size
// (4 to 32 bytes) with std::stable_sort, whose merges move them inline: the sort of the
// solver's rules (solver_unifyrules, about half of libsolv's time on a large environment) takes
// about a third less. Both sorts are stable, and a stable sort's output is fully determined
// by the comparator, so every libsolv sort gives the order it gave before, byte for byte
// (and the same on a glibc whose qsort is not stable). Other sizes go to glibc.

#include <cstddef>

extern "C" {
using QsortCompare = int (*)(const void*, const void*, void*);
void __wrap_qsort_r(void* base, size_t count, size_t size, QsortCompare compare, void* data);
void __real_qsort_r(void* base, size_t count, size_t size, QsortCompare compare, void* data);
}
