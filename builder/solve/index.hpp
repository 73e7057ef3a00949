#pragma once

// `envbuild index DIR`: writes repodata.json (and repodata.json.zst) for a local channel, the way
// conda-index does for the fields envbuild and conda clients read. Every record is info/index.json
// of the package plus md5, sha256 and size of the archive; .tar.bz2 files go under "packages",
// .conda files under "packages.conda". Packages lying directly in DIR are moved into the subdir
// their index.json names (noarch packages into noarch/): only a platform conda knows
// (conda::Platform), beneath DIR without following a symlink, and never over an existing file.
// Every subdir that holds packages gets a repodata.json, and noarch/ always gets one (clients
// ask for it).

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder {

struct IndexOptions {
  /// Also write repodata.json.zst (zstd level 19 unless told otherwise).
  bool write_zst = true;
  int zst_level = 19;
};

struct IndexedSubdir {
  std::string subdir;
  size_t packages = 0;  // .tar.bz2 records
  size_t conda_packages = 0;  // .conda records
  std::vector<std::string> warnings;  // e.g. a package whose index.json names another subdir
};

/// Indexes the channel at `channel_dir`. Each repodata.json is written atomically with sorted
/// keys (the same packages give the same bytes). A package without a readable info/index.json,
/// or a loose one whose `subdir` is no known platform, is an Integrity error naming it.
Result<std::vector<IndexedSubdir>> index_channel(const std::filesystem::path& channel_dir,
                                                 const IndexOptions& options = {});

}  // namespace envbuild::builder
