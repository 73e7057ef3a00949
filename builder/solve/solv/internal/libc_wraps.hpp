#pragma once

// libsolv's calls into libc that envbuild routes to its own functions at link time: every
// binary that links libsolv is linked with -Wl,--wrap=qsort_r,--wrap=getc,--wrap=putc (and
// -Wl,--undefined=__wrap_qsort_r, so that this file's object is taken out of its archive). Only
// the objects linked into the binary are rewired (libsolv is a static library); calls from
// shared libraries still reach glibc.
//
// qsort_r (libsolv's solv_sort: rules, whatprovides lists, repodata keys): glibc's (2.36) is a
// merge sort that moves elements through a loop over their bytes and calls the comparator
// through a pointer. Elements of a fixed size (4 to 32 bytes, in an array aligned for them) are
// sorted with std::stable_sort, whose merges move them inline: the sort of the solver's rules
// (solver_unifyrules, about half of libsolv's time on a large environment) takes about a third
// less. Both sorts are stable, and a stable sort's output is fully determined by a consistent
// comparator (a strict weak order, as libsolv's are: they read only the elements), so every
// libsolv sort gives the order it gave before, byte for byte, and the same on a glibc whose
// qsort is not stable (glibc 2.36 itself falls back to an unstable quicksort only when its
// buffer would take a quarter of physical memory). Other sizes go to glibc.
//
// getc and putc (libsolv's JSON reader and its .solv reader and writer, one call per byte): on
// a FILE set to FSETLOCKING_BYCALLER, getc_unlocked and putc_unlocked, which read and write
// stdio's buffer inline instead of calling into libc for every byte. glibc takes no lock on
// such a FILE either, so nothing changes for any caller; solv::Pool sets it on every FILE it
// hands libsolv (each used by that one call, on one thread). Other FILEs go to glibc.

#include <cstddef>
#include <cstdio>

extern "C" {
using QsortCompare = int (*)(const void*, const void*, void*);
void __wrap_qsort_r(void* base, size_t count, size_t size, QsortCompare compare, void* data);
void __real_qsort_r(void* base, size_t count, size_t size, QsortCompare compare, void* data);
int __wrap_getc(FILE* file);
int __real_getc(FILE* file);
int __wrap_putc(int c, FILE* file);
int __real_putc(int c, FILE* file);
}
