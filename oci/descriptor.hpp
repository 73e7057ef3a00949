#pragma once

// Descriptors and platforms (OCI descriptor.md, image-index.md "platform").

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "oci/digest.hpp"

namespace envbuild::oci {

inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";
inline constexpr std::string_view kAnnotationCreated = "org.opencontainers.image.created";

using Annotations = std::map<std::string, std::string>;

struct Platform {
  std::string architecture;  // GOARCH names: amd64, arm64, ppc64le
  std::string os;            // linux
  std::string variant;       // "v8" for arm64; empty when not set
  std::string os_version;
  std::vector<std::string> os_features;

  auto operator<=>(const Platform&) const = default;
  /// "linux/amd64" or "linux/arm64/v8".
  [[nodiscard]] std::string to_string() const;
};

/// Parses "os/arch[/variant]" (what --platform takes).
Result<Platform> parse_platform(std::string_view text);
/// The platform this binary was built for, in GOARCH names.
Platform host_platform();

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  Annotations annotations;
  std::optional<Platform> platform;
  std::string artifact_type;

  auto operator<=>(const Descriptor&) const = default;
};

void to_json(nlohmann::json& j, const Platform& p);
void to_json(nlohmann::json& j, const Descriptor& d);
Result<Platform> platform_from_json(const nlohmann::json& j);
Result<Descriptor> descriptor_from_json(const nlohmann::json& j);

}  // namespace envbuild::oci
