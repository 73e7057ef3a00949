#pragma once

// ASCII case and space helpers for protocol text (header names, URL schemes and hosts) and
// for names (conda package names, which libsolv lower-cases; registry scopes; kernel names),
// none of which may depend on the locale. The one home of lower-casing.

#include <algorithm>
#include <string>
#include <string_view>

namespace envbuild::common {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

inline std::string ascii_trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace envbuild::common
