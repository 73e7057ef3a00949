#include "oci/digest.hpp"

#include <algorithm>

#include "common/hash.hpp"

namespace envbuild::oci {

namespace {

// image-spec descriptor.md "Digests": algorithm ::= component (separator component)*, component
// [a-z0-9]+, separator [+._-]; encoded [a-zA-Z0-9=_-]+. Matched by hand, without a regex.
bool valid_algorithm(std::string_view algorithm) {
  bool need_char = true;  // at the start and after a separator
  for (char c : algorithm) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      need_char = false;
    } else if ((c == '+' || c == '.' || c == '_' || c == '-') && !need_char) {
      need_char = true;
    } else {
      return false;
    }
  }
  return !need_char;
}

bool valid_encoded(std::string_view encoded) {
  return !encoded.empty() && std::all_of(encoded.begin(), encoded.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' ||
           c == '_' || c == '-';
  });
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || !valid_algorithm(text.substr(0, colon)) ||
      !valid_encoded(text.substr(colon + 1)))
    return fail(Errc::InvalidInput,
                "invalid digest '" + std::string(text) + "': expected '<algorithm>:<encoded>'");
  std::string_view algorithm = text.substr(0, colon);
  if (algorithm != "sha256")
    return fail(Errc::Unsupported, "unsupported digest algorithm '" + std::string(algorithm) +
                                       "' in '" + std::string(text) + "' (only sha256)");
  return from_sha256_hex(text.substr(colon + 1))
      .context("parsing digest '" + std::string(text) + "'");
}

Result<Digest> Digest::from_sha256_hex(std::string_view hex) {
  if (!common::is_lower_hex(hex, 64))
    return fail(Errc::InvalidInput,
                "invalid sha256 hex '" + std::string(hex) + "': want 64 lowercase hex digits");
  return Digest(std::string(hex));
}

}  // namespace envbuild::oci
