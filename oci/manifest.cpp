#include "oci/manifest.hpp"

#include <ctime>

#include "common/json.hpp"
#include "oci/internal/json_util.hpp"

namespace envbuild::oci {

using internal::get_string;
using internal::get_string_map;
using internal::get_strings;
using internal::Required;
using nlohmann::json;

namespace {

json descriptors_json(const std::vector<Descriptor>& ds) {
  json out = json::array();
  for (const auto& d : ds) out.push_back(d);
  return out;
}

Result<std::vector<Descriptor>> descriptors_from(const json& j, const char* key) {
  std::vector<Descriptor> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array())
    return fail(Errc::InvalidInput, std::string("'") + key + "' must be an array");
  if (it->size() > kMaxDescriptors)
    return fail(Errc::InvalidInput, std::string("'") + key + "' holds " +
                                        std::to_string(it->size()) +
                                        " descriptors, more than the " +
                                        std::to_string(kMaxDescriptors) + " a document may have");
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = descriptor_from_json((*it)[i]);
    if (!d)
      return std::move(d).error().with_context(std::string(key) + "[" + std::to_string(i) + "]");
    out.push_back(std::move(*d));
  }
  return out;
}

/// Refuses a document larger than `max_bytes` before parsing it.
Result<json> parse_document(std::string_view text, std::string_view what, size_t max_bytes) {
  if (text.size() > max_bytes)
    return fail(Errc::InvalidInput, "parsing " + std::string(what) + ": " +
                                        std::to_string(text.size()) + " bytes, more than the " +
                                        std::to_string(max_bytes) + " it may have");
  return common::parse_json(text, "parsing " + std::string(what));
}

Result<int> schema_version(const json& j) {
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer())
    return fail(Errc::InvalidInput, "missing integer 'schemaVersion'");
  if (it->get<int>() != 2)
    return fail(Errc::Unsupported,
                "schemaVersion " + std::to_string(it->get<int>()) + " is not supported (want 2)");
  return 2;
}

json config_section(const ContainerConfig& c) {
  json j = c.extra.is_object() ? c.extra : json::object();
  if (!c.user.empty()) j["User"] = c.user;
  if (!c.env.empty()) j["Env"] = c.env;
  if (c.entrypoint) j["Entrypoint"] = *c.entrypoint;
  if (c.cmd) j["Cmd"] = *c.cmd;
  if (!c.working_dir.empty()) j["WorkingDir"] = c.working_dir;
  if (!c.labels.empty()) j["Labels"] = c.labels;
  return j;
}

Result<ContainerConfig> config_section_from(const json& j) {
  ContainerConfig c;
  if (j.is_null()) return c;
  if (!j.is_object()) return fail(Errc::InvalidInput, "'config' must be an object");
  ENVB_TRY(get_string(j, "User", c.user));
  ENVB_TRY(get_strings(j, "Env", c.env));
  for (const char* key : {"Entrypoint", "Cmd"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    std::vector<std::string> v;
    ENVB_TRY(get_strings(j, key, v));
    (std::string_view(key) == "Cmd" ? c.cmd : c.entrypoint) = std::move(v);
  }
  ENVB_TRY(get_string(j, "WorkingDir", c.working_dir));
  ENVB_TRY(get_string_map(j, "Labels", c.labels));
  c.extra = j;
  for (const char* key : {"User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Labels"})
    c.extra.erase(key);
  return c;
}

}  // namespace

std::string canonical_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::strict);
}

std::string to_canonical_json(const Manifest& m) {
  json j = json::object();
  j["schemaVersion"] = m.schema_version;
  if (!m.media_type.empty()) j["mediaType"] = m.media_type;
  if (!m.artifact_type.empty()) j["artifactType"] = m.artifact_type;
  j["config"] = m.config;
  j["layers"] = descriptors_json(m.layers);
  if (m.subject) j["subject"] = *m.subject;
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  return canonical_json(j);
}

std::string to_canonical_json(const Index& i) {
  json j = json::object();
  j["schemaVersion"] = i.schema_version;
  if (!i.media_type.empty()) j["mediaType"] = i.media_type;
  j["manifests"] = descriptors_json(i.manifests);
  if (!i.annotations.empty()) j["annotations"] = i.annotations;
  return canonical_json(j);
}

std::string to_canonical_json(const ImageConfig& c) {
  json j = c.extra.is_object() ? c.extra : json::object();
  j["architecture"] = c.architecture;
  j["os"] = c.os;
  if (!c.variant.empty()) j["variant"] = c.variant;
  if (!c.os_version.empty()) j["os.version"] = c.os_version;
  if (!c.created.empty()) j["created"] = c.created;
  if (!c.author.empty()) j["author"] = c.author;
  j["config"] = config_section(c.config);
  json diff_ids = json::array();
  for (const auto& d : c.diff_ids) diff_ids.push_back(d.to_string());
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  if (!c.history.empty()) {
    json history = json::array();
    for (const auto& h : c.history) {
      json e = json::object();
      if (!h.created.empty()) e["created"] = h.created;
      if (!h.created_by.empty()) e["created_by"] = h.created_by;
      if (!h.author.empty()) e["author"] = h.author;
      if (!h.comment.empty()) e["comment"] = h.comment;
      if (h.empty_layer) e["empty_layer"] = true;
      history.push_back(std::move(e));
    }
    j["history"] = std::move(history);
  }
  return canonical_json(j);
}

