#include "common/hash.hpp"

#include <openssl/evp.h>

#include <memory>

#include "common/fs.hpp"
#include "common/root_dir.hpp"

namespace envbuild::common {

struct Hasher::Impl {
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx;
  const EVP_MD* md = nullptr;
};

Hasher::Hasher(HashAlgorithm algorithm) : impl_(std::make_unique<Impl>()) {
  impl_->md = algorithm == HashAlgorithm::Sha256 ? EVP_sha256() : EVP_md5();
  impl_->ctx.reset(EVP_MD_CTX_new());
  ENVB_CHECK(impl_->ctx != nullptr);
  ENVB_CHECK(EVP_DigestInit_ex(impl_->ctx.get(), impl_->md, nullptr) == 1);
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(std::span<const std::byte> data) {
  if (!data.empty()) ENVB_CHECK(EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) == 1);
}
void Hasher::update(std::string_view data) {
  update(std::as_bytes(std::span(data)));
}

std::string Hasher::hex_digest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ENVB_CHECK(EVP_DigestFinal_ex(impl_->ctx.get(), out, &length) == 1);
  ENVB_CHECK(EVP_DigestInit_ex(impl_->ctx.get(), impl_->md, nullptr) == 1);
  return to_hex(std::span<const unsigned char>(out, length));
}

std::string sha256_hex(std::string_view data) {
  Hasher hasher;
  hasher.update(data);
  return hasher.hex_digest();
}

namespace {
Result<std::string> hash_file(const std::string& path, HashAlgorithm algorithm) {
  ENVB_ASSIGN_OR_RETURN(Fd fd, open_regular_file(path));
  Hasher hasher(algorithm);
  // Not zero-filled: a vector's 1 MiB memset costs more than hashing a small file.
  constexpr size_t kSize = 1 << 20;
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(kSize);
  for (;;) {
    ENVB_ASSIGN_OR_RETURN(size_t n, fd.read_some(std::span(buffer.get(), kSize)));
    if (n == 0) break;
    hasher.update(std::span(buffer.get(), n));
  }
  return hasher.hex_digest();
}
}  // namespace

Result<std::string> sha256_file(const std::string& path) {
  return hash_file(path, HashAlgorithm::Sha256);
}
Result<std::string> md5_file(const std::string& path) {
  return hash_file(path, HashAlgorithm::Md5);
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

}  // namespace envbuild::common
