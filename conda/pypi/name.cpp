#include "conda/pypi/name.hpp"

namespace envbuild::conda::pypi {

namespace {
bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

std::string normalize_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  bool in_run = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      if (!in_run) out += '-';
      in_run = true;
      continue;
    }
    in_run = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || !is_ascii_alnum(name.front()) || !is_ascii_alnum(name.back())) return false;
  for (char c : name)
    if (!is_ascii_alnum(c) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

std::string wheel_name_part(std::string_view name) {
  std::string out = normalize_name(name);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}

}  // namespace envbuild::conda::pypi