Result<Manifest> parse_manifest(std::string_view text) {
  ENVB_ASSIGN_OR_RETURN(json j, parse_document(text, "image manifest", kMaxManifestBytes));
  auto parse = [&]() -> Result<Manifest> {
    if (!j.is_object()) return fail(Errc::InvalidInput, "not a JSON object");
    Manifest m;
    ENVB_ASSIGN_OR_RETURN(m.schema_version, schema_version(j));
    m.media_type.clear();
    ENVB_TRY(get_string(j, "mediaType", m.media_type));
    if (!m.media_type.empty() && !media_type::is_manifest(m.media_type))
      return fail(Errc::Unsupported, "mediaType '" + m.media_type + "' is not an image manifest");
    ENVB_TRY(get_string(j, "artifactType", m.artifact_type));
    auto config = j.find("config");
    if (config == j.end()) return fail(Errc::InvalidInput, "missing required field 'config'");
    ENVB_ASSIGN_OR_RETURN(m.config, descriptor_from_json(*config).context("config"));
    ENVB_ASSIGN_OR_RETURN(m.layers, descriptors_from(j, "layers"));
    if (auto s = j.find("subject"); s != j.end()) {
      ENVB_ASSIGN_OR_RETURN(Descriptor subject, descriptor_from_json(*s).context("subject"));
      m.subject = std::move(subject);
    }
    ENVB_TRY(get_string_map(j, "annotations", m.annotations));
    return m;
  };
  return parse().context("parsing image manifest");
}

Result<Index> parse_index(std::string_view text) {
  ENVB_ASSIGN_OR_RETURN(json j, parse_document(text, "image index", kMaxManifestBytes));
  auto parse = [&]() -> Result<Index> {
    if (!j.is_object()) return fail(Errc::InvalidInput, "not a JSON object");
    Index i;
    ENVB_ASSIGN_OR_RETURN(i.schema_version, schema_version(j));
    i.media_type.clear();
    ENVB_TRY(get_string(j, "mediaType", i.media_type));
    if (!i.media_type.empty() && !media_type::is_index(i.media_type))
      return fail(Errc::Unsupported, "mediaType '" + i.media_type + "' is not an image index");
    ENVB_ASSIGN_OR_RETURN(i.manifests, descriptors_from(j, "manifests"));
    ENVB_TRY(get_string_map(j, "annotations", i.annotations));
    return i;
  };
  return parse().context("parsing image index");
}

Result<ImageConfig> parse_image_config(std::string_view text) {
  ENVB_ASSIGN_OR_RETURN(json j, parse_document(text, "image config", kMaxConfigBytes));
  auto parse = [&]() -> Result<ImageConfig> {
    if (!j.is_object()) return fail(Errc::InvalidInput, "not a JSON object");
    ImageConfig c;
    ENVB_TRY(get_string(j, "architecture", c.architecture, Required::Yes));
    ENVB_TRY(get_string(j, "os", c.os, Required::Yes));
    ENVB_TRY(get_string(j, "variant", c.variant));
    ENVB_TRY(get_string(j, "os.version", c.os_version));
    ENVB_TRY(get_string(j, "created", c.created));
    ENVB_TRY(get_string(j, "author", c.author));
    if (auto it = j.find("config"); it != j.end()) {
      ENVB_ASSIGN_OR_RETURN(c.config, config_section_from(*it));
    }
    auto rootfs = j.find("rootfs");
    if (rootfs == j.end() || !rootfs->is_object())
      return fail(Errc::InvalidInput, "missing required object 'rootfs'");
    std::vector<std::string> diff_ids;
    ENVB_TRY(get_strings(*rootfs, "diff_ids", diff_ids));
    if (diff_ids.size() > kMaxDescriptors)
      return fail(Errc::InvalidInput, "rootfs.diff_ids holds " + std::to_string(diff_ids.size()) +
                                          " layers, more than an image may have");
    for (const auto& d : diff_ids) {
      ENVB_ASSIGN_OR_RETURN(Digest digest, Digest::parse(d).context("rootfs.diff_ids"));
      c.diff_ids.push_back(std::move(digest));
    }
    if (auto it = j.find("history"); it != j.end() && it->is_array()) {
      for (const auto& e : *it) {
        History h;
        ENVB_TRY(get_string(e, "created", h.created));
        ENVB_TRY(get_string(e, "created_by", h.created_by));
        ENVB_TRY(get_string(e, "author", h.author));
        ENVB_TRY(get_string(e, "comment", h.comment));
        if (auto el = e.find("empty_layer"); el != e.end() && el->is_boolean())
          h.empty_layer = el->get<bool>();
        c.history.push_back(std::move(h));
      }
    }
    c.extra = j;
    for (const char* key : {"architecture", "os", "variant", "os.version", "created", "author",
                            "config", "rootfs", "history"})
      c.extra.erase(key);
    return c;
  };
  return parse().context("parsing image config");
}

void ImageConfig::set_env(std::string_view key, std::string_view value) {
  std::string prefix = std::string(key) + "=";
  std::string entry = prefix + std::string(value);
  for (auto& e : config.env) {
    if (e.starts_with(prefix)) {
      e = entry;
      return;
    }
  }
  config.env.push_back(entry);
}

Platform ImageConfig::platform() const {
  Platform p;
  p.architecture = architecture;
  p.os = os;
  p.variant = variant;
  p.os_version = os_version;
  return p;
}

std::string rfc3339_utc(int64_t epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace envbuild::oci
