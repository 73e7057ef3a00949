#pragma once

// Resolving the PyPI part of an environment without pip: a backtracking resolver with the
// algorithm of resolvelib 0.8 (what pip 23 runs) and pip's preferences (URL requirements, then
// pinned ones, then the causes of the last backtrack, then depth, then the order of the pip:
// section), over wheels only. Candidates are the wheels the target supports (tags, Requires-
// Python) of versions the specifiers allow (pip's pre-release and yanked rules), newest first,
// the best tag for each version.
//
// Conda first: distributions the conda part of the environment installs (their .dist-info or
// .egg-info in site-packages) are the only candidates for their names; they are never installed
// again, and a requirement they do not meet is a conflict that names the conda package.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/pypi/index.hpp"
#include "builder/pypi/simple_index.hpp"
#include "common/result.hpp"
#include "conda/pypi/pip_section.hpp"
#include "conda/pypi/requirement.hpp"
#include "conda/pypi/tags.hpp"
#include "conda/pypi/version.hpp"

namespace envbuild::builder::pypi {

/// A Python distribution a conda package of the environment installs.
struct CondaDistribution {
  conda::pypi::Version version;
  std::string package;  // the conda package that has it ("numpy-1.26.4-py311h64a7726_0")
  /// Its METADATA when known (its extras' dependencies come from there); empty otherwise.
  std::string metadata;
};

struct ResolveOptions {
  conda::pypi::PythonTarget target;
  bool pre = false;      // --pre
  bool no_deps = false;  // --no-deps
  /// By normalized name.
  std::map<std::string, CondaDistribution> conda_installed;
  size_t max_rounds = 200'000;
};

/// One wheel of the solution.
struct ResolvedWheel {
  std::string name;  // normalized
  conda::pypi::Version version;
  DistributionFile file;
  /// What it requires, as applied (markers true for the target and its requested extras):
  /// normalized name -> specifier text ("" for any version).
  std::vector<std::pair<std::string, std::string>> dependencies;
  std::vector<std::string> extras;  // extras asked of it
  bool requested = false;           // named in the pip: section
  bool direct_url = false;          // `name @ URL` or a wheel path
};

struct Resolution {
  std::vector<ResolvedWheel> wheels;  // sorted by name
  /// Requirements the conda part meets: "numpy 1.26.4 (conda numpy-1.26.4-py311h64a7726_0)".
  std::vector<std::string> from_conda;
  size_t rounds = 0;
  size_t backtracks = 0;
};

/// Resolves the Requirement entries of `entries` (other kinds are the caller's). No solution is
/// an Unsatisfiable error whose message says which requirements conflict, who asked for them,
/// and what versions exist (and which exist only as sdists or for other targets).
Result<Resolution> resolve(const std::vector<conda::pypi::PipEntry>& entries,
                           DistributionSource& source, const ResolveOptions& options);

}  // namespace envbuild::builder::pypi
