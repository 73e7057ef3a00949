#include "conda/image_contract.hpp"

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "conda/version_spec.hpp"

namespace envbuild::conda {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<HostRequirement> parse_host_requirement(std::string_view text) {
  std::string_view line = trim(text);
  if (!line.starts_with("__"))
    return fail(Errc::InvalidInput,
                "'" + std::string(text) + "' is not a virtual package requirement");
  size_t end = line.find_first_of(" <>=!~");
  HostRequirement requirement;
  requirement.name = std::string(line.substr(0, end));
  if (end != std::string_view::npos) {
    std::string_view rest = trim(line.substr(end));
    if (auto space = rest.find(' '); space != std::string_view::npos) rest = rest.substr(0, space);
    requirement.spec = std::string(rest);
  }
  if (!requirement.spec.empty()) {
    auto parsed = VersionSpec::parse(requirement.spec);
    if (!parsed)
      return std::move(parsed).error().with_context("requirement '" + std::string(text) + "'");
  }
  return requirement;
}

std::vector<HostRequirement> host_requirements(const std::vector<std::string>& depends) {
  std::set<HostRequirement> unique;
  for (const auto& dep : depends) {
    if (!trim(dep).starts_with("__")) continue;
    if (auto requirement = parse_host_requirement(dep)) unique.insert(*requirement);
  }
  return {unique.begin(), unique.end()};
}

std::string requirements_label(const std::vector<HostRequirement>& requirements) {
  std::string out;
  for (const auto& r : requirements) out += (out.empty() ? "" : ";") + r.to_string();
  return out;
}

std::vector<std::string> split_requirements_label(std::string_view label) {
  std::vector<std::string> out;
  while (!label.empty()) {
    size_t end = label.find(';');
    std::string_view part = trim(label.substr(0, end));
    if (!part.empty()) out.emplace_back(part);
    if (end == std::string_view::npos) break;
    label.remove_prefix(end + 1);
  }
  return out;
}

std::string image_prefix_of(const std::map<std::string, std::string>& labels,
                            const std::vector<std::string>& env) {
  if (auto it = labels.find(std::string(kPrefixLabel)); it != labels.end() && !it->second.empty())
    return it->second;
  for (const auto& kv : env)
    if (kv.starts_with("CONDA_PREFIX=") && kv.size() > 13) return kv.substr(13);
  return std::string(kDefaultImagePrefix);
}

std::string to_json_string(const ImageInfo& info) {
  // nlohmann's object is a std::map: keys come out sorted.
  nlohmann::json j = {{"format", 1}, {"env", info.env}, {"labels", info.labels}};
  if (info.entrypoint) j["entrypoint"] = *info.entrypoint;
  if (info.cmd) j["cmd"] = *info.cmd;
  return j.dump() + "\n";
}

Result<ImageInfo> parse_image_info(std::string_view text, std::string_view what) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return Error(Errc::InvalidInput, std::string(what) + ": " + why);
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || j["format"] != 1) return bad("unknown format (want 1)");
  auto strings = [&](const char* key) -> Result<std::optional<std::vector<std::string>>> {
    if (!j.contains(key)) return std::optional<std::vector<std::string>>();
    const auto& v = j[key];
    if (!v.is_array()) return bad(std::string(key) + " is not an array");
    std::vector<std::string> out;
    for (const auto& e : v) {
      if (!e.is_string()) return bad(std::string(key) + " holds a non-string");
      out.push_back(e.get<std::string>());
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  };
  ImageInfo info;
  ENVB_ASSIGN_OR_RETURN(auto env, strings("env"));
  info.env = env.value_or(std::vector<std::string>());
  ENVB_ASSIGN_OR_RETURN(info.entrypoint, strings("entrypoint"));
  ENVB_ASSIGN_OR_RETURN(info.cmd, strings("cmd"));
  if (j.contains("labels")) {
    if (!j["labels"].is_object()) return bad("labels is not an object");
    for (const auto& [k, v] : j["labels"].items()) {
      if (!v.is_string()) return bad("label " + k + " is not a string");
      info.labels[k] = v.get<std::string>();
    }
  }
  return info;
}

}  // namespace envbuild::conda
