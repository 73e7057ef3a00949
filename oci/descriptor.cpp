#include "oci/descriptor.hpp"

#include "oci/internal/json_util.hpp"

namespace envbuild::oci {

using nlohmann::json;

std::string Platform::to_string() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

Result<Platform> parse_platform(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
    return fail(Errc::InvalidInput,
                "invalid platform '" + std::string(text) + "': want os/arch[/variant]");
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

Platform host_platform() {
  Platform p;
  p.os = "linux";
#if defined(__x86_64__)
  p.architecture = "amd64";
#elif defined(__aarch64__)
  p.architecture = "arm64";
  p.variant = "v8";
#elif defined(__powerpc64__)
  p.architecture = "ppc64le";
#else
  p.architecture = "unknown";
#endif
  return p;
}

void to_json(json& j, const Platform& p) {
  j = json::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.variant.empty()) j["variant"] = p.variant;
  if (!p.os_version.empty()) j["os.version"] = p.os_version;
  if (!p.os_features.empty()) j["os.features"] = p.os_features;
}

void to_json(json& j, const Descriptor& d) {
  j = json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.to_string();
  j["size"] = d.size;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) j["platform"] = *d.platform;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
}

Result<Platform> platform_from_json(const json& j) {
  if (!j.is_object()) return fail(Errc::InvalidInput, "platform: not a JSON object");
  Platform p;
  ENVB_TRY(internal::get_string(j, "architecture", p.architecture, internal::Required::Yes));
  ENVB_TRY(internal::get_string(j, "os", p.os, internal::Required::Yes));
  ENVB_TRY(internal::get_string(j, "variant", p.variant));
  ENVB_TRY(internal::get_string(j, "os.version", p.os_version));
  ENVB_TRY(internal::get_strings(j, "os.features", p.os_features));
  return p;
}

Result<Descriptor> descriptor_from_json(const json& j) {
  if (!j.is_object()) return fail(Errc::InvalidInput, "descriptor: not a JSON object");
  Descriptor d;
  ENVB_TRY(internal::get_string(j, "mediaType", d.media_type, internal::Required::Yes));
  std::string digest;
  ENVB_TRY(internal::get_string(j, "digest", digest, internal::Required::Yes));
  ENVB_ASSIGN_OR_RETURN(d.digest, Digest::parse(digest));
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
    return fail(Errc::InvalidInput,
                "descriptor " + digest + ": 'size' must be a non-negative integer");
  d.size = size->get<int64_t>();
  ENVB_TRY(internal::get_strings(j, "urls", d.urls));
  ENVB_TRY(internal::get_string_map(j, "annotations", d.annotations));
  ENVB_TRY(internal::get_string(j, "artifactType", d.artifact_type));
  if (auto p = j.find("platform"); p != j.end()) {
    ENVB_ASSIGN_OR_RETURN(Platform platform, platform_from_json(*p));
    d.platform = std::move(platform);
  }
  return d;
}

}  // namespace envbuild::oci
