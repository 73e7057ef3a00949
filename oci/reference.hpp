#pragma once

// Image references in skopeo's transport syntax (containers-transports(5)):
//   oci:DIR[:TAG]  oci-archive:FILE[:TAG]  docker-archive:FILE[:NAME[:TAG]]
//   docker://[HOST/]REPO[:TAG|@sha256:HEX]

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "oci/digest.hpp"

namespace envbuild::oci {

enum class Transport { OciLayout, OciArchive, DockerArchive, Registry };

struct ImageReference {
  Transport transport = Transport::OciLayout;
  std::string path;  // DIR or FILE; empty for Registry
  std::string tag;   // oci/oci-archive TAG; docker-archive/registry tag ("" = none given)
  std::string name;  // docker-archive NAME (may include a host); registry repository
  std::string host;  // registry host ("docker.io" when none is written)
  Digest digest;     // registry @sha256:...

  static Result<ImageReference> parse(std::string_view text);
  /// Round-trips parse() (Docker Hub's implied host and library/ are written out).
  [[nodiscard]] std::string to_string() const;

  bool operator==(const ImageReference&) const = default;
};

/// The distribution-spec and docker reference grammar, matched by hand (never std::regex on
/// input: its backtracking recurses, and a long name overflowed the stack).

/// A repository name: path components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by '/'.
/// ".", "..", empty components and upper-case letters are not names, so no name reaches a path
/// outside /v2/<name>/.
bool is_valid_repository_name(std::string_view name);

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
bool is_valid_tag(std::string_view tag);

/// A registry host: DNS labels (`[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`) joined by
/// '.', or an IPv6 address in brackets, with an optional ":PORT" (1-65535). No user info, no
/// path, nothing a URL parser could read as another host.
bool is_valid_registry_host(std::string_view host);

/// The longest "HOST/NAME" (docker's NameTotalLengthMax; distribution-spec's 255 characters).
inline constexpr size_t kMaxReferenceNameLength = 255;

/// Splits "[HOST/]REPO[:TAG][@sha256:HEX]" the way Docker does: the first component is a host
/// when it has a '.' or ':' or is "localhost"; otherwise the host is docker.io and one-component
/// names get "library/".
Result<ImageReference> parse_docker_reference(std::string_view text);

}  // namespace envbuild::oci
