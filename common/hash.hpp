#pragma once

// Streaming digests over OpenSSL EVP. The EVP context is an owned C object (pimpl keeps OpenSSL
// headers out of ours).

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace envbuild::common {

enum class HashAlgorithm { Sha256, Md5 };

/// Incremental hash. Not thread-safe; move-only.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm algorithm = HashAlgorithm::Sha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::span<const std::byte> data);
  void update(std::string_view data);
  /// Lowercase hex of the digest; the hasher is reset afterwards.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
/// Hashes a whole file by streaming it.
Result<std::string> sha256_file(const std::string& path);
Result<std::string> md5_file(const std::string& path);

std::string to_hex(std::span<const unsigned char> bytes);
bool is_lower_hex(std::string_view text, size_t length);

}  // namespace envbuild::common
