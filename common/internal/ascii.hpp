#pragma once

// ASCII case and space helpers for protocol text (header names, URL schemes and hosts), which
// must not depend on the locale.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace envbuild::common::internal {

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

}  // namespace envbuild::common::internal
