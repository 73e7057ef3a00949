// Fuzzes lock-file parsing: conda-lock YAML and explicit (@EXPLICIT) files.

#include <cstddef>
#include <cstdint>

#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  (void)envbuild::conda::parse_conda_lock(text, "conda-lock.yml");
  (void)envbuild::conda::parse_explicit_file(text, "explicit.txt");
  return 0;
}
