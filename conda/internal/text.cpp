#include "conda/internal/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>
#include <vector>

namespace envbuild::conda::internal {

Error parse_error(std::string_view what, std::string_view input, size_t pos,
                  std::string_view problem) {
  pos = std::min(pos, input.size());
  std::string message = std::string(what) + " '" + std::string(input) +
                        "': " + std::string(problem) + " (column " + std::to_string(pos + 1) +
                        ")\n  " + std::string(input) + "\n  " + std::string(pos, ' ') + "^";
  return fail(Errc::InvalidInput, std::move(message));
}

namespace {
// The column (0-based) and problem of an error made by parse_error().
std::optional<std::pair<size_t, std::string>> split_parse_error(const Error& inner) {
  // The input is echoed inside the message and may itself hold "': " or " (column " (a fuzz
  // finding): the marker is the last one on the first line, and a number must follow it.
  std::string_view message = inner.message();
  std::string_view first_line = message.substr(0, message.find('\n'));
  size_t column_at = first_line.rfind(" (column ");
  if (column_at == std::string_view::npos) return std::nullopt;
  size_t quote_end = first_line.substr(0, column_at).rfind("': ");
  if (quote_end == std::string_view::npos) return std::nullopt;
  std::string_view digits = first_line.substr(column_at + 9);
  size_t column = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), column);
  if (ec != std::errc() || end == digits.data() || column == 0) return std::nullopt;
  return std::pair{column - 1,
                   std::string(message.substr(quote_end + 3, column_at - quote_end - 3))};
}

Error with_whole_context(const Error& inner, std::string_view what, std::string_view whole) {
  Error copy = inner;
  return std::move(copy).with_context(std::string(what) + " '" + std::string(whole) + "'");
}
}  // namespace

Error rebase_error(const Error& inner, std::string_view what, std::string_view whole,
                   size_t offset) {
  auto split = split_parse_error(inner);
  if (!split) return with_whole_context(inner, what, whole);
  return parse_error(what, whole, offset + split->first, split->second);
}

Error rebase_error(const Error& inner, std::string_view what, std::string_view whole,
                   std::span<const size_t> origin) {
  auto split = split_parse_error(inner);
  if (!split) return with_whole_context(inner, what, whole);
  size_t column = split->first < origin.size() ? origin[split->first]
                  : origin.empty()             ? whole.size()
                                               : origin.back() + 1;
  return parse_error(what, whole, column, split->second);
}

bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

size_t first_control_char(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i)
    if (static_cast<unsigned char>(text[i]) < 0x20 || text[i] == 0x7f) return i;
  return std::string_view::npos;
}

bool is_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

}  // namespace envbuild::conda::internal
