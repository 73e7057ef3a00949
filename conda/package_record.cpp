#include "conda/package_record.hpp"

#include <array>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/json.hpp"

namespace envbuild::conda {
namespace {

using json = nlohmann::json;

Error type_error(std::string_view key, std::string_view want, const json& got) {
  return fail(Errc::InvalidInput, "'" + std::string(key) + "' must be " + std::string(want) +
                                      ", got " + std::string(got.type_name()));
}

// Reads an optional string; null counts as absent (conda writes `"arch": null`).
Result<void> get_string(const json& j, std::string_view key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ok();
  if (!it->is_string()) return type_error(key, "a string", *it);
  out = it->get<std::string>();
  return ok();
}

Result<void> get_uint(const json& j, std::string_view key, std::optional<std::uint64_t>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ok();
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0) {
    return type_error(key, "a non-negative integer", *it);
  }
  out = it->get<std::uint64_t>();
  return ok();
}

Result<void> get_strings(const json& j, std::string_view key, std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ok();
  if (!it->is_array()) return type_error(key, "a list of strings", *it);
  for (const auto& item : *it) {
    if (!item.is_string()) return type_error(key, "a list of strings", *it);
    out.push_back(item.get<std::string>());
  }
  return ok();
}

std::vector<std::string> split_features(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of(" ,", start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<PackageRecord> record_from_json(const json& j) {
  if (!j.is_object()) return type_error("record", "an object", j);
  PackageRecord r;
  ENVB_TRY(get_string(j, "name", r.name));
  if (r.name.empty()) return fail(Errc::InvalidInput, "record has no 'name'");
  std::string version;
  ENVB_TRY(get_string(j, "version", version));
  if (version.empty()) return fail(Errc::InvalidInput, "record '" + r.name + "' has no 'version'");
  ENVB_ASSIGN_OR_RETURN(r.version, Version::parse(version).context("record '" + r.name + "'"));
  ENVB_TRY(get_string(j, "build", r.build));
  if (r.build.empty()) {
    ENVB_TRY(get_string(j, "build_string", r.build));
  }
  std::optional<std::uint64_t> build_number;
  ENVB_TRY(get_uint(j, "build_number", build_number));
  r.build_number = build_number.value_or(0);
  ENVB_TRY(get_string(j, "channel", r.channel));
  ENVB_TRY(get_string(j, "subdir", r.subdir));
  ENVB_TRY(get_string(j, "url", r.url));
  ENVB_TRY(get_string(j, "fn", r.fn));
  ENVB_TRY(get_string(j, "md5", r.md5));
  ENVB_TRY(get_string(j, "sha256", r.sha256));
  ENVB_TRY(get_uint(j, "size", r.size));
  ENVB_TRY(get_strings(j, "depends", r.depends));
  ENVB_TRY(get_strings(j, "constrains", r.constrains));
  ENVB_TRY(get_string(j, "license", r.license));
  ENVB_TRY(get_string(j, "license_family", r.license_family));
  if (auto it = j.find("timestamp"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) return type_error("timestamp", "a number", *it);
    r.timestamp = it->is_number_integer() ? it->get<std::int64_t>()
                                          : static_cast<std::int64_t>(it->get<double>());
  }
  if (auto it = j.find("noarch"); it != j.end() && !it->is_null()) {
    if (it->is_boolean()) {
      r.noarch = it->get<bool>() ? NoArchType::Generic : NoArchType::None;
    } else if (it->is_string() && it->get<std::string>() == "python") {
      r.noarch = NoArchType::Python;
    } else if (it->is_string() && it->get<std::string>() == "generic") {
      r.noarch = NoArchType::Generic;
    } else {
      return type_error("noarch", "'python', 'generic' or a boolean", *it);
    }
  }
  if (auto it = j.find("track_features"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      r.track_features = split_features(it->get<std::string>());
    } else {
      ENVB_TRY(get_strings(j, "track_features", r.track_features));
    }
  }
  if (auto it = j.find("features"); it != j.end() && it->is_array()) {
    std::vector<std::string> features;
    ENVB_TRY(get_strings(j, "features", features));
    for (const auto& f : features) r.features += (r.features.empty() ? "" : " ") + f;
  } else {
    ENVB_TRY(get_string(j, "features", r.features));
  }
  ENVB_TRY(get_string(j, "python_site_packages_path", r.python_site_packages_path));
  return r;
}

void put(json& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

constexpr std::array<std::pair<PrefixPathType, std::string_view>, 8> kPathTypes = {{
    {PrefixPathType::HardLink, "hardlink"},
    {PrefixPathType::SoftLink, "softlink"},
    {PrefixPathType::Directory, "directory"},
    {PrefixPathType::PycFile, "pyc_file"},
    {PrefixPathType::UnixPythonEntryPoint, "unix_python_entry_point"},
    {PrefixPathType::WindowsPythonEntryPointScript, "windows_python_entry_point_script"},
    {PrefixPathType::WindowsPythonEntryPointExe, "windows_python_entry_point_exe"},
    {PrefixPathType::LinkedPackageRecord, "linked_package_record"},
}};

template <typename F>
auto wrap_parse(std::string_view text, std::string_view what, F&& convert)
    -> decltype(convert(json{})) {
  ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, what));
  return convert(j).context(std::string(what));
}

}  // namespace

std::string_view to_string(PrefixPathType type) {
  for (auto [t, name] : kPathTypes) {
    if (t == type) return name;
  }
  return "hardlink";
}

Result<PrefixPathType> parse_prefix_path_type(std::string_view text) {
  for (auto [t, name] : kPathTypes) {
    if (name == text) return t;
  }
  return fail(Errc::InvalidInput, "unknown path_type '" + std::string(text) + "'");
}

Result<PackageRecord> package_record_from_json(const json& j) {
  try {
    return record_from_json(j);
  } catch (const json::exception& e) {  // out-of-range numbers and the like
    return fail(Errc::InvalidInput, std::string("invalid record: ") + e.what());
  }
}

json to_json(const PackageRecord& r) {
  json j = json::object();
  put(j, "name", r.name);
  j["version"] = r.version.to_string();
  j["build"] = r.build;
  j["build_number"] = r.build_number;
  put(j, "channel", r.channel);
  put(j, "subdir", r.subdir);
  put(j, "url", r.url);
  put(j, "fn", r.fn);
  put(j, "md5", r.md5);
  put(j, "sha256", r.sha256);
  if (r.size) j["size"] = *r.size;
  j["depends"] = r.depends;
  if (!r.constrains.empty()) j["constrains"] = r.constrains;
  put(j, "license", r.license);
  put(j, "license_family", r.license_family);
  if (r.timestamp) j["timestamp"] = *r.timestamp;
  if (r.noarch == NoArchType::Python) j["noarch"] = "python";
  if (r.noarch == NoArchType::Generic) j["noarch"] = "generic";
  if (!r.track_features.empty()) {
    std::string joined;
    for (const auto& f : r.track_features) joined += (joined.empty() ? "" : " ") + f;
    j["track_features"] = joined;
  }
  put(j, "features", r.features);
  put(j, "python_site_packages_path", r.python_site_packages_path);
  return j;
}

std::string PrefixRecord::file_name() const {
  return record.name + "-" + record.version.to_string() + "-" + record.build + ".json";
}

namespace {
Result<PrefixRecord> prefix_from_json(const json& j) {
  PrefixRecord p;
  ENVB_ASSIGN_OR_RETURN(p.record, record_from_json(j));
  ENVB_TRY(get_strings(j, "files", p.files));
  ENVB_TRY(get_string(j, "requested_spec", p.requested_spec));
  if (p.requested_spec.empty()) {
    std::vector<std::string> specs;
    ENVB_TRY(get_strings(j, "requested_specs", specs));
    for (const auto& s : specs) p.requested_spec += (p.requested_spec.empty() ? "" : ",") + s;
  }
  if (auto link = j.find("link"); link != j.end() && link->is_object()) {
    if (auto type = link->find("type"); type != link->end() && type->is_number_integer()) {
      p.link_type = type->get<int>();
    }
  }
  auto paths_data = j.find("paths_data");
  if (paths_data == j.end() || paths_data->is_null()) return p;
  if (!paths_data->is_object()) return type_error("paths_data", "an object", *paths_data);
  auto paths = paths_data->find("paths");
  if (paths == paths_data->end()) return p;
  if (!paths->is_array()) return type_error("paths_data.paths", "a list", *paths);
  for (size_t i = 0; i < paths->size(); ++i) {
    const json& e = (*paths)[i];
    std::string where = "paths_data.paths[" + std::to_string(i) + "]";
    if (!e.is_object()) return type_error(where, "an object", e);
    PrefixPathsEntry entry;
    ENVB_TRY(get_string(e, "_path", entry.path).context(where));
    if (entry.path.empty()) return fail(Errc::InvalidInput, where + " has no '_path'");
    std::string type;
    ENVB_TRY(get_string(e, "path_type", type).context(where));
    if (!type.empty()) {
      ENVB_ASSIGN_OR_RETURN(entry.path_type, parse_prefix_path_type(type).context(where));
    }
    ENVB_TRY(get_string(e, "sha256", entry.sha256).context(where));
    ENVB_TRY(get_string(e, "sha256_in_prefix", entry.sha256_in_prefix).context(where));
    ENVB_TRY(get_uint(e, "size_in_bytes", entry.size_in_bytes).context(where));
    std::string mode;
    ENVB_TRY(get_string(e, "file_mode", mode).context(where));
    if (mode == "text") entry.file_mode = FileMode::Text;
    if (mode == "binary") entry.file_mode = FileMode::Binary;
    if (!mode.empty() && !entry.file_mode) {
      return fail(Errc::InvalidInput, where + ": unknown file_mode '" + mode + "'");
    }
    ENVB_TRY(get_string(e, "prefix_placeholder", entry.prefix_placeholder).context(where));
    if (auto nl = e.find("no_link"); nl != e.end() && nl->is_boolean()) {
      entry.no_link = nl->get<bool>();
    }
    p.paths.push_back(std::move(entry));
  }
  return p;
}
}  // namespace

Result<PrefixRecord> prefix_record_from_json(const json& j) {
  try {
    return prefix_from_json(j);
  } catch (const json::exception& e) {
    return fail(Errc::InvalidInput, std::string("invalid prefix record: ") + e.what());
  }
}

json to_json(const PrefixRecord& p) {
  json j = to_json(p.record);
  j["files"] = p.files;
  if (!p.requested_spec.empty()) j["requested_spec"] = p.requested_spec;
  if (p.link_type) j["link"] = json{{"type", *p.link_type}};
  json paths = json::array();
  for (const auto& e : p.paths) {
    json entry = json::object();
    entry["_path"] = e.path;
    entry["path_type"] = std::string(to_string(e.path_type));
    put(entry, "sha256", e.sha256);
    put(entry, "sha256_in_prefix", e.sha256_in_prefix);
    if (e.size_in_bytes) entry["size_in_bytes"] = *e.size_in_bytes;
    if (e.file_mode) entry["file_mode"] = *e.file_mode == FileMode::Text ? "text" : "binary";
    put(entry, "prefix_placeholder", e.prefix_placeholder);
    if (e.no_link) entry["no_link"] = true;
    paths.push_back(std::move(entry));
  }
  j["paths_data"] = json{{"paths", std::move(paths)}, {"paths_version", 1}};
  return j;
}

Result<PackageRecord> parse_package_record(std::string_view text, std::string_view what) {
  return wrap_parse(text, what, [](const json& j) { return package_record_from_json(j); });
}

Result<PrefixRecord> parse_prefix_record(std::string_view text, std::string_view what) {
  return wrap_parse(text, what, [](const json& j) { return prefix_record_from_json(j); });
}

std::string to_json_string(const PackageRecord& record) {
  return to_json(record).dump(2) + "\n";
}

std::string to_json_string(const PrefixRecord& record) {
  return to_json(record).dump(2) + "\n";
}

}  // namespace envbuild::conda
