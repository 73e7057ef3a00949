#include "conda/lock_environment.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace envbuild::conda {

namespace {

constexpr std::string_view kNameKey = "envbuild.name";
constexpr std::string_view kSpecsKey = "envbuild.specs.";
constexpr std::string_view kVariablesKey = "envbuild.variables.";
constexpr std::string_view kNameLine = "# envbuild-name: ";
constexpr std::string_view kSpecsLine = "# envbuild-specs: ";
constexpr std::string_view kVariablesLine = "# envbuild-variables: ";

// Invalid UTF-8 (from a YAML file) is replaced rather than thrown on.
template <typename Json>
std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string specs_json(const LockedEnvironment& env) {
  return dump(nlohmann::json(env.specs));
}

std::string variables_json(const LockedEnvironment& env) {
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  for (const auto& [k, v] : env.variables) vars[k] = v;
  return dump(vars);
}

Error bad_value(std::string_view file, std::string_view key, std::string_view why) {
  return fail(Errc::InvalidInput,
              std::string(file) + ": " + std::string(key) + ": " + std::string(why));
}

Result<std::vector<std::string>> parse_specs(std::string_view text, std::string_view file,
                                             std::string_view key) {
  try {
    auto json = nlohmann::json::parse(text);
    if (!json.is_array()) return bad_value(file, key, "not a JSON array");
    std::vector<std::string> out;
    for (const auto& item : json) {
      if (!item.is_string()) return bad_value(file, key, "not a JSON array of strings");
      out.push_back(item.get<std::string>());
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return bad_value(file, key, e.what());
  }
}

Result<std::vector<std::pair<std::string, std::string>>> parse_variables(std::string_view text,
                                                                         std::string_view file,
                                                                         std::string_view key) {
  try {
    auto json = nlohmann::ordered_json::parse(text);
    if (!json.is_object()) return bad_value(file, key, "not a JSON object");
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : json.items()) {
      if (!v.is_string()) return bad_value(file, key, "variable '" + k + "' is not a string");
      out.emplace_back(k, v.get<std::string>());
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return bad_value(file, key, e.what());
  }
}

void set(std::vector<std::pair<std::string, std::string>>& pairs, const std::string& key,
         std::string value) {
  for (auto& [k, v] : pairs)
    if (k == key) {
      v = std::move(value);
      return;
    }
  pairs.emplace_back(key, std::move(value));
}

}  // namespace

void put_environment(CondaLockFile& lock, const std::string& platform,
                     const LockedEnvironment& env) {
  auto& meta = lock.metadata.custom_metadata;
  if (!env.name.empty()) set(meta, std::string(kNameKey), env.name);
  set(meta, std::string(kSpecsKey) + platform, specs_json(env));
  set(meta, std::string(kVariablesKey) + platform, variables_json(env));
}

Result<LockedEnvironment> locked_environment(const CondaLockFile& lock, const std::string& platform,
                                             std::string_view file) {
  LockedEnvironment env;
  for (const auto& [key, value] : lock.metadata.custom_metadata) {
    if (key == kNameKey) {
      env.name = value;
    } else if (key == std::string(kSpecsKey) + platform) {
      ENVB_ASSIGN_OR_RETURN(env.specs, parse_specs(value, file, key));
    } else if (key == std::string(kVariablesKey) + platform) {
      ENVB_ASSIGN_OR_RETURN(env.variables, parse_variables(value, file, key));
    }
  }
  return env;
}

void put_environment(ExplicitFile& lock, const LockedEnvironment& env) {
  auto& header = lock.header;
  header.erase(std::remove_if(header.begin(), header.end(),
                              [](const std::string& line) {
                                return line.starts_with(kNameLine) ||
                                       line.starts_with(kSpecsLine) ||
                                       line.starts_with(kVariablesLine);
                              }),
               header.end());
  if (!env.name.empty()) header.push_back(std::string(kNameLine) + dump(nlohmann::json(env.name)));
  header.push_back(std::string(kSpecsLine) + specs_json(env));
  header.push_back(std::string(kVariablesLine) + variables_json(env));
}

Result<LockedEnvironment> locked_environment(const ExplicitFile& lock, std::string_view file) {
  LockedEnvironment env;
  for (const std::string& line : lock.header) {
    std::string_view text = line;
    if (text.starts_with(kNameLine)) {
      text.remove_prefix(kNameLine.size());
      try {
        auto json = nlohmann::json::parse(text);
        if (!json.is_string()) return bad_value(file, "envbuild-name", "not a JSON string");
        env.name = json.get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        return bad_value(file, "envbuild-name", e.what());
      }
    } else if (text.starts_with(kSpecsLine)) {
      ENVB_ASSIGN_OR_RETURN(env.specs,
                            parse_specs(text.substr(kSpecsLine.size()), file, "envbuild-specs"));
    } else if (text.starts_with(kVariablesLine)) {
      ENVB_ASSIGN_OR_RETURN(env.variables, parse_variables(text.substr(kVariablesLine.size()), file,
                                                           "envbuild-variables"));
    }
  }
  return env;
}

}  // namespace envbuild::conda
