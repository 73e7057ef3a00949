#pragma once

// Image manifest, image index and image config (OCI manifest.md, image-index.md, config.md),
// with canonical JSON: sorted keys, no whitespace, so the same value always has the same digest.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "oci/descriptor.hpp"
#include "oci/media_type.hpp"

namespace envbuild::oci {

struct Manifest {
  int schema_version = 2;
  std::string media_type = std::string(media_type::kOciManifest);
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  Annotations annotations;

  auto operator<=>(const Manifest&) const = default;
};

struct Index {
  int schema_version = 2;
  std::string media_type = std::string(media_type::kOciIndex);
  std::vector<Descriptor> manifests;
  Annotations annotations;

  auto operator<=>(const Index&) const = default;
};

struct History {
  std::string created;  // RFC 3339; empty when unknown
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;

  auto operator<=>(const History&) const = default;
};

/// The "config" section of an image config (what a runtime uses to start the container). Fields
/// we do not model (ExposedPorts, Volumes, StopSignal, ...) are kept in `extra` so that changing
/// a base image's config does not lose them.
struct ContainerConfig {
  std::string user;
  std::vector<std::string> env;  // KEY=VALUE
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  nlohmann::json extra = nlohmann::json::object();

  bool operator==(const ContainerConfig&) const = default;
};

struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  std::string created;  // RFC 3339; empty when unset
  std::string author;
  ContainerConfig config;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids, base layer first
  std::vector<History> history;
  nlohmann::json extra = nlohmann::json::object();

  bool operator==(const ImageConfig&) const = default;

  /// Sets (or replaces) KEY in config.Env.
  void set_env(std::string_view key, std::string_view value);
  [[nodiscard]] Platform platform() const;
};

/// Compact JSON with sorted keys (nlohmann's std::map ordering): the bytes that get digested.
std::string canonical_json(const nlohmann::json& j);
std::string to_canonical_json(const Manifest& m);
std::string to_canonical_json(const Index& i);
std::string to_canonical_json(const ImageConfig& c);

/// Bounds on image documents, which OCI leaves open. 4 MiB is what registries commonly accept
/// of a manifest at most (ORAS's and Pulp's default limit too); configs hold a history entry
/// per layer and get twice the room. 10000 descriptors (layers of a manifest, manifests of an
/// index) fit in 4 MiB and are far past any real image (Docker runs 127 layers).
inline constexpr size_t kMaxManifestBytes = size_t{4} << 20;  // manifests and indexes
inline constexpr size_t kMaxConfigBytes = size_t{8} << 20;
inline constexpr size_t kMaxDescriptors = 10'000;

/// Parsers (through common::parse_json: bounded nesting), refusing documents past the bounds
/// above.
Result<Manifest> parse_manifest(std::string_view text);
Result<Index> parse_index(std::string_view text);
Result<ImageConfig> parse_image_config(std::string_view text);

/// "1970-01-01T00:00:00Z" from seconds since the epoch.
std::string rfc3339_utc(int64_t epoch_seconds);

}  // namespace envbuild::oci
