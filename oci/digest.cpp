#include "oci/digest.hpp"

#include "common/hash.hpp"

namespace envbuild::oci {

Result<Digest> Digest::parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return fail(Errc::InvalidInput,
                "invalid digest '" + std::string(text) + "': expected '<algorithm>:<hex>'");
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
