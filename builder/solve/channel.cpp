#include "builder/solve/channel.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "common/http.hpp"

namespace envbuild::builder {

namespace {

std::string strip_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find("//") != std::string_view::npos)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

// conda expands ${VAR} in channel URLs (tokens and passwords stay out of environment files);
// an unset variable is an error rather than an empty string in a URL.
Result<std::string> expand_variables(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = text.find("${", i);
    if (start == std::string_view::npos) break;
    size_t end = text.find('}', start + 2);
    if (end == std::string_view::npos) break;
    out += text.substr(i, start - i);
    const std::string name(text.substr(start + 2, end - start - 2));
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    if (!value)
      return fail(Errc::InvalidInput,
                  "channel '" + common::redact_url(text) + "': ${" + name + "} is not set")
          .with_hint("set " + (name.empty() ? std::string("the variable") : name) +
                     " in the environment, or write the value in the channel");
    out += value;
    i = end + 1;
  }
  out += text.substr(i);
  return out;
}

}  // namespace

namespace {

/// Removes "." and ".." segments from a path that starts with '/'.
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view segment = path.substr(start, slash - start);
    const bool last = slash == path.size();
    if (segment == "..") {
      if (!out.empty()) out.pop_back();
      if (last) out.emplace_back();  // "a/.." names the directory: keep the trailing slash
    } else if (segment == ".") {
      if (last) out.emplace_back();
    } else {
      out.push_back(segment);
    }
    start = slash + 1;
  }
  std::string result;
  for (std::string_view s : out) {
    result += '/';
    result += s;
  }
  return result.empty() ? "/" : result;
}

}  // namespace

std::string resolve_url(std::string_view base, std::string_view reference) {
  auto scheme_end = [](std::string_view u) -> size_t {
    size_t colon = u.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::string_view::npos;
    for (size_t i = 0; i < colon; ++i) {
      char c = u[i];
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
        return std::string_view::npos;
    }
    return colon;
  };
  if (scheme_end(reference) != std::string_view::npos) return std::string(reference);
  // RFC 3986 5.2: only the base's scheme, authority and path take part (its query and fragment
  // never reach the result; pypi_index_fuzz found a base fragment holding '/').
  base = base.substr(0, base.find_first_of("?#"));
  const size_t colon = scheme_end(base);
  const std::string_view scheme = colon == std::string_view::npos ? "" : base.substr(0, colon + 1);
  std::string_view rest = base.substr(scheme.size());
  std::string_view authority;
  if (rest.starts_with("//")) {
    size_t end = rest.find('/', 2);
    if (end == std::string_view::npos) end = rest.size();
    authority = rest.substr(0, end);
    rest = rest.substr(end);
  }
  if (reference.starts_with("//")) return std::string(scheme) + std::string(reference);
  std::string path;
  if (reference.starts_with("/")) {
    path = reference;
  } else {
    std::string dir(rest.substr(0, rest.rfind('/') + 1));
    if (dir.empty()) dir = "/";
    path = dir + std::string(reference);
  }
  return std::string(scheme) + std::string(authority) + remove_dot_segments(path);
}

std::string Channel::url(std::string_view subdir, std::string_view file) const {
  std::string out = fetch_base() + "/" + std::string(subdir);
  if (!file.empty()) out += "/" + std::string(file);
  return out;
}

std::string Channel::display_url(std::string_view subdir, std::string_view file) const {
  return common::redact_url(url(subdir, file));
}

namespace {

Result<Channel> resolve_unmirrored(std::string_view text_in, const ChannelOptions& options);

bool under(std::string_view url, std::string_view base) {
  return url.starts_with(base) && (url.size() == base.size() || url[base.size()] == '/');
}

}  // namespace

Result<Channel> resolve_channel(std::string_view text, const ChannelOptions& options) {
  ENVB_ASSIGN_OR_RETURN(Channel channel, resolve_unmirrored(text, options));
  const std::string shown = common::redact_url(channel.base_url);
  for (const Mirror& m : options.mirrors)
    if (under(shown, m.original)) {
      channel.mirror_url = m.mirror + shown.substr(m.original.size());
      break;
    }
  return channel;
}

Result<Mirror> parse_mirror(std::string_view text, const ChannelOptions& options) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    return fail(Errc::InvalidInput,
                "--mirror '" + common::redact_url(text) + "' is not ORIGINAL=MIRROR")
        .with_hint("e.g. --mirror https://conda.anaconda.org/conda-forge=https://mirror/cf");
  ENVB_ASSIGN_OR_RETURN(Channel original, resolve_unmirrored(text.substr(0, eq), options));
  ENVB_ASSIGN_OR_RETURN(Channel mirror, resolve_unmirrored(text.substr(eq + 1), options));
  return Mirror{common::redact_url(original.base_url), mirror.base_url};
}

std::string mirrored_url(std::string_view url, const std::vector<Mirror>& mirrors) {
  for (const Mirror& m : mirrors)
    if (under(url, m.original)) return m.mirror + std::string(url.substr(m.original.size()));
  return std::string(url);
}

