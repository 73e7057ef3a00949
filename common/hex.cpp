// is_lower_hex (declared in hash.hpp) apart from the OpenSSL code of hash.cpp: parsing a digest
// must not pull libcrypto into a program that never hashes (the envrun launcher).

#include "common/hash.hpp"

namespace envbuild::common {

bool is_lower_hex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace envbuild::common
