#pragma once

// Content digests ("sha256:<64 lowercase hex>"), OCI descriptor.md "Digests".

#include <compare>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::oci {

/// A validated sha256 digest. Built only by parse() or from_sha256_hex(), so every Digest names a
/// well-formed sha256; other algorithms are rejected as Unsupported.
class Digest {
 public:
  Digest() = default;  // an empty digest; valid() is false
  /// Parses "sha256:<64 lowercase hex>"; errors quote the input.
  static Result<Digest> parse(std::string_view text);
  /// From a bare lowercase hex string (what Hasher returns).
  static Result<Digest> from_sha256_hex(std::string_view hex);
  /// The digest of some bytes held in memory (JSON documents, never layers).
  static Digest of(std::string_view bytes);

  [[nodiscard]] bool valid() const noexcept { return !hex_.empty(); }
  [[nodiscard]] std::string_view algorithm() const noexcept { return "sha256"; }
  [[nodiscard]] const std::string& hex() const noexcept { return hex_; }
  /// "sha256:<hex>".
  [[nodiscard]] std::string to_string() const { return "sha256:" + hex_; }
  /// "sha256:<first 12 hex>" for messages.
  [[nodiscard]] std::string short_string() const { return "sha256:" + hex_.substr(0, 12); }

  auto operator<=>(const Digest&) const = default;

 private:
  explicit Digest(std::string hex) : hex_(std::move(hex)) {}
  std::string hex_;
};

}  // namespace envbuild::oci

template <>
struct std::hash<envbuild::oci::Digest> {
  size_t operator()(const envbuild::oci::Digest& d) const noexcept {
    return std::hash<std::string>()(d.hex());
  }
};
