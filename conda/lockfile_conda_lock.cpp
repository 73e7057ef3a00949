#include "conda/lockfile_conda_lock.hpp"

#include <algorithm>
#include <cctype>

#include "common/ascii.hpp"
#include "conda/internal/text.hpp"
#include "conda/internal/yaml.hpp"

namespace envbuild::conda {
namespace {

using internal::yaml_error;

class LockParser {
 public:
  explicit LockParser(std::string_view file) : file_(file) {}

  Result<CondaLockFile> parse(const YAML::Node& root) {
    if (!root.IsMap()) return yaml_error(file_, root.Mark(), "expected a conda-lock mapping");
    const YAML::Node version = root["version"];
    if (!version) return yaml_error(file_, root.Mark(), "missing 'version'");
    ENVB_ASSIGN_OR_RETURN(std::string v, str(version, "'version'"));
    if (v != "1") {
      return std::move(yaml_error(file_, version.Mark(),
                                  "unsupported conda-lock file version '" + v + "'"))
          .with_hint("only version 1 (conda-lock >= 1.0, CEP 37) is supported");
    }
    CondaLockFile lock;
    const YAML::Node metadata = root["metadata"];
    if (!metadata || !metadata.IsMap()) {
      return yaml_error(file_, root.Mark(), "missing 'metadata' mapping");
    }
    ENVB_TRY(parse_metadata(metadata, lock.metadata));
    const YAML::Node packages = root["package"];
    if (packages && !packages.IsNull()) {
      if (!packages.IsSequence())
        return yaml_error(file_, packages.Mark(), "'package' must be a list");
      for (const auto& item : packages) {
        ENVB_ASSIGN_OR_RETURN(CondaLockPackage package, parse_package(item));
        lock.packages.push_back(std::move(package));
      }
    }
    return lock;
  }

 private:
  Result<std::string> str(const YAML::Node& node, std::string_view what) {
    return internal::optional_scalar(node, file_, what);
  }
  Result<std::vector<std::string>> strings(const YAML::Node& node, std::string_view what) {
    return internal::scalar_list(node, file_, what);
  }
  Result<std::vector<std::pair<std::string, std::string>>> pairs(const YAML::Node& node,
                                                                 std::string_view what) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!node || node.IsNull()) return out;
    if (!node.IsMap())
      return yaml_error(file_, node.Mark(), std::string(what) + " must be a mapping");
    for (const auto& item : node) {
      ENVB_ASSIGN_OR_RETURN(std::string key, str(item.first, what));
      ENVB_ASSIGN_OR_RETURN(std::string value, str(item.second, what));
      out.emplace_back(std::move(key), std::move(value));
    }
    return out;
  }

  Result<void> parse_metadata(const YAML::Node& node, CondaLockMetadata& m) {
    for (const auto& item : node) {
      ENVB_ASSIGN_OR_RETURN(std::string key, str(item.first, "a key"));
      const YAML::Node& value = item.second;
      if (key == "content_hash") {
        ENVB_ASSIGN_OR_RETURN(m.content_hash, pairs(value, "'content_hash'"));
      } else if (key == "platforms") {
        ENVB_ASSIGN_OR_RETURN(m.platforms, strings(value, "'platforms'"));
      } else if (key == "sources") {
        ENVB_ASSIGN_OR_RETURN(m.sources, strings(value, "'sources'"));
      } else if (key == "custom_metadata") {
        ENVB_ASSIGN_OR_RETURN(m.custom_metadata, pairs(value, "'custom_metadata'"));
      } else if (key == "channels") {
        if (!value.IsSequence())
          return yaml_error(file_, value.Mark(), "'channels' must be a list");
        for (const auto& c : value) {
          CondaLockChannel channel;
          if (c.IsScalar()) {
            channel.url = c.Scalar();
          } else {
            ENVB_ASSIGN_OR_RETURN(channel.url, str(c["url"], "'url'"));
            ENVB_ASSIGN_OR_RETURN(channel.used_env_vars,
                                  strings(c["used_env_vars"], "'used_env_vars'"));
          }
          m.channels.push_back(std::move(channel));
        }
      } else {
        m.extra.emplace_back(key, YAML::Dump(value));
      }
    }
    return ok();
  }

  Result<CondaLockPackage> parse_package(const YAML::Node& node) {
    if (!node.IsMap()) return yaml_error(file_, node.Mark(), "a package must be a mapping");
    CondaLockPackage p;
    auto required = [&](const char* key) -> Result<std::string> {
      const YAML::Node value = node[key];
      if (!value) {
        return yaml_error(file_, node.Mark(), std::string("package is missing '") + key + "'");
      }
      return str(value, std::string("'") + key + "'");
    };
    ENVB_ASSIGN_OR_RETURN(p.name, required("name"));
    ENVB_ASSIGN_OR_RETURN(p.version, required("version"));
    ENVB_ASSIGN_OR_RETURN(std::string manager, required("manager"));
    if (manager == "conda") {
      p.manager = CondaLockPackage::Manager::Conda;
    } else if (manager == "pip") {
      p.manager = CondaLockPackage::Manager::Pip;
    } else {
      return yaml_error(file_, node["manager"].Mark(), "unknown manager '" + manager + "'");
    }
    ENVB_ASSIGN_OR_RETURN(p.platform, required("platform"));
    ENVB_ASSIGN_OR_RETURN(p.url, required("url"));
    ENVB_ASSIGN_OR_RETURN(p.dependencies, pairs(node["dependencies"], "'dependencies'"));
    const YAML::Node hash = node["hash"];
    if (!hash || !hash.IsMap()) {
      return yaml_error(file_, node.Mark(), "package '" + p.name + "' is missing 'hash'");
    }
    ENVB_ASSIGN_OR_RETURN(p.md5, str(hash["md5"], "'md5'"));
    ENVB_ASSIGN_OR_RETURN(p.sha256, str(hash["sha256"], "'sha256'"));
    if (p.md5.empty() && p.sha256.empty()) {
      return yaml_error(file_, hash.Mark(), "package '" + p.name + "' has no md5 or sha256");
    }
    if (const YAML::Node category = node["category"]) {
      ENVB_ASSIGN_OR_RETURN(p.category, str(category, "'category'"));
    }
    if (const YAML::Node optional = node["optional"]) {
      ENVB_ASSIGN_OR_RETURN(std::string o, str(optional, "'optional'"));
      if (o != "true" && o != "false") {
        return yaml_error(file_, optional.Mark(), "'optional' must be true or false");
      }
      p.optional = o == "true";
    }
    return p;
  }

