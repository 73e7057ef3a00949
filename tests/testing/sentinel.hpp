#pragma once

// What hostile-input tests check: the user's files and a sentinel tree are exactly as they were
// after the tool ran on hostile input. A snapshot records every entry below a root without
// following symlinks: type, mode, size and sha256 of regular files, targets of symlinks.

#include <filesystem>
#include <map>
#include <string>

namespace envbuild::testing {

using TreeSnapshot = std::map<std::string, std::string>;  // relative path -> description

TreeSnapshot snapshot_tree(const std::filesystem::path& root);

/// A readable list of what differs between two snapshots ("" when equal).
std::string diff_snapshots(const TreeSnapshot& before, const TreeSnapshot& after);

/// A user's home and a host directory full of things an attacker wants: dotfiles, a secret, a
/// directory an image might try to rename, move or delete. Returns its root.
std::filesystem::path make_sentinel_tree(const std::filesystem::path& root);

}  // namespace envbuild::testing
