#include "conda/pypi/requirement.hpp"

#include <algorithm>

#include "conda/internal/text.hpp"
#include "conda/pypi/name.hpp"

namespace envbuild::conda::pypi {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Requirement> parse() {
    Requirement r;
    skip_space();
    ENVB_ASSIGN_OR_RETURN(r.name, name("a distribution name"));
    skip_space();
    if (peek() == '[') ENVB_TRY(extras(r));
    skip_space();
    if (peek() == '@') {
      ++pos_;
      skip_space();
      size_t start = pos_;
      while (pos_ < text_.size() && !is_space(text_[pos_])) ++pos_;
      r.url = std::string(text_.substr(start, pos_ - start));
      if (r.url.empty()) return error("expected a URL after '@'");
      // A marker after a URL needs a space before ';' (the ';' could be part of the URL).
      skip_space();
      if (peek() == ';') ENVB_TRY(marker(r));
    } else {
      ENVB_TRY(specifiers(r));
      skip_space();
      if (peek() == ';') ENVB_TRY(marker(r));
    }
    skip_space();
    if (pos_ < text_.size()) return error("unexpected text");
    return r;
  }

 private:
  Error error(std::string_view problem) const {
    return internal::parse_error("invalid requirement", text_, pos_, problem);
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }

  Result<std::string> name(std::string_view what) {
    size_t start = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    std::string_view word = text_.substr(start, pos_ - start);
    if (!is_valid_name(word)) {
      pos_ = start;
      return error("expected " + std::string(what));
    }
    return std::string(word);
  }

  Result<void> extras(Requirement& r) {
    ++pos_;  // [
    skip_space();
    if (peek() != ']') {
      for (;;) {
        skip_space();
        ENVB_ASSIGN_OR_RETURN(std::string extra, name("an extra name"));
        r.extras.push_back(normalize_name(extra));
        skip_space();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        break;
      }
    }
    if (peek() != ']') return error("expected ',' or ']'");
    ++pos_;
    std::sort(r.extras.begin(), r.extras.end());
    r.extras.erase(std::unique(r.extras.begin(), r.extras.end()), r.extras.end());
    return ok();
  }

  Result<void> specifiers(Requirement& r) {
    const bool parenthesized = peek() == '(';
    if (parenthesized) ++pos_;
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ';' && text_[pos_] != ')') ++pos_;
    std::string_view clause = text_.substr(start, pos_ - start);
    if (parenthesized) {
      if (peek() != ')') return error("expected ')'");
      ++pos_;
    } else if (peek() == ')') {
      return error("unexpected ')'");
    }
    auto set = SpecifierSet::parse(clause);
    if (!set) return internal::rebase_error(set.error(), "invalid requirement", text_, start);
    r.specifier = std::move(*set);
    return ok();
  }

  Result<void> marker(Requirement& r) {
    ++pos_;  // ;
    size_t start = pos_;
    std::string_view rest = text_.substr(start);
    auto m = Marker::parse(rest);
    if (!m) return internal::rebase_error(m.error(), "invalid requirement", text_, start);
    r.marker = std::move(*m);
    pos_ = text_.size();
    return ok();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Result<Requirement> Requirement::parse(std::string_view text) {
  if (text.size() > kMaxRequirementLength)
    return fail(Errc::InvalidInput, "invalid requirement '" + std::string(text.substr(0, 64)) +
                                        "...': longer than " +
                                        std::to_string(kMaxRequirementLength) + " characters");
  // One line of printable text; tabs count as spaces.
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return internal::parse_error("invalid requirement", text, i, "control character");
  }
  return Parser(text).parse();
}

std::string Requirement::key() const { return normalize_name(name); }

std::string Requirement::to_string() const {
  std::string out = name;
  if (!extras.empty()) {
    out += "[";
    for (size_t i = 0; i < extras.size(); ++i) out += (i ? "," : "") + extras[i];
    out += "]";
  }
  if (!url.empty()) {
    out += " @ " + url;
    if (marker) out += " ";
  } else {
    out += specifier.to_string();
  }
  if (marker) out += "; " + marker->to_string();
  return out;
}

}  // namespace envbuild::conda::pypi
