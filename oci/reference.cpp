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

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  };
  return std::all_of(tag.begin(), tag.end(), ok_char) && tag.front() != '.' && tag.front() != '-';
}

bool valid_repository(std::string_view repo) {
  if (repo.empty()) return false;
  for (char c : repo)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return repo.front() != '/' && repo.back() != '/' && repo.find("//") == std::string_view::npos;
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
    if (!valid_tag(tag)) return bad(shown, "invalid tag '" + std::string(tag) + "'");
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
  if (!valid_repository(ref.name))
    return bad(shown,
               "invalid repository name '" + ref.name + "' (lowercase letters, digits, . _ - /)");
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
    if (!valid_tag(ref.tag)) return bad(text, "invalid tag '" + ref.tag + "'");
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
