// Digest::of apart from digest.cpp: parsing a digest must not pull OpenSSL (common::sha256_hex)
// into a program that never hashes (the envrun launcher links reference and digest parsing only).

#include "common/hash.hpp"
#include "oci/digest.hpp"

namespace envbuild::oci {

Digest Digest::of(std::string_view bytes) {
  return Digest(common::sha256_hex(bytes));
}

}  // namespace envbuild::oci
