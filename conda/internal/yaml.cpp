#include "conda/internal/yaml.hpp"

namespace envbuild::conda::internal {

Error yaml_error(std::string_view file, const YAML::Mark& mark, std::string message) {
  std::string where(file);
  if (!mark.is_null()) {
    where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return fail(Errc::InvalidInput, where + ": " + std::move(message));
}

Result<YAML::Node> load_yaml(std::string_view text, std::string_view file) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return yaml_error(file, e.mark, "invalid YAML: " + e.msg);
  }
}

Result<std::string> scalar(const YAML::Node& node, std::string_view file, std::string_view what) {
  if (!node.IsScalar()) {
    return yaml_error(file, node.Mark(), std::string(what) + " must be a string");
  }
  return node.Scalar();
}

}  // namespace envbuild::conda::internal
