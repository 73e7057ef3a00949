#pragma once

// Conda platforms (subdirs) and the `# [selector]` names they satisfy.

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

/// A conda subdir such as `linux-64`, `osx-arm64`, `win-64` or `noarch`.
class Platform {
 public:
  enum class Os { None, Linux, Osx, Win, Emscripten, Wasi, Zos, FreeBsd };

  /// `noarch`.
  Platform() = default;
  /// Accepts every subdir conda knows (linux-{32,64,aarch64,armv6l,armv7l,ppc64,ppc64le,
  /// riscv64,s390x}, osx-{64,arm64}, win-{32,64,arm64}, emscripten-wasm32, wasi-wasm32,
  /// zos-z, freebsd-64, noarch); anything else is an error with a did-you-mean hint. The names
  /// are plain words: a subdir can name a directory.
  static Result<Platform> parse(std::string_view subdir);
  /// Every known subdir, sorted.
  static std::vector<std::string_view> known();

  [[nodiscard]] const std::string& to_string() const noexcept { return subdir_; }
  [[nodiscard]] Os os() const noexcept { return os_; }
  /// The part after the dash: `64`, `aarch64`, `arm64`... (empty for noarch).
  [[nodiscard]] std::string_view arch() const noexcept;
  [[nodiscard]] bool is_noarch() const noexcept { return os_ == Os::None; }
  [[nodiscard]] bool is_unix() const noexcept { return os_ == Os::Linux || os_ == Os::Osx; }

  /// Whether a conda-build style selector name holds for this platform. Known names: `linux`,
  /// `osx`, `win`, `unix`, `linux64`, `linux32`, `osx64`, `win64`, `win32`, `aarch64`
  /// (linux-aarch64), `arm64` (osx-arm64, win-arm64; as conda-lock and conda-build), `x86_64`,
  /// `x86`, `ppc64le`, `s390x`, `armv7l`, `emscripten`, and the subdir itself with `-` or `_`
  /// (`linux-64`, `linux_64`). Unknown names are false.
  [[nodiscard]] bool satisfies(std::string_view selector) const;

  auto operator<=>(const Platform& other) const { return subdir_ <=> other.subdir_; }
  bool operator==(const Platform& other) const { return subdir_ == other.subdir_; }

 private:
  std::string subdir_ = "noarch";
  Os os_ = Os::None;
};

/// The subdir of the machine this runs on ("linux-64", "linux-aarch64", ...), from uname.
std::string host_subdir();

/// Evaluates a `# [expr]` selector: names (see Platform::satisfies), `not`, `and`, `or` and
/// parentheses. Anything else (comparisons such as `py>=38`) is an Unsupported error.
Result<bool> evaluate_selector(std::string_view expression, const Platform& platform);

}  // namespace envbuild::conda
