#include "conda/channel_spec.hpp"

#include <algorithm>
#include <cctype>

#include "conda/internal/text.hpp"
#include "conda/platform.hpp"

namespace envbuild::conda {

namespace {

UnresolvedChannel::Kind kind_of(std::string_view text) {
  using Kind = UnresolvedChannel::Kind;
  if (text.find("://") != std::string_view::npos)
    return text.starts_with("file://") ? Kind::Path : Kind::Url;
  if (text.starts_with('/') || text.starts_with("./") || text.starts_with("../") ||
      text.starts_with("~/") || text == "." || text == ".." ||
      (text.size() > 2 && text[1] == ':' && (text[2] == '\\' || text[2] == '/')))
    return Kind::Path;
  return Kind::Name;
}

/// `text` without its trailing slashes, each only while the shorter text still reads as `kind`
/// ("~/" and "C:/" keep theirs).
std::string_view without_trailing_slashes(std::string_view text, UnresolvedChannel::Kind kind) {
  while (text.size() > 1 && text.back() == '/' && kind_of(text.substr(0, text.size() - 1)) == kind)
    text.remove_suffix(1);
  return text;
}

}  // namespace

Result<UnresolvedChannel> UnresolvedChannel::parse(std::string_view input) {
  constexpr std::string_view kWhat = "invalid channel";
  std::string_view text = internal::trim(input);
  if (text.empty()) return fail(Errc::InvalidInput, "invalid channel '': empty");
  if (size_t bad = internal::first_control_char(text); bad != std::string_view::npos)
    return internal::parse_error(kWhat, text, bad, "control character");
  UnresolvedChannel channel;
  if (text.back() == ']') {
    size_t open = text.rfind('[');
    if (open == std::string_view::npos) {
      return internal::parse_error(kWhat, text, text.size() - 1, "unbalanced ']'");
    }
    std::string_view list = text.substr(open + 1, text.size() - open - 2);
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = std::min(list.find(',', start), list.size());
      std::string_view item = internal::trim(list.substr(start, comma - start));
      auto platform = Platform::parse(item);
      if (!platform) {
        return internal::parse_error(kWhat, text, open + 1 + start,
                                     "unknown platform '" + std::string(item) + "'");
      }
      channel.platforms_.push_back(platform->to_string());
      start = comma + 1;
    }
    text = text.substr(0, open);
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      return internal::parse_error(kWhat, text, i, "unexpected space");
    }
  }
  channel.kind_ = kind_of(text);
  text = without_trailing_slashes(text, channel.kind_);
  if (channel.kind_ == Kind::Name) {
    // A name is printed bare inside match specs (`name::pkg`), so it may only hold characters
    // that cannot be mistaken for spec syntax.
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
          c != '+' && c != '/') {
        return internal::parse_error(kWhat, text, i,
                                     std::string("unexpected character '") + c +
                                         "' in channel name (a path starts with / ./ or ../, a "
                                         "URL with scheme://)");
      }
    }
  }
  if (channel.kind_ == Kind::Name && channel.platforms_.empty()) {
    // `conda-forge/linux-64`: the subdir is a filter, not part of the name.
    size_t slash = text.rfind('/');
    if (slash != std::string_view::npos && Platform::parse(text.substr(slash + 1))) {
      channel.platforms_.emplace_back(text.substr(slash + 1));
      text = without_trailing_slashes(text.substr(0, slash), channel.kind_);
    }
  }
  if (text.empty()) return internal::parse_error(kWhat, input, 0, "empty channel name");
  // "x]/" would print as "x]", which reads as a platform list.
  if (text.back() == ']')
    return internal::parse_error(kWhat, text, text.size() - 1, "a channel cannot end in ']'");
  channel.location_ = std::string(text);
  return channel;
}

std::string UnresolvedChannel::short_name() const {
  std::string_view loc = location_;
  size_t slash = loc.rfind('/');
  if (kind_ == Kind::Name) return std::string(loc);
  return std::string(slash == std::string_view::npos ? loc : loc.substr(slash + 1));
}

UnresolvedChannel UnresolvedChannel::without_platforms() const {
  UnresolvedChannel bare = *this;
  bare.platforms_.clear();
  return bare;
}

std::string UnresolvedChannel::to_string() const {
  if (platforms_.empty()) return location_;
  std::string out = location_ + "[";
  for (size_t i = 0; i < platforms_.size(); ++i) {
    if (i) out += ",";
    out += platforms_[i];
  }
  return out + "]";
}

}  // namespace envbuild::conda
