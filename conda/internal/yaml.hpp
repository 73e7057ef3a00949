#pragma once

// yaml-cpp at our boundary: loading turns its exceptions into Errors with file:line:col.

#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/result.hpp"

namespace envbuild::conda::internal {

/// "file:line:col: message" (line and column 1-based).
Error yaml_error(std::string_view file, const YAML::Mark& mark, std::string message);

/// Parses one YAML document; a syntax error becomes InvalidInput with the location.
Result<YAML::Node> load_yaml(std::string_view text, std::string_view file);

/// The scalar as a string; anything else is an error naming `what`.
Result<std::string> scalar(const YAML::Node& node, std::string_view file, std::string_view what);

/// scalar(), or "" for a missing or null node (an optional field).
Result<std::string> optional_scalar(const YAML::Node& node, std::string_view file,
                                    std::string_view what);

/// A list of scalars; [] for a missing or null node; anything else is an error naming `what`.
Result<std::vector<std::string>> scalar_list(const YAML::Node& node, std::string_view file,
                                             std::string_view what);

}  // namespace envbuild::conda::internal
