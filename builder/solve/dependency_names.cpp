#include "builder/solve/dependency_names.hpp"

#include <string>

namespace envbuild::builder {

std::string libsolv_spec_name(std::string_view spec) {
  if (auto colon = spec.rfind(':'); colon != std::string_view::npos) spec = spec.substr(colon + 1);
  std::string name(spec.substr(0, spec.find_first_of(" =<>!~")));
  for (char& c : name)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // as libsolv: ASCII only
  return name;
}

bool names_a_pattern(std::string_view name) {
  return name.find('*') != std::string_view::npos ||
         (name.size() > 1 && name.front() == '^' && name.back() == '$');
}

NamePattern::NamePattern(std::string_view pattern) {
  std::string expression;
  if (pattern.size() > 1 && pattern.front() == '^' && pattern.back() == '$') {
    expression = pattern;
  } else {
    expression = "^";
    for (char c : pattern) {
      if (c == '.' || c == '+' || c == '*') expression += c == '*' ? '.' : '\\';
      expression += c;
    }
    expression += '$';
  }
  valid_ = ::regcomp(&compiled_, expression.c_str(), REG_EXTENDED | REG_NOSUB | REG_ICASE) == 0;
}

NamePattern::~NamePattern() {
  if (valid_) ::regfree(&compiled_);
}

bool NamePattern::matches(std::string_view name) const {
  const std::string subject(name);
  return valid_ && ::regexec(&compiled_, subject.c_str(), 0, nullptr, 0) == 0;
}

}  // namespace envbuild::builder
