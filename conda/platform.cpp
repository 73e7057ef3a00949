#include "conda/platform.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "conda/internal/text.hpp"

namespace envbuild::conda {
namespace {

// conda's KNOWN_SUBDIRS (conda/base/constants.py), plus linux-riscv32 and osx-32 (rattler's).
constexpr std::array<std::string_view, 21> kKnown = {
    "emscripten-wasm32", "linux-32",     "linux-64",      "linux-aarch64",
    "linux-armv6l",      "linux-armv7l", "linux-ppc64",   "linux-ppc64le",
    "linux-riscv64",     "linux-s390x",  "noarch",        "osx-64",
    "osx-arm64",         "wasi-wasm32",  "win-32",        "win-64",
    "win-arm64",         "zos-z",        "linux-riscv32", "osx-32",
    "freebsd-64"};

}  // namespace

Result<Platform> Platform::parse(std::string_view subdir) {
  if (std::find(kKnown.begin(), kKnown.end(), subdir) == kKnown.end()) {
    Error error = fail(Errc::InvalidInput, "unknown platform '" + std::string(subdir) + "'");
    auto known_list = known();
    if (auto guess = internal::did_you_mean(subdir, known_list)) {
      return std::move(error).with_hint("did you mean '" + *guess + "'?");
    }
    return error;
  }
  Platform p;
  p.subdir_ = std::string(subdir);
  std::string_view os = subdir.substr(0, subdir.find('-'));
  if (os == "linux") p.os_ = Os::Linux;
  if (os == "osx") p.os_ = Os::Osx;
  if (os == "win") p.os_ = Os::Win;
  if (os == "emscripten") p.os_ = Os::Emscripten;
  if (os == "wasi") p.os_ = Os::Wasi;
  if (os == "zos") p.os_ = Os::Zos;
  if (os == "freebsd") p.os_ = Os::FreeBsd;
  return p;
}

std::vector<std::string_view> Platform::known() {
  std::vector<std::string_view> out(kKnown.begin(), kKnown.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::string_view Platform::arch() const noexcept {
  std::string_view s = subdir_;
  size_t dash = s.find('-');
  return dash == std::string_view::npos ? std::string_view{} : s.substr(dash + 1);
}

bool Platform::satisfies(std::string_view selector) const {
  std::string_view a = arch();
  if (selector == subdir_) return true;
  std::string underscored = subdir_;
  std::replace(underscored.begin(), underscored.end(), '-', '_');
  if (selector == underscored) return true;
  if (selector == "linux") return os_ == Os::Linux;
  if (selector == "osx") return os_ == Os::Osx;
  if (selector == "win") return os_ == Os::Win;
  if (selector == "unix") return is_unix();
  if (selector == "emscripten") return os_ == Os::Emscripten;
  if (selector == "freebsd") return os_ == Os::FreeBsd;
  if (selector == "linux64") return subdir_ == "linux-64";
  if (selector == "linux32") return subdir_ == "linux-32";
  if (selector == "osx64") return subdir_ == "osx-64";
  if (selector == "win64") return subdir_ == "win-64";
  if (selector == "win32") return subdir_ == "win-32";
  if (selector == "aarch64") return a == "aarch64";
  if (selector == "arm64") return a == "arm64";
  if (selector == "x86_64") return a == "64" && os_ != Os::None;
  if (selector == "x86") return a == "32" || a == "64";
  if (selector == "ppc64le" || selector == "s390x" || selector == "armv7l" ||
      selector == "armv6l" || selector == "riscv64") {
    return a == selector;
  }
  return false;
}

namespace {

class SelectorParser {
 public:
  SelectorParser(std::string_view text, const Platform& platform)
      : text_(text), platform_(platform) {}

  Result<bool> parse() {
    ENVB_ASSIGN_OR_RETURN(bool value, parse_or());
    skip_space();
    if (pos_ != text_.size()) return unsupported();
    return value;
  }

 private:
  Error unsupported() const {
    return internal::parse_error("unsupported selector", text_, pos_,
                                 "only names, 'not', 'and', 'or' and parentheses are supported");
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  std::string_view peek_word() {
    skip_space();
    size_t end = pos_;
    while (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) ||
                                  text_[end] == '_' || text_[end] == '-')) {
      ++end;
    }
    return text_.substr(pos_, end - pos_);
  }
  Result<bool> parse_or() {
    ENVB_ASSIGN_OR_RETURN(bool value, parse_and());
    while (peek_word() == "or") {
      pos_ += 2;
      ENVB_ASSIGN_OR_RETURN(bool rhs, parse_and());
      value = value || rhs;
    }
    return value;
  }
  Result<bool> parse_and() {
    ENVB_ASSIGN_OR_RETURN(bool value, parse_not());
    while (peek_word() == "and") {
      pos_ += 3;
      ENVB_ASSIGN_OR_RETURN(bool rhs, parse_not());
      value = value && rhs;
    }
    return value;
  }
  Result<bool> parse_not() {
    // `not` and parentheses recurse: a selector comment of 30 KB of "(" must end in an error,
    // not in a stack overflow.
    if (++depth_ > kMaxDepth)
      return internal::parse_error(
          "selector nested too deeply", text_, pos_,
          "at most " + std::to_string(kMaxDepth) + " levels of 'not' and parentheses");
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    if (peek_word() == "not") {
      pos_ += 3;
      ENVB_ASSIGN_OR_RETURN(bool value, parse_not());
      return !value;
    }
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      ++pos_;
      ENVB_ASSIGN_OR_RETURN(bool value, parse_or());
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != ')') return unsupported();
      ++pos_;
      return value;
    }
    std::string_view word = peek_word();
    if (word.empty()) return unsupported();
    pos_ += word.size();
    return platform_.satisfies(word);
  }

  static constexpr int kMaxDepth = 32;
  std::string_view text_;
  const Platform& platform_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<bool> evaluate_selector(std::string_view expression, const Platform& platform) {
  return SelectorParser(expression, platform).parse();
}

std::string host_subdir() {
  struct utsname u {};
  if (::uname(&u) != 0) return "linux-64";
  std::string machine = u.machine;
  if (machine == "x86_64") return "linux-64";
  if (machine == "aarch64" || machine == "arm64") return "linux-aarch64";
  if (machine == "ppc64le") return "linux-ppc64le";
  if (machine == "s390x") return "linux-s390x";
  return "linux-" + machine;
}

}  // namespace envbuild::conda
