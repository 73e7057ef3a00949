#pragma once

// The plan cache of image builds: what `envbuild build` needs of a package whose layer is
// already in the layer cache, kept between builds so that a rebuild after a one-package change
// patches and stages only the packages whose layers it writes.
//
//   <cache>/plans/<key>.json   one package's plan: its paths (kinds, symlink targets), the
//                              relocations of its patched files, its link scripts and its
//                              installed size; no staged file (File sources are empty)
//
// <key> hashes everything plan_package() reads: the record, the archive's sha256 (the extracted
// tree is content-addressed by it), the prefix, the platform, the python of a possibly noarch
// python package, and kPlanFormat. An entry holds its key and the sha256 of its body, checked
// on every load: a damaged, partial or foreign entry is a miss (and is rewritten). Entries are
// written to a temp file and renamed into place; no fsync: one lost in a crash is a miss.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "builder/install/install.hpp"
#include "common/result.hpp"
#include "conda/package_record.hpp"

namespace envbuild::builder {

/// Bumped whenever plan_package's output (or this file's layout) changes.
inline constexpr std::string_view kPlanFormat = "envbuild-package-plan-v1";

/// A plan without staged files, and the installed bytes of its files (patched sizes).
struct CachedPlan {
  PackagePlan plan;  // File entries have an empty source; staging is empty
  uint64_t size = 0;
};

/// The key of a package's plan for `target` (sha256 hex). `python_matters`: the package may be
/// noarch: python (its record says so, or it has an info/link.json), so target.python counts.
std::string plan_key(const conda::PackageRecord& record, const InstallTarget& target,
                     bool python_matters);

class PlanCache {
 public:
  explicit PlanCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

  /// The plan stored under `key` (its record set to `record`); none when there is no entry or
  /// the entry is damaged, partial or of another format.
  [[nodiscard]] std::optional<CachedPlan> load(const std::string& key,
                                               const conda::PackageRecord& record) const;
  /// Stores `plan` (its staged sources are dropped) under `key`, atomically.
  Result<void> store(const std::string& key, const PackagePlan& plan, uint64_t size) const;

  [[nodiscard]] std::filesystem::path path_of(const std::string& key) const {
    return dir_ / (key + ".json");
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace envbuild::builder
