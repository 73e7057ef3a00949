#include "conda/pypi/installed.hpp"

#include <set>

#include "conda/pypi/name.hpp"

namespace envbuild::conda::pypi {

namespace {

// "x-1.0" -> {"x", "1.0"}; "x-1.0-py3.11" -> {"x", "1.0"}; "x" -> {"x", ""}.
std::pair<std::string, std::string> split_name_version(std::string_view stem) {
  auto dash = stem.find('-');
  if (dash == std::string_view::npos) return {normalize_name(stem), ""};
  std::string_view rest = stem.substr(dash + 1);
  return {normalize_name(stem.substr(0, dash)), std::string(rest.substr(0, rest.find('-')))};
}

}  // namespace

std::vector<DistributionMetadataPath> distribution_metadata_paths(
    const std::vector<std::string>& paths) {
  std::vector<DistributionMetadataPath> out;
  std::set<std::string> seen;
  for (const auto& path : paths) {
    // The site-packages directory the entry is directly in (or one level below, for a
    // .dist-info/.egg-info directory's file).
    auto sp = path.rfind("site-packages/");
    if (sp == std::string::npos || (sp > 0 && path[sp - 1] != '/')) continue;
    std::string_view rest = std::string_view(path).substr(sp + 14);
    auto slash = rest.find('/');
    std::string_view entry = rest.substr(0, slash);
    std::string_view inner = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    std::string metadata_path;
    std::string_view stem;
    if (entry.ends_with(".dist-info") && inner == "METADATA") {
      stem = entry.substr(0, entry.size() - 10);
      metadata_path = path;
    } else if (entry.ends_with(".egg-info") && inner == "PKG-INFO") {
      stem = entry.substr(0, entry.size() - 9);
      metadata_path = path;
    } else if (entry.ends_with(".egg-info") && slash == std::string_view::npos) {
      stem = entry.substr(0, entry.size() - 9);  // a single-file egg-info is the PKG-INFO
      metadata_path = path;
    } else {
      continue;
    }
    if (!seen.insert(metadata_path).second) continue;
    auto [name, version] = split_name_version(stem);
    out.push_back({metadata_path, name, version});
  }
  return out;
}

}  // namespace envbuild::conda::pypi
