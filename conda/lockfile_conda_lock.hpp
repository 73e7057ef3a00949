#pragma once

// conda-lock's unified lock file `conda-lock.yml` (CEP 37, conda-lock format version 1).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace envbuild::conda {

struct CondaLockChannel {
  std::string url;  // a channel name or URL, as conda-lock wrote it
  std::vector<std::string> used_env_vars;
  bool operator==(const CondaLockChannel&) const = default;
};

struct CondaLockMetadata {
  std::vector<std::pair<std::string, std::string>> content_hash;  // platform -> hash, in order
  std::vector<CondaLockChannel> channels;
  std::vector<std::string> platforms;
  std::vector<std::string> sources;
  /// conda-lock's `custom_metadata` (string -> string), in file order.
  std::vector<std::pair<std::string, std::string>> custom_metadata;
  /// Other metadata blocks (time_metadata, git_metadata, inputs_metadata), each kept as its
  /// YAML text so that writing gives them back unchanged.
  std::vector<std::pair<std::string, std::string>> extra;
  bool operator==(const CondaLockMetadata&) const = default;
};

/// One locked package for one platform. pip packages are here too (manager Pip): their
/// versions are PEP 440, so `version` stays a string.
struct CondaLockPackage {
  enum class Manager { Conda, Pip };
  std::string name;
  std::string version;
  Manager manager = Manager::Conda;
  std::string platform;
  std::vector<std::pair<std::string, std::string>> dependencies;  // name -> constraint, in order
  std::string url;
  std::string md5;
  std::string sha256;
  std::string category = "main";
  bool optional = false;
  bool operator==(const CondaLockPackage&) const = default;
};

struct CondaLockFile {
  CondaLockMetadata metadata;
  std::vector<CondaLockPackage> packages;

  /// The packages of one platform and manager, in file order.
  [[nodiscard]] std::vector<const CondaLockPackage*> packages_for(
      std::string_view platform, CondaLockPackage::Manager manager) const;
  bool operator==(const CondaLockFile&) const = default;
};

/// Parses a conda-lock.yml. Only `version: 1` is accepted. Errors (InvalidInput) start with
/// `file:line:col:`; a package without `manager`, `platform`, `url` or `hash` is an error.
/// `category` defaults to `main` and `optional` to false when absent.
Result<CondaLockFile> parse_conda_lock(std::string_view text, std::string_view file);
/// Writes the file in conda-lock's key order; strings that YAML would read as something else
/// are quoted. parse(to_string(x)) == x.
std::string to_string(const CondaLockFile& lock);

}  // namespace envbuild::conda
