#pragma once

namespace envbuild {
/// envbuild's own version; also part of layer cache keys (see docs/design.md).
inline constexpr const char* kVersion = "0.1.0";
/// Bumped whenever the bytes of a layer for the same inputs would change.
inline constexpr int kLayerFormatVersion = 1;
}  // namespace envbuild