namespace {

// Where a channel name lives: the custom channel of its longest leading segments, else the alias.
std::string name_base(std::string_view name, const ChannelOptions& options) {
  std::string_view best;
  std::string base = strip_slashes(options.alias);
  for (const auto& [custom, url] : options.custom_channels)
    if (custom.size() > best.size() && under(name, custom)) {
      best = custom;
      base = strip_slashes(url);
    }
  return base;
}

Result<Channel> resolve_unmirrored(std::string_view text_in, const ChannelOptions& options) {
  ENVB_ASSIGN_OR_RETURN(std::string expanded, expand_variables(text_in));
  std::string text = strip_slashes(std::move(expanded));
  auto bad = [&](const std::string& why) {
    return fail(Errc::InvalidInput, "channel '" + common::redact_url(text) + "': " + why);
  };
  if (text.empty()) return bad("empty channel name");
  if (text == "defaults" || text == "nodefaults")
    return bad("'" + text + "' is a channel list keyword, not a channel");
  if (text.starts_with("http://") || text.starts_with("https://")) {
    return Channel{common::redact_url(text), text, {}};
  }
  std::string path;
  if (text.starts_with("file://")) {
    path = text.substr(7);
  } else if (text.starts_with("/") || text.starts_with("./") || text.starts_with("../") ||
             text == "." || text == "..") {
    path = text;
  } else if (text.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (!home) return bad("HOME is not set");
    path = std::string(home) + text.substr(1);
  }
  if (!path.empty()) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec).lexically_normal();
    if (ec || !std::filesystem::is_directory(abs, ec))
      return fail(Errc::NotFound, "channel '" + text + "': no such directory " + abs.string());
    std::string dir = strip_slashes(abs.string());
    return Channel{"file://" + dir, "file://" + dir, {}};
  }
  if (!valid_name(text))
    return bad("not a channel name, URL or local directory")
        .with_hint(
            "channels are names (conda-forge), URLs (https://host/channel) or paths "
            "(/path/to/channel, file:///path)");
  return Channel{text, name_base(text, options) + "/" + text, {}};
}

}  // namespace

std::vector<std::string> credentialed_base_urls(const std::vector<Channel>& channels) {
  std::vector<std::string> out;
  for (const auto& c : channels)
    if (common::redact_url(c.base_url) != c.base_url) out.push_back(c.base_url);
  return out;
}

std::vector<std::string> credentialed_base_urls(const std::vector<std::string>& texts,
                                                const ChannelOptions& options) {
  std::vector<Channel> channels;
  auto add = [&](const std::string& text) {
    if (auto c = resolve_channel(text, options)) channels.push_back(std::move(*c));
  };
  for (const auto& text : texts) {
    if (text == "nodefaults") continue;
    if (text != "defaults") {
      add(text);
      continue;
    }
    for (const auto& d : options.default_channels) add(d);
  }
  return credentialed_base_urls(channels);
}

std::string with_credentials(std::string_view url, const std::vector<std::string>& bases) {
  for (const auto& base : bases) {
    std::string shown = common::redact_url(base);
    if (url.starts_with(shown) && url.size() > shown.size() && url[shown.size()] == '/')
      return base + std::string(url.substr(shown.size()));
  }
  // A redacted password no channel supplies is worse than none: without the `user:***@` part
  // curl looks the host up in ~/.netrc.
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) {
    size_t start = scheme + 3;
    size_t end = url.find_first_of("/?#", start);
    std::string_view authority =
        url.substr(start, end == std::string_view::npos ? end : end - start);
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos && authority.substr(0, at).ends_with(":***"))
      return std::string(url.substr(0, start)) + std::string(url.substr(start + at + 1));
  }
  return std::string(url);
}

Result<std::vector<Channel>> resolve_channels(const std::vector<std::string>& texts,
                                              const ChannelOptions& options) {
  std::vector<Channel> out;
  auto add = [&](Channel c) {
    bool dup = std::any_of(out.begin(), out.end(),
                           [&](const Channel& o) { return o.base_url == c.base_url; });
    if (!dup) out.push_back(std::move(c));
  };
  for (const std::string& text : texts) {
    if (text == "nodefaults") continue;
    if (text == "defaults") {
      for (const std::string& d : options.default_channels) {
        ENVB_ASSIGN_OR_RETURN(Channel c, resolve_channel(d, options));
        add(std::move(c));
      }
      continue;
    }
    ENVB_ASSIGN_OR_RETURN(Channel c, resolve_channel(text, options));
    add(std::move(c));
  }
  if (out.empty())
    return fail(Errc::InvalidInput, "no channels to solve from")
        .with_hint("add a channel to the environment file's 'channels:' or pass --channel");
  return out;
}

bool is_known_platform(std::string_view p) {
  static constexpr std::string_view kKnown[] = {
      "linux-64",  "linux-aarch64", "linux-ppc64le",     "linux-s390x", "linux-armv7l",
      "linux-32",  "osx-64",        "osx-arm64",         "win-64",      "win-32",
      "win-arm64", "noarch",        "emscripten-wasm32", "wasi-wasm32", "zos-z"};
  return std::find(std::begin(kKnown), std::end(kKnown), p) != std::end(kKnown);
}

}  // namespace envbuild::builder
