#include "conda/pypi/version.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "common/ascii.hpp"
#include "conda/internal/text.hpp"

namespace envbuild::conda::pypi {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z'); }
bool is_separator(char c) { return c == '.' || c == '-' || c == '_'; }

// A cursor over the lowercased text; every step either consumes what it matched or leaves the
// position where it was, so optional parts can be tried one after the other.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  [[nodiscard]] size_t pos() const { return pos_; }
  void reset(size_t pos) { pos_ = pos; }
  [[nodiscard]] bool done() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const { return done() ? '\0' : text_[pos_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool eat_separator() {
    if (!is_separator(peek())) return false;
    ++pos_;
    return true;
  }
  bool eat_word(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  /// The first of `words` found here (callers list longer spellings first).
  template <size_t N>
  std::optional<std::string_view> eat_one_of(const std::array<std::string_view, N>& words) {
    for (std::string_view w : words)
      if (eat_word(w)) return w;
    return std::nullopt;
  }
  /// A run of digits; nullopt when there is none. Overflow is an error.
  Result<std::optional<uint64_t>> number(std::string_view original) {
    size_t start = pos_;
    while (is_digit(peek())) ++pos_;
    if (pos_ == start) return std::optional<uint64_t>();
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, value);
    if (ec != std::errc() || end != text_.data() + pos_)
      return internal::parse_error("invalid version", original, start,
                                   "number too large (at most 2^64-1)");
    return std::optional<uint64_t>(value);
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

constexpr std::array<std::string_view, 7> kPreLabels = {"preview", "alpha", "beta", "pre",
                                                        "rc",      "a",     "b"};
constexpr std::array<std::string_view, 3> kPostLabels = {"post", "rev", "r"};

Version::PreKind pre_kind(std::string_view label) {
  if (label == "alpha" || label == "a") return Version::PreKind::Alpha;
  if (label == "beta" || label == "b") return Version::PreKind::Beta;
  return Version::PreKind::Rc;  // c, rc, pre, preview
}

// The pre-release label has "c" too, after "rc" (so "rc" is never read as "r" + "c").
std::optional<std::string_view> eat_pre_label(Cursor& cursor) {
  if (auto label = cursor.eat_one_of(kPreLabels)) return label;
  if (cursor.eat('c')) return std::string_view("c");
  return std::nullopt;
}

}  // namespace

// Mirrors packaging's VERSION_PATTERN part by part: each optional part is tried at the current
// position and undone when it does not match completely.
Result<Version> Version::parse(std::string_view text) {
  std::string_view original = text;
  if (text.size() > kMaxVersionLength)
    return fail(Errc::InvalidInput, "invalid version '" + std::string(text.substr(0, 64)) +
                                        "...': longer than " +
                                        std::to_string(kMaxVersionLength) + " characters");
  std::string lowered = common::ascii_lower(text);
  // Leading and trailing whitespace is allowed; columns count from the original text.
  size_t first = lowered.find_first_not_of(" \t\r\n\f\v");
  size_t last = lowered.find_last_not_of(" \t\r\n\f\v");
  if (first == std::string::npos)
    return internal::parse_error("invalid version", original, 0, "empty version");
  Cursor c(std::string_view(lowered).substr(0, last + 1));
  c.reset(first);
  auto error = [&](std::string_view problem) {
    return internal::parse_error("invalid version", original, c.pos(), problem);
  };

  Version v;
  c.eat('v');
  ENVB_ASSIGN_OR_RETURN(auto head, c.number(original));
  if (!head) return error("expected a number");
  if (c.eat('!')) {
    v.epoch_ = *head;
    ENVB_ASSIGN_OR_RETURN(head, c.number(original));
    if (!head) return error("expected the release number after the epoch");
  }
  v.release_ = {*head};
  for (;;) {
    size_t save = c.pos();
    if (!c.eat('.')) break;
    ENVB_ASSIGN_OR_RETURN(auto part, c.number(original));
    if (!part) {
      c.reset(save);
      break;
    }
    v.release_.push_back(*part);
  }
  // Pre-release: [-_.]? label [-_.]? N?
  {
    size_t save = c.pos();
    c.eat_separator();
    if (auto label = eat_pre_label(c)) {
      // A separator after the label stays consumed even without a number, as the pattern's
      // `[-_.]?` does ("1.0a." is 1.0a0).
      c.eat_separator();
      ENVB_ASSIGN_OR_RETURN(auto n, c.number(original));
      v.pre_ = Pre{pre_kind(*label), n.value_or(0)};
    } else {
      c.reset(save);
    }
  }
  // Post-release: -N, or [-_.]? (post|rev|r) [-_.]? N?
  {
    size_t save = c.pos();
    bool found = false;
    if (c.eat('-')) {
      ENVB_ASSIGN_OR_RETURN(auto n, c.number(original));
      if (n) {
        v.post_ = *n;
        found = true;
      } else {
        c.reset(save);
      }
    }
    if (!found) {
      c.eat_separator();
      if (c.eat_one_of(kPostLabels)) {
        c.eat_separator();
        ENVB_ASSIGN_OR_RETURN(auto n, c.number(original));
        v.post_ = n.value_or(0);
      } else {
        c.reset(save);
      }
    }
  }
  // Development release: [-_.]? dev [-_.]? N?
  {
    size_t save = c.pos();
    c.eat_separator();
    if (c.eat_word("dev")) {
      c.eat_separator();
      ENVB_ASSIGN_OR_RETURN(auto n, c.number(original));
      v.dev_ = n.value_or(0);
    } else {
      c.reset(save);
    }
  }
  // Local version: +[a-z0-9]+([-_.][a-z0-9]+)*
  if (c.eat('+')) {
    for (;;) {
      size_t start = c.pos();
      bool digits_only = true;
      std::string segment;
      while (is_alnum(c.peek())) {
        digits_only = digits_only && is_digit(c.peek());
        segment += c.peek();
        c.reset(c.pos() + 1);
      }
      if (segment.empty()) return error("expected a letter or digit in the local version");
      if (digits_only) {
        c.reset(start);
        ENVB_ASSIGN_OR_RETURN(auto n, c.number(original));
        v.local_.emplace_back(*n);
      } else {
        v.local_.emplace_back(std::move(segment));
      }
      if (!c.eat_separator()) break;
    }
  }
  if (!c.done()) return error("unexpected character");
  // The bound holds for the normal form too ("1-1" is "1.post1"): else a version could be read
  // whose normal form (written to locks, compared as text) cannot be read back.
  if (v.to_string().size() > kMaxVersionLength)
    return fail(Errc::InvalidInput, "invalid version '" + std::string(original.substr(0, 64)) +
                                        "...': its normal form is longer than " +
                                        std::to_string(kMaxVersionLength) + " characters");
  return v;
}

std::string Version::to_string() const {
  std::string out;
  if (epoch_ != 0) out += std::to_string(epoch_) + "!";
  for (size_t i = 0; i < release_.size(); ++i)
    out += (i ? "." : "") + std::to_string(release_[i]);
  if (pre_) {
    out += pre_->kind == PreKind::Alpha ? "a" : pre_->kind == PreKind::Beta ? "b" : "rc";
    out += std::to_string(pre_->number);
  }
  if (post_) out += ".post" + std::to_string(*post_);
  if (dev_) out += ".dev" + std::to_string(*dev_);
  for (size_t i = 0; i < local_.size(); ++i) {
    out += i ? "." : "+";
    if (const auto* n = std::get_if<uint64_t>(&local_[i]))
      out += std::to_string(*n);
    else
      out += std::get<std::string>(local_[i]);
  }
  return out;
}

Version Version::public_version() const {
  Version v = *this;
  v.local_.clear();
  return v;
}

Version Version::base_version() const {
  Version v;
  v.epoch_ = epoch_;
  v.release_ = release_;
  return v;
}

namespace {

// packaging's _cmpkey: trailing zeros of the release do not count; a dev release without pre
// and post sorts before every pre-release of its release; no pre sorts after every pre; no
// post before every post; no dev after every dev; no local before every local.
std::strong_ordering compare_release(const std::vector<uint64_t>& a,
                                     const std::vector<uint64_t>& b) {
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = i < a.size() ? a[i] : 0;
    uint64_t y = i < b.size() ? b[i] : 0;
    if (auto c = x <=> y; c != 0) return c;
  }
  return std::strong_ordering::equal;
}

// -1: below every value, 0: a value, 1: above every value.
struct Bounded {
  int bound = 0;
  Version::Pre value;
  auto operator<=>(const Bounded&) const = default;
};

std::strong_ordering compare_local(const std::vector<Version::LocalSegment>& a,
                                   const std::vector<Version::LocalSegment>& b) {
  // A number sorts after a string; a longer local version after its own prefix.
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const auto* an = std::get_if<uint64_t>(&a[i]);
    const auto* bn = std::get_if<uint64_t>(&b[i]);
    if (an && bn) {
      if (auto c = *an <=> *bn; c != 0) return c;
    } else if (an) {
      return std::strong_ordering::greater;
    } else if (bn) {
      return std::strong_ordering::less;
    } else if (auto c = std::get<std::string>(a[i]).compare(std::get<std::string>(b[i])); c != 0) {
      return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
    }
  }
  return a.size() <=> b.size();
}

}  // namespace

std::strong_ordering operator<=>(const Version& a, const Version& b) {
  if (auto c = a.epoch_ <=> b.epoch_; c != 0) return c;
  if (auto c = compare_release(a.release_, b.release_); c != 0) return c;
  auto pre_key = [](const Version& v) {
    if (!v.pre_ && !v.post_ && v.dev_) return Bounded{-1, {}};
    if (!v.pre_) return Bounded{1, {}};
    return Bounded{0, *v.pre_};
  };
  if (auto c = pre_key(a) <=> pre_key(b); c != 0) return c;
  auto post_key = [](const Version& v) {
    return v.post_ ? std::pair<int, uint64_t>{0, *v.post_} : std::pair<int, uint64_t>{-1, 0};
  };
  if (auto c = post_key(a) <=> post_key(b); c != 0) return c;
  auto dev_key = [](const Version& v) {
    return v.dev_ ? std::pair<int, uint64_t>{0, *v.dev_} : std::pair<int, uint64_t>{1, 0};
  };
  if (auto c = dev_key(a) <=> dev_key(b); c != 0) return c;
  if (a.local_.empty() != b.local_.empty())
    return a.local_.empty() ? std::strong_ordering::less : std::strong_ordering::greater;
  return compare_local(a.local_, b.local_);
}

}  // namespace envbuild::conda::pypi
