#include "builder/solve/solv/internal/libc_wraps.hpp"

#include <algorithm>

namespace {

template <size_t Size>
struct Element {
  unsigned char bytes[Size];
};

template <size_t Size>
void stable_sort_of(void* base, size_t count, QsortCompare compare, void* data) {
  auto* first = static_cast<Element<Size>*>(base);
  std::stable_sort(first, first + count, [&](const Element<Size>& a, const Element<Size>& b) {
    return compare(&a, &b, data) < 0;
  });
}

}  // namespace

extern "C" void __wrap_qsort_r(void* base, size_t count, size_t size, QsortCompare compare,
                               void* data) {
  switch (size) {
    case 4: return stable_sort_of<4>(base, count, compare, data);
    case 8: return stable_sort_of<8>(base, count, compare, data);
    case 12: return stable_sort_of<12>(base, count, compare, data);
    case 16: return stable_sort_of<16>(base, count, compare, data);
    case 20: return stable_sort_of<20>(base, count, compare, data);
    case 24: return stable_sort_of<24>(base, count, compare, data);
    case 28: return stable_sort_of<28>(base, count, compare, data);
    case 32: return stable_sort_of<32>(base, count, compare, data);
    default: return __real_qsort_r(base, count, size, compare, data);
  }
}

extern "C" int __wrap_getc(FILE* file) {
  return getc_unlocked(file);
}

extern "C" int __wrap_putc(int c, FILE* file) {
  return putc_unlocked(c, file);
}
