#include "builder/solve/solv/internal/libc_wraps.hpp"

#include <algorithm>
#include <cstdint>

namespace {

/// The largest power of two, up to 8, that divides `size`: what an element of that size can be
/// aligned to, and so what libsolv's comparators may read it as (Id, Offset, pointers).
constexpr size_t alignment_for(size_t size) {
  return size % 8 == 0 ? 8 : size % 4 == 0 ? 4 : size % 2 == 0 ? 2 : 1;
}

template <size_t Size>
struct alignas(alignment_for(Size)) Element {
  unsigned char bytes[Size];
};

template <size_t Size>
bool stable_sort_of(void* base, size_t count, QsortCompare compare, void* data) {
  // The comparator is also given the sort's own copies (its buffer, a held element): aligned
  // as the element type is. An array that is not goes to glibc.
  if (reinterpret_cast<uintptr_t>(base) % alignof(Element<Size>) != 0) return false;
  auto* first = static_cast<Element<Size>*>(base);
  std::stable_sort(first, first + count, [compare, data](const Element<Size>& a,
                                                         const Element<Size>& b) {
    return compare(&a, &b, data) < 0;
  });
  return true;
}

bool sorted_here(void* base, size_t count, size_t size, QsortCompare compare, void* data) {
  switch (size) {
    case 4: return stable_sort_of<4>(base, count, compare, data);
    case 8: return stable_sort_of<8>(base, count, compare, data);
    case 12: return stable_sort_of<12>(base, count, compare, data);
    case 16: return stable_sort_of<16>(base, count, compare, data);
    case 20: return stable_sort_of<20>(base, count, compare, data);
    case 24: return stable_sort_of<24>(base, count, compare, data);
    case 28: return stable_sort_of<28>(base, count, compare, data);
    case 32: return stable_sort_of<32>(base, count, compare, data);
    default: return false;
  }
}

}  // namespace

extern "C" void __wrap_qsort_r(void* base, size_t count, size_t size, QsortCompare compare,
                               void* data) {
  if (!sorted_here(base, count, size, compare, data))
    __real_qsort_r(base, count, size, compare, data);
}

// glibc's getc and putc take no lock on a FILE set to FSETLOCKING_BYCALLER either: for those
// these are the same operation, inline. Any other FILE goes to glibc.
extern "C" int __wrap_getc(FILE* file) {
  return (file->_flags & _IO_USER_LOCK) ? getc_unlocked(file) : __real_getc(file);
}

extern "C" int __wrap_putc(int c, FILE* file) {
  return (file->_flags & _IO_USER_LOCK) ? putc_unlocked(c, file) : __real_putc(c, file);
}
