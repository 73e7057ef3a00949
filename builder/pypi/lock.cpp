#include "builder/pypi/lock.hpp"

#include <algorithm>

#include "builder/pypi/simple_index.hpp"
#include "conda/pypi/name.hpp"
#include "conda/pypi/requirement.hpp"

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
  // conda-lock writes "*" for a requirement without a version constraint.
  for (auto& [name, constraint] : p.dependencies)
    if (constraint.empty()) constraint = "*";
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
  w.filename = filename_of(entry.url);
  w.sha256 = entry.sha256;
  w.dependencies = entry.dependencies;
  for (auto& [name, constraint] : w.dependencies)
    if (constraint == "*") constraint.clear();
  w.requested = names_under(metadata, kRequestedKey).count(entry.name) > 0;
  w.direct_url = names_under(metadata, kDirectKey).count(entry.name) > 0;
  return w;
}

namespace {

// One pixi.lock pypi package as a wheel: where it comes from, without its dependencies yet.
Result<WheelToInstall> pixi_wheel(const conda::PixiLockPackage& p, const std::filesystem::path& lock_dir,
                                  const std::string& file) {
  const std::string what = file + ": pypi package " + p.name + " " + p.version;
  WheelToInstall w;
  w.name = conda::pypi::normalize_name(p.name);
  w.version = p.version;
  w.sha256 = p.sha256;
  std::string location = p.location;
  if (location.starts_with("direct+")) {
    location.erase(0, 7);
    w.direct_url = true;
  }
  if (p.is_url()) {
    w.url = location;
  } else {
    w.url = "file://" + (lock_dir / location).lexically_normal().string();
    w.direct_url = true;
  }
  w.filename = filename_of(w.url);
  if (p.editable || !w.filename.ends_with(".whl"))
    return fail(Errc::Unsupported, what + " is " +
                                       (p.editable ? "an editable install" : "not a wheel") + " (" +
                                       p.location + "): envbuild installs wheels only")
        .with_hint("build a wheel of it and lock that, or list it in environment.yml's pip: section");
  // A wheel beside the lock may have no sha256 (pixi records none for paths): it is hashed when
  // it is read. A download must have one.
  if (w.sha256.empty() && !w.url.starts_with("file://"))
    return fail(Errc::InvalidInput, what + " has no sha256 to verify its download against")
        .with_hint("lock it again with a pixi that records hashes");
  return w;
}

}  // namespace

Result<std::vector<WheelToInstall>> pixi_wheels(
    const std::vector<const conda::PixiLockPackage*>& packages,
    const std::filesystem::path& lock_dir, const std::string& file) {
  std::vector<WheelToInstall> out;
  std::vector<const conda::PixiLockPackage*> sources;
  for (const conda::PixiLockPackage* p : packages) {
    if (p->kind != conda::PixiLockPackage::Kind::Pypi) continue;
    ENVB_ASSIGN_OR_RETURN(auto wheel, pixi_wheel(*p, lock_dir, file));
    out.push_back(std::move(wheel));
    sources.push_back(p);
  }
  std::set<std::string> names, required;
  for (const auto& w : out) names.insert(w.name);
  for (size_t i = 0; i < out.size(); ++i) {
    for (const std::string& text : sources[i]->depends) {
      ENVB_ASSIGN_OR_RETURN(auto req, conda::pypi::Requirement::parse(text)
                                          .context(file + ": requires_dist of " + out[i].name));
      const std::string key = req.key();
      if (!names.count(key) || key == out[i].name) continue;
      out[i].dependencies.emplace_back(key, req.specifier.to_string());
      required.insert(key);
    }
  }
  for (auto& w : out) w.requested = !required.count(w.name);
  return out;
}

}  // namespace envbuild::builder::pypi
