#pragma once

// Helpers shared by the libFuzzer targets in tests/fuzz (built only with -DENVBUILD_FUZZ=ON).

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace envbuild::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Aborts (a finding for libFuzzer) with a message.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
  std::abort();
}

/// A scratch tree for targets that write files: <base>/sandbox/out. After each input, check()
/// verifies that <base> holds nothing but `sandbox` and `sandbox` nothing but `out` (an entry
/// escaping `out` by `..`, a symlink or a hard link would land in one of them), then clears it.
class Sandbox {
 public:
  Sandbox() {
    const char* tmp = std::getenv("TMPDIR");
    base_ = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
            ("envbuild-fuzz-" + std::to_string(::getpid()));
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
  }
  ~Sandbox() {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  [[nodiscard]] std::filesystem::path sandbox() const { return base_ / "sandbox"; }
  [[nodiscard]] std::filesystem::path out() const { return sandbox() / "out"; }
  [[nodiscard]] const std::filesystem::path& base() const { return base_; }

  /// Fresh sandbox/ (and out/ when `create_out`).
  void reset(bool create_out) {
    std::filesystem::remove_all(sandbox());
    std::filesystem::create_directories(create_out ? out() : sandbox());
  }

  /// `allowed` names a file in base/ the target wrote itself (an input archive).
  void check(std::string_view allowed = {}) const {
    for (const auto& e : std::filesystem::directory_iterator(base_)) {
      auto name = e.path().filename().string();
      if (name != "sandbox" && name != allowed)
        fail("wrote outside the target: " + e.path().string());
    }
    for (const auto& e : std::filesystem::directory_iterator(sandbox())) {
      if (e.path().filename() != "out") fail("wrote outside the target: " + e.path().string());
    }
  }

 private:
  std::filesystem::path base_;
};

}  // namespace envbuild::fuzz
