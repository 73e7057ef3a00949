// Fuzzes environment.yml parsing (YAML, selectors, pip section) for two targets.

#include <cstddef>
#include <cstdint>

#include "conda/environment_file.hpp"
#include "conda/platform.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace envbuild::conda;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Platform linux64 = Platform::parse("linux-64").value();
  static const Platform win64 = Platform::parse("win-64").value();
  auto text = envbuild::fuzz::as_text(data, size);
  for (const auto* platform : {&linux64, &win64}) {
    EnvironmentFileOptions options;
    options.target = *platform;
    (void)parse_environment_file(text, options);
  }
  return 0;
}
