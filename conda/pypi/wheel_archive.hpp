#pragma once

// Reading a wheel (PEP 427) without extracting it: the core metadata a resolver needs from a
// wheel an index does not serve metadata for (PEP 658) or that sits in a find-links directory.

#include <cstddef>
#include <filesystem>
#include <string>

#include "common/result.hpp"

namespace envbuild::conda::pypi {

struct DistInfoFile {
  std::string dist_info;  // "name-1.0.dist-info"
  std::string content;
};

/// The content of `<name>-<version>.dist-info/<file>` at the top of `wheel`. A wheel without
/// one, or with more than one .dist-info directory holding it, is an Integrity error naming the
/// wheel; content over `max_bytes` too.
Result<DistInfoFile> read_dist_info_file(const std::filesystem::path& wheel,
                                         std::string_view file = "METADATA",
                                         size_t max_bytes = size_t{16} << 20);

}  // namespace envbuild::conda::pypi
