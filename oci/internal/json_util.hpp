#pragma once

// Typed field access for the OCI JSON parsers, with errors that name the field.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace envbuild::oci::internal {

enum class Required : bool { No, Yes };

inline Result<void> get_string(const nlohmann::json& j, const char* key, std::string& out,
                               Required required = Required::No) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required == Required::Yes)
      return fail(Errc::InvalidInput, std::string("missing required field '") + key + "'");
    return ok();
  }
  if (!it->is_string())
    return fail(Errc::InvalidInput, std::string("field '") + key + "' must be a string");
  out = it->get<std::string>();
  return ok();
}

inline Result<void> get_strings(const nlohmann::json& j, const char* key,
                                std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ok();
  if (!it->is_array())
    return fail(Errc::InvalidInput, std::string("field '") + key + "' must be an array of strings");
  out.clear();
  for (const auto& v : *it) {
    if (!v.is_string())
      return fail(Errc::InvalidInput, std::string("field '") + key + "' must hold only strings");
    out.push_back(v.get<std::string>());
  }
  return ok();
}

inline Result<void> get_string_map(const nlohmann::json& j, const char* key,
                                   std::map<std::string, std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ok();
  if (!it->is_object())
    return fail(Errc::InvalidInput, std::string("field '") + key + "' must be an object");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string())
      return fail(Errc::InvalidInput,
                  std::string("field '") + key + "." + k + "' must be a string");
    out[k] = v.get<std::string>();
  }
  return ok();
}

}  // namespace envbuild::oci::internal
