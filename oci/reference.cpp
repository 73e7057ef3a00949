#include "oci/reference.hpp"

#include <algorithm>

namespace envbuild::oci {

namespace {

Error bad(std::string_view text, std::string_view why) {
  return Error(Errc::InvalidInput,
               "invalid image reference '" + std::string(text) + "': " + std::string(why))
      .with_hint(
          "use oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or "
          "docker://HOST/REPO:TAG");
}

bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool alnum(char c) {
  return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
bool valid_path_component(std::string_view c) {
  size_t i = 0;
  auto run = [&] {  // [a-z0-9]+
    size_t start = i;
    while (i < c.size() && lower_alnum(c[i])) ++i;
    return i > start;
  };
  if (!run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!run()) return false;
  }
  return true;
}

// One DNS label: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9].
bool valid_domain_label(std::string_view label) {
  if (label.empty() || !alnum(label.front()) || !alnum(label.back())) return false;
  return std::all_of(label.begin(), label.end(), [](char c) { return alnum(c) || c == '-'; });
}

bool valid_port(std::string_view port) {
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const int value = std::stoi(std::string(port));
  return value >= 1 && value <= 65535;
}

/// "NAME[:TAG]" where NAME may hold "host:port/": the tag is after the last ':' that follows
/// the last '/'.
std::pair<std::string_view, std::string_view> split_tag(std::string_view text) {
  size_t slash = text.rfind('/');
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash))
    return {text, {}};
  return {text.substr(0, colon), text.substr(colon + 1)};
}

Result<ImageReference> parse_docker(std::string_view text, std::string_view shown);

}  // namespace

bool is_valid_repository_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxReferenceNameLength) return false;
  for (size_t start = 0;;) {
    size_t slash = name.find('/', start);
    if (!valid_path_component(name.substr(start, slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool is_valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (!alnum(tag.front()) && tag.front() != '_') return false;
  return std::all_of(tag.begin(), tag.end(),
                     [](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool is_valid_registry_host(std::string_view host) {
  if (host.empty() || host.size() > kMaxReferenceNameLength) return false;
  std::string_view name = host;
  std::string_view port;
  if (name.front() == '[') {  // [IPv6]:port, as docker's grammar writes it: [a-fA-F0-9:]+
    size_t close = name.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    std::string_view address = name.substr(1, close - 1);
    if (!std::all_of(address.begin(), address.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                 c == ':';
        }))
      return false;
    std::string_view rest = name.substr(close + 1);
    if (rest.empty()) return true;
    return rest.front() == ':' && valid_port(rest.substr(1));
  }
  if (size_t colon = name.find(':'); colon != std::string_view::npos) {
    port = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (!valid_port(port)) return false;
  }
  for (size_t start = 0;;) {
    size_t dot = name.find('.', start);
    if (!valid_domain_label(name.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

Result<ImageReference> parse_docker_reference(std::string_view text) {
  return parse_docker(text, text);
}

namespace {

Result<ImageReference> parse_docker(std::string_view text, std::string_view shown) {
  ImageReference ref;
  ref.transport = Transport::Registry;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    auto digest = Digest::parse(rest.substr(at + 1));
    if (!digest) return bad(shown, digest.error().message());
    ref.digest = *digest;
    rest = rest.substr(0, at);
  }
  auto [name, tag] = split_tag(rest);
  if (!tag.empty() || rest.ends_with(":")) {
    if (!is_valid_tag(tag)) return bad(shown, "invalid tag '" + std::string(tag) + "'");
    ref.tag = tag;
  }
  size_t slash = name.find('/');
  std::string_view first = name.substr(0, slash);
  if (slash != std::string_view::npos &&
      (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
       first == "localhost")) {
    ref.host = first;
    ref.name = name.substr(slash + 1);
  } else {
    ref.host = "docker.io";
    ref.name = slash == std::string_view::npos ? "library/" + std::string(name) : std::string(name);
  }
  if (!is_valid_registry_host(ref.host))
    return bad(shown, "invalid registry host '" + ref.host + "'");
  if (!is_valid_repository_name(ref.name))
    return bad(shown, "invalid repository name '" + ref.name +
                          "' (components of lowercase letters and digits, inner separators "
                          "'.', '_', '__' or dashes, joined by '/')");
  if (ref.host.size() + 1 + ref.name.size() > kMaxReferenceNameLength)
    return bad(shown, "HOST/NAME is longer than " + std::to_string(kMaxReferenceNameLength) +
                          " characters");
  return ref;
}

}  // namespace

Result<ImageReference> ImageReference::parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return bad(text, "missing transport");
  std::string_view transport = text.substr(0, colon);
  std::string_view rest = text.substr(colon + 1);
  if (transport == "docker") {
    if (!rest.starts_with("//")) return bad(text, "docker transport needs 'docker://'");
    return parse_docker(rest.substr(2), text);
  }
  ImageReference ref;
  if (transport == "oci") {
    ref.transport = Transport::OciLayout;
  } else if (transport == "oci-archive") {
    ref.transport = Transport::OciArchive;
  } else if (transport == "docker-archive") {
    ref.transport = Transport::DockerArchive;
  } else {
    return bad(text, "unknown transport '" + std::string(transport) + "'");
  }
  // Like skopeo: the path ends at the first ':'.
  size_t split = rest.find(':');
  ref.path = rest.substr(0, split);
  if (ref.path.empty()) return bad(text, "empty path");
  if (split == std::string_view::npos) return ref;
  std::string_view suffix = rest.substr(split + 1);
  if (ref.transport == Transport::DockerArchive) {
    auto [name, tag] = split_tag(suffix);
    if (name.empty()) return bad(text, "empty image name");
    ref.name = name;
    ref.tag = tag.empty() ? "latest" : std::string(tag);
    if (!is_valid_tag(ref.tag)) return bad(text, "invalid tag '" + ref.tag + "'");
    return ref;
  }
  if (suffix.empty()) return bad(text, "empty tag");
  ref.tag = suffix;
  return ref;
}

std::string ImageReference::to_string() const {
  switch (transport) {
    case Transport::OciLayout:
      return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::OciArchive:
      return "oci-archive:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::DockerArchive:
      return "docker-archive:" + path + (name.empty() ? "" : ":" + name + ":" + tag);
    case Transport::Registry:
      return "docker://" + host + "/" + name + (tag.empty() ? "" : ":" + tag) +
             (digest.valid() ? "@" + digest.to_string() : "");
  }
  return {};
}

}  // namespace envbuild::oci
