#include "conda/lockfile_pixi.hpp"

#include <charconv>
#include <map>
#include <utility>

#include "conda/internal/yaml.hpp"

namespace envbuild::conda {
namespace {

using internal::yaml_error;

// "numpy-1.26.4-py311h_0.conda" -> name, version, build (the name may hold dashes).
bool split_archive_name(std::string_view file, std::string& name, std::string& version,
                        std::string& build) {
  for (std::string_view ext : {".conda", ".tar.bz2"}) {
    if (!file.ends_with(ext)) continue;
    std::string_view stem = file.substr(0, file.size() - ext.size());
    size_t b = stem.rfind('-');
    if (b == std::string_view::npos || b == 0) return false;
    size_t v = stem.rfind('-', b - 1);
    if (v == std::string_view::npos || v == 0) return false;
    name = stem.substr(0, v);
    version = stem.substr(v + 1, b - v - 1);
    build = stem.substr(b + 1);
    return true;
  }
  return false;
}

std::string_view last_segment(std::string_view url, size_t skip = 0) {
  for (size_t i = 0; i < skip; ++i) url = url.substr(0, url.rfind('/'));
  size_t slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

class PixiLockParser {
 public:
  explicit PixiLockParser(std::string_view file) : file_(file) {}

  Result<PixiLockFile> parse(const YAML::Node& root) {
    if (!root.IsMap()) return yaml_error(file_, root.Mark(), "expected a pixi.lock mapping");
    ENVB_TRY(parse_version(root));
    ENVB_TRY(parse_packages(root["packages"]));
    const YAML::Node environments = root["environments"];
    if (!environments || !environments.IsMap())
      return yaml_error(file_, root.Mark(), "missing 'environments' mapping");
    for (const auto& item : environments) {
      ENVB_ASSIGN_OR_RETURN(PixiLockEnvironment env, parse_environment(item.first, item.second));
      lock_.environments.push_back(std::move(env));
    }
    return std::move(lock_);
  }

 private:
  Result<std::string> str(const YAML::Node& node, std::string_view what) {
    return internal::optional_scalar(node, file_, what);
  }
  Result<std::optional<int64_t>> integer(const YAML::Node& node, std::string_view what) {
    if (!node || node.IsNull()) return std::optional<int64_t>();
    ENVB_ASSIGN_OR_RETURN(std::string text, str(node, what));
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
      return yaml_error(file_, node.Mark(), std::string(what) + " is not an integer: " + text);
    return std::optional<int64_t>(value);
  }
  Result<std::vector<std::string>> strings(const YAML::Node& node, std::string_view what) {
    return internal::scalar_list(node, file_, what);
  }
  // Channels are `- url: ...` mappings; indexes and find-links plain strings or `- url:`.
  Result<std::vector<std::string>> locations(const YAML::Node& node, std::string_view what) {
    if (!node || !node.IsSequence()) return strings(node, what);
    std::vector<std::string> out;
    for (const auto& item : node) {
      const YAML::Node value = item.IsMap() ? (item["url"] ? item["url"] : item["path"]) : item;
      ENVB_ASSIGN_OR_RETURN(std::string s, str(value, what));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<void> parse_version(const YAML::Node& root) {
    const YAML::Node version = root["version"];
    if (!version) return yaml_error(file_, root.Mark(), "missing 'version'");
    ENVB_ASSIGN_OR_RETURN(auto v, integer(version, "'version'"));
    lock_.version = static_cast<int>(v.value_or(0));
    if (lock_.version < kPixiLockOldestVersion || lock_.version > kPixiLockNewestVersion) {
      Error error = yaml_error(file_, version.Mark(),
                               "pixi.lock version " + std::to_string(*v) + " is not supported");
      return Error(Errc::Unsupported, error.message())
          .with_hint("envbuild reads pixi.lock versions " +
                     std::to_string(kPixiLockOldestVersion) + " to " +
                     std::to_string(kPixiLockNewestVersion) +
                     "; `pixi lock` with a pixi of that range rewrites it");
    }
    return ok();
  }

  // The package's kind and location: `kind:` + `url:`/`path:` (versions 4, 5), or one of the
  // keys `conda:`, `pypi:`, `conda_source:` (6, 7).
  Result<void> parse_location(const YAML::Node& node, PixiLockPackage& p) {
    if (const YAML::Node kind = node["kind"]) {
      ENVB_ASSIGN_OR_RETURN(std::string k, str(kind, "'kind'"));
      if (k != "conda" && k != "pypi")
        return yaml_error(file_, kind.Mark(), "unknown package kind '" + k + "'");
      p.kind = k == "conda" ? PixiLockPackage::Kind::Conda : PixiLockPackage::Kind::Pypi;
      ENVB_ASSIGN_OR_RETURN(p.location, str(node["url"] ? node["url"] : node["path"], "'url'"));
    } else if (node["conda"]) {
      ENVB_ASSIGN_OR_RETURN(p.location, str(node["conda"], "'conda'"));
    } else if (node["pypi"]) {
      p.kind = PixiLockPackage::Kind::Pypi;
      ENVB_ASSIGN_OR_RETURN(p.location, str(node["pypi"], "'pypi'"));
    } else if (node["conda_source"]) {
      p.kind = PixiLockPackage::Kind::CondaSource;
      ENVB_ASSIGN_OR_RETURN(p.location, str(node["conda_source"], "'conda_source'"));
    } else {
      return yaml_error(file_, node.Mark(),
                        "a package without 'conda:', 'pypi:', 'conda_source:' or 'kind:'");
    }
    if (p.location.empty())
      return yaml_error(file_, node.Mark(), "a package without a URL or path");
    return ok();
  }

  Result<PixiLockPackage> parse_package(const YAML::Node& node) {
    if (!node.IsMap()) return yaml_error(file_, node.Mark(), "a package must be a mapping");
    PixiLockPackage p;
    ENVB_TRY(parse_location(node, p));
    ENVB_ASSIGN_OR_RETURN(p.name, str(node["name"], "'name'"));
    ENVB_ASSIGN_OR_RETURN(p.version, str(node["version"], "'version'"));
    ENVB_ASSIGN_OR_RETURN(p.build, str(node["build"], "'build'"));
    ENVB_ASSIGN_OR_RETURN(p.subdir, str(node["subdir"], "'subdir'"));
    ENVB_ASSIGN_OR_RETURN(p.build_number, integer(node["build_number"], "'build_number'"));
    ENVB_ASSIGN_OR_RETURN(p.sha256, str(node["sha256"], "'sha256'"));
    ENVB_ASSIGN_OR_RETURN(p.md5, str(node["md5"], "'md5'"));
    ENVB_ASSIGN_OR_RETURN(p.size, integer(node["size"], "'size'"));
    ENVB_ASSIGN_OR_RETURN(p.timestamp, integer(node["timestamp"], "'timestamp'"));
    const bool pypi = p.kind == PixiLockPackage::Kind::Pypi;
    ENVB_ASSIGN_OR_RETURN(p.depends,
                          strings(node[pypi ? "requires_dist" : "depends"], "'depends'"));
    ENVB_ASSIGN_OR_RETURN(p.constrains, strings(node["constrains"], "'constrains'"));
    ENVB_ASSIGN_OR_RETURN(p.requires_python, str(node["requires_python"], "'requires_python'"));
    if (const YAML::Node editable = node["editable"]) p.editable = editable.as<bool>(false);
    if (p.kind == PixiLockPackage::Kind::Conda) {
      std::string name, version, build;
      const std::string_view file = last_segment(p.location);
      if (!split_archive_name(file, name, version, build) && p.name.empty())
        return yaml_error(file_, node.Mark(),
                          "'" + p.location + "' is not a .conda or .tar.bz2 package");
      if (p.name.empty()) p.name = name;
      if (p.version.empty()) p.version = version;
      if (p.build.empty()) p.build = build;
      if (p.subdir.empty()) p.subdir = std::string(last_segment(p.location, 1));
    }
    return p;
  }

  Result<void> parse_packages(const YAML::Node& packages) {
    if (!packages || packages.IsNull()) return ok();
    if (!packages.IsSequence())
      return yaml_error(file_, packages.Mark(), "'packages' must be a list");
    for (const auto& item : packages) {
      ENVB_ASSIGN_OR_RETURN(PixiLockPackage p, parse_package(item));
      // The first of several entries at one location wins (as rattler's lookup by location).
      by_location_.emplace(std::make_pair(p.kind, p.location), lock_.packages.size());
      lock_.packages.push_back(std::move(p));
    }
    return ok();
  }

  Result<size_t> reference(const YAML::Node& ref) {
    if (!ref.IsMap()) return yaml_error(file_, ref.Mark(), "a package reference must be a mapping");
    for (auto [key, kind] : {std::pair{"conda", PixiLockPackage::Kind::Conda},
                             std::pair{"pypi", PixiLockPackage::Kind::Pypi},
                             std::pair{"conda_source", PixiLockPackage::Kind::CondaSource}}) {
      if (!ref[key]) continue;
      ENVB_ASSIGN_OR_RETURN(std::string location, str(ref[key], key));
      auto it = by_location_.find({kind, location});
      if (it == by_location_.end())
        return yaml_error(file_, ref.Mark(),
                          std::string(key) + " package '" + location + "' is not in 'packages'");
      return it->second;
    }
    return yaml_error(file_, ref.Mark(), "a package reference without 'conda:' or 'pypi:'");
  }

  Result<PixiLockEnvironment> parse_environment(const YAML::Node& key, const YAML::Node& node) {
    PixiLockEnvironment env;
    ENVB_ASSIGN_OR_RETURN(env.name, str(key, "environment name"));
    if (!node.IsMap())
      return yaml_error(file_, node.Mark(), "environment '" + env.name + "' must be a mapping");
    ENVB_ASSIGN_OR_RETURN(env.channels, locations(node["channels"], "'channels'"));
    ENVB_ASSIGN_OR_RETURN(env.indexes, locations(node["indexes"], "'indexes'"));
    ENVB_ASSIGN_OR_RETURN(env.find_links, locations(node["find-links"], "'find-links'"));
    const YAML::Node platforms = node["packages"];
    if (!platforms || platforms.IsNull()) return env;
    if (!platforms.IsMap())
      return yaml_error(file_, platforms.Mark(), "'packages' of an environment must be a mapping");
    for (const auto& platform : platforms) {
      PixiLockEnvironment::Platform p;
      ENVB_ASSIGN_OR_RETURN(p.name, str(platform.first, "platform"));
      if (!platform.second.IsSequence())
        return yaml_error(file_, platform.second.Mark(), "platform '" + p.name + "' must be a list");
      for (const auto& ref : platform.second) {
        ENVB_ASSIGN_OR_RETURN(size_t index, reference(ref));
        p.packages.push_back(index);
      }
      env.platforms.push_back(std::move(p));
    }
    return env;
  }

  std::string_view file_;
  PixiLockFile lock_;
  std::map<std::pair<PixiLockPackage::Kind, std::string>, size_t> by_location_;
};

std::string names_of(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

bool PixiLockPackage::is_url() const {
  const size_t colon = location.find("://");
  return colon != std::string::npos && colon > 0 &&
         location.find('/') > colon;  // a scheme before the first slash
}

Result<const PixiLockEnvironment*> PixiLockFile::environment(std::string_view name) const {
  std::vector<std::string> names;
  for (const auto& env : environments) {
    if (env.name == name) return &env;
    names.push_back(env.name);
  }
  return Error(Errc::NotFound, "the lock has no environment '" + std::string(name) + "'")
      .with_hint("choose one with --environment: " + names_of(names));
}

Result<std::vector<const PixiLockPackage*>> PixiLockFile::packages_for(
    const PixiLockEnvironment& environment, std::string_view platform) const {
  std::vector<std::string> names;
  for (const auto& p : environment.platforms) {
    names.push_back(p.name);
    if (p.name != platform) continue;
    std::vector<const PixiLockPackage*> out;
    for (size_t i : p.packages) out.push_back(&packages[i]);
    return out;
  }
  return Error(Errc::NotFound, "environment '" + environment.name + "' of the lock has no " +
                                   std::string(platform) + " packages")
      .with_hint("the lock has: " + names_of(names) + " (give --platform)");
}

Result<PixiLockFile> parse_pixi_lock(std::string_view text, std::string_view file) {
  ENVB_ASSIGN_OR_RETURN(YAML::Node root, internal::load_yaml(text, file));
  try {
    return PixiLockParser(file).parse(root);
  } catch (const YAML::Exception& e) {
    return yaml_error(file, e.mark, e.msg);
  }
}

bool looks_like_pixi_lock(std::string_view text) {
  auto top_level = [&](std::string_view key) {
    for (size_t at = text.find(key); at != std::string_view::npos; at = text.find(key, at + 1))
      if ((at == 0 || text[at - 1] == '\n') && text.substr(at + key.size()).starts_with(":"))
        return true;
    return false;
  };
  return top_level("environments") && top_level("version") && !top_level("package");
}

}  // namespace envbuild::conda
