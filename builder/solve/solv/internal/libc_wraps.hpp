#pragma once

// libsolv's calls into libc that envbuild routes to its own functions at link time: every
// binary that links libsolv is linked with -Wl,--wrap=qsort_r,--wrap=getc,--wrap=putc (and
// -Wl,--undefined=__wrap_qsort_r, so that this file's object is taken out of its archive). Only
// the objects linked into the binary are rewired (libsolv is a static library); calls from
// shared libraries still reach glibc.
//
// qsort_r (libsolv's solv_sort: rules, whatprovides lists, repodata keys): glibc's (2.36) is a
// merge sort that moves elements through a loop over their bytes and calls the comparator
// through a pointer. Elements of a fixed size (4 to 32 bytes) are sorted with
// std::stable_sort, whose merges move them inline: the sort of the solver's rules
// (solver_unifyrules, about half of libsolv's time on a large environment) takes about a third
// less. Both sorts are stable, and a stable sort's output is fully determined by the
// comparator, so every libsolv sort gives the order it gave before, byte for byte (and the
// same on a glibc whose qsort is not stable). Other sizes go to glibc.
//
// getc and putc (libsolv's JSON reader and its .solv reader and writer, one byte per call): as
// getc_unlocked and putc_unlocked, which read and write stdio's buffer inline instead of
// calling into libc for every byte. Safe because every FILE libsolv is given is opened by
// solv::Pool for that one call, on the calling thread, and closed after it: no other thread
// ever uses it, so stdio's lock has nothing to guard.

#include <cstddef>
#include <cstdio>

extern "C" {
using QsortCompare = int (*)(const void*, const void*, void*);
void __wrap_qsort_r(void* base, size_t count, size_t size, QsortCompare compare, void* data);
void __real_qsort_r(void* base, size_t count, size_t size, QsortCompare compare, void* data);
int __wrap_getc(FILE* file);
int __wrap_putc(int c, FILE* file);
}
