#pragma once

namespace envbuild {
/// envbuild's own version; also part of layer cache keys (see docs/design.md).
inline constexpr const char* kVersion = "0.1.0";
}  // namespace envbuild