  std::string_view file_;
};

// Would a YAML reader take this plain scalar for something other than a string?
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  std::string lower = common::ascii_lower(s);
  for (std::string_view word : {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}) {
    if (lower == word) return true;
  }
  if (std::all_of(s.begin(), s.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
               c == '+' || c == 'e' || c == 'E';
      })) {
    return true;  // 0.1, 1e3, 2024
  }
  if (std::string_view("!&*-?{}[],#|>@`\"'%<=:").find(s.front()) != std::string_view::npos) {
    return true;
  }
  return s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
         s.back() == ':' || s.back() == ' ' || s.front() == ' ';
}

void scalar(YAML::Emitter& out, const std::string& s) {
  if (needs_quotes(s)) {
    out << YAML::SingleQuoted << s;
  } else {
    out << s;
  }
}

}  // namespace

std::vector<const CondaLockPackage*> CondaLockFile::packages_for(
    std::string_view platform, CondaLockPackage::Manager manager) const {
  std::vector<const CondaLockPackage*> out;
  for (const auto& p : packages) {
    if (p.platform == platform && p.manager == manager) out.push_back(&p);
  }
  return out;
}

Result<CondaLockFile> parse_conda_lock(std::string_view text, std::string_view file) {
  ENVB_ASSIGN_OR_RETURN(YAML::Node root, internal::load_yaml(text, file));
  try {
    return LockParser(file).parse(root);
  } catch (const YAML::Exception& e) {
    return yaml_error(file, e.mark, e.msg);
  }
}

std::string to_string(const CondaLockFile& lock) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << 1;
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "content_hash" << YAML::Value << YAML::BeginMap;
  for (const auto& [platform, hash] : lock.metadata.content_hash) {
    out << YAML::Key << platform << YAML::Value;
    scalar(out, hash);
  }
  out << YAML::EndMap;
  out << YAML::Key << "channels" << YAML::Value << YAML::BeginSeq;
  for (const auto& c : lock.metadata.channels) {
    out << YAML::BeginMap << YAML::Key << "url" << YAML::Value;
    scalar(out, c.url);
    out << YAML::Key << "used_env_vars" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& v : c.used_env_vars) scalar(out, v);
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "platforms" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : lock.metadata.platforms) scalar(out, p);
  out << YAML::EndSeq;
  out << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : lock.metadata.sources) scalar(out, s);
  out << YAML::EndSeq;
  if (!lock.metadata.custom_metadata.empty()) {
    out << YAML::Key << "custom_metadata" << YAML::Value << YAML::BeginMap;
    for (const auto& [key, value] : lock.metadata.custom_metadata) {
      out << YAML::Key;
      scalar(out, key);
      out << YAML::Value;
      scalar(out, value);
    }
    out << YAML::EndMap;
  }
  for (const auto& [key, yaml] : lock.metadata.extra) {
    out << YAML::Key << key << YAML::Value << YAML::Load(yaml);
  }
  out << YAML::EndMap;
  out << YAML::Key << "package" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : lock.packages) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    scalar(out, p.name);
    out << YAML::Key << "version" << YAML::Value;
    scalar(out, p.version);
    out << YAML::Key << "manager" << YAML::Value
        << (p.manager == CondaLockPackage::Manager::Conda ? "conda" : "pip");
    out << YAML::Key << "platform" << YAML::Value;
    scalar(out, p.platform);
    out << YAML::Key << "dependencies" << YAML::Value;
    if (p.dependencies.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    } else {
      out << YAML::BeginMap;
      for (const auto& [name, constraint] : p.dependencies) {
        out << YAML::Key;
        scalar(out, name);
        out << YAML::Value;
        scalar(out, constraint);
      }
      out << YAML::EndMap;
    }
    out << YAML::Key << "url" << YAML::Value;
    scalar(out, p.url);
    out << YAML::Key << "hash" << YAML::Value << YAML::BeginMap;
    if (!p.md5.empty()) {
      out << YAML::Key << "md5" << YAML::Value;
      scalar(out, p.md5);
    }
    if (!p.sha256.empty()) {
      out << YAML::Key << "sha256" << YAML::Value;
      scalar(out, p.sha256);
    }
    out << YAML::EndMap;
    out << YAML::Key << "category" << YAML::Value;
    scalar(out, p.category);
    out << YAML::Key << "optional" << YAML::Value << p.optional;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace envbuild::conda
