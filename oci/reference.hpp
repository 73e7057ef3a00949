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

/// Splits "[HOST/]REPO[:TAG][@sha256:HEX]" the way Docker does: the first component is a host
/// when it has a '.' or ':' or is "localhost"; otherwise the host is docker.io and one-component
/// names get "library/".
Result<ImageReference> parse_docker_reference(std::string_view text);

}  // namespace envbuild::oci
