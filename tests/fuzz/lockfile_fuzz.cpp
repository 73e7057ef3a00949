// Fuzzes lock-file parsing: conda-lock YAML, pixi.lock and explicit (@EXPLICIT) files.

#include <cstddef>
#include <cstdint>

#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"
#include "conda/lockfile_pixi.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = envbuild::fuzz::as_text(data, size);
  (void)envbuild::conda::parse_conda_lock(text, "conda-lock.yml");
  (void)envbuild::conda::parse_explicit_file(text, "explicit.txt");
  if (auto pixi = envbuild::conda::parse_pixi_lock(text, "pixi.lock")) {
    for (const auto& env : pixi->environments)
      for (const auto& platform : env.platforms)
        if (auto packages = pixi->packages_for(env, platform.name))
          for (const auto* p : *packages) (void)p->is_url();
  }
  (void)envbuild::conda::looks_like_pixi_lock(text);
  return 0;
}
