#pragma once

// A thin owner of a libsolv pool in conda mode. Public headers never include libsolv (pimpl).
// A pool is single-threaded: each solve gets its own.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder::solv {

/// One solvable chosen by a solve, as libsolv sees it.
struct SolvedPackage {
  std::string name;
  std::string version;
  std::string build;
  std::string repo;  // the name given to add_repodata_*
  auto operator<=>(const SolvedPackage&) const = default;
};

/// A request libsolv could not satisfy, with its problems in words.
struct Conflict {
  std::vector<std::string> problems;
};

using SolveOutcome = std::variant<std::vector<SolvedPackage>, Conflict>;

class Pool {
 public:
  Pool();
  ~Pool();
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Loads a repodata.json document (CEP: conda repodata) as a repo named `name`. Higher
  /// priority wins under strict channel priority.
  Result<void> add_repodata_json(const std::string& name, const std::string& json,
                                 int priority = 0);
  Result<void> add_repodata_file(const std::string& name, const std::string& path,
                                 int priority = 0);
  /// A virtual package (__glibc, __cuda, ...) the target provides.
  void add_virtual_package(const std::string& name, const std::string& version,
                           const std::string& build = "0");

  /// Installs every spec (conda match spec syntax) and returns the whole resulting set, sorted by
  /// name; virtual packages are not part of it.
  Result<SolveOutcome> solve(const std::vector<std::string>& specs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace envbuild::builder::solv
