#include "builder/pypi/lock.hpp"

#include <algorithm>

#include "builder/pypi/simple_index.hpp"

namespace envbuild::builder::pypi {

namespace {

std::set<std::string> names_under(const conda::CondaLockMetadata& metadata, std::string_view key) {
  std::set<std::string> out;
  for (const auto& [k, v] : metadata.custom_metadata) {
    if (k != key) continue;
    size_t start = 0;
    while (start < v.size()) {
      size_t end = v.find(' ', start);
      if (end == std::string::npos) end = v.size();
      if (end > start) out.insert(v.substr(start, end - start));
      start = end + 1;
    }
  }
  return out;
}

void merge_names(conda::CondaLockMetadata& metadata, std::string_view key,
                 const std::set<std::string>& names) {
  std::set<std::string> all = names_under(metadata, key);
  all.insert(names.begin(), names.end());
  std::string joined;
  for (const auto& n : all) joined += (joined.empty() ? "" : " ") + n;
  auto& custom = metadata.custom_metadata;
  custom.erase(std::remove_if(custom.begin(), custom.end(),
                              [&](const auto& kv) { return kv.first == key; }),
               custom.end());
  if (!joined.empty()) custom.emplace_back(std::string(key), joined);
}

}  // namespace

conda::CondaLockPackage lock_entry(const WheelToInstall& wheel, const std::string& platform) {
  conda::CondaLockPackage p;
  p.name = wheel.name;
  p.version = wheel.version;
  p.manager = conda::CondaLockPackage::Manager::Pip;
  p.platform = platform;
  p.dependencies = wheel.dependencies;
  p.url = wheel.url;
  p.sha256 = wheel.sha256;
  return p;
}

void add_requested(conda::CondaLockMetadata& metadata, const std::vector<WheelToInstall>& wheels) {
  std::set<std::string> requested, direct;
  for (const auto& w : wheels) {
    if (w.requested) requested.insert(w.name);
    if (w.direct_url) direct.insert(w.name);
  }
  merge_names(metadata, kRequestedKey, requested);
  merge_names(metadata, kDirectKey, direct);
}

WheelToInstall locked_wheel(const conda::CondaLockPackage& entry,
                            const conda::CondaLockMetadata& metadata) {
  WheelToInstall w;
  w.name = entry.name;
  w.version = entry.version;
  w.url = entry.url;
  std::string path = entry.url.substr(0, entry.url.find_first_of("?#"));
  w.filename = percent_decode(path.substr(path.rfind('/') + 1));
  w.sha256 = entry.sha256;
  w.dependencies = entry.dependencies;
  w.requested = names_under(metadata, kRequestedKey).count(entry.name) > 0;
  w.direct_url = names_under(metadata, kDirectKey).count(entry.name) > 0;
  return w;
}

}  // namespace envbuild::builder::pypi
