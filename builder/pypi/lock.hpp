#pragma once

// The pip: section in conda-lock.yml: one `manager: pip` entry per wheel and platform (name,
// version, url, sha256 and dependencies, as conda-lock writes them), and what the environment
// asked for (REQUESTED, direct_url.json) in conda-lock's custom_metadata, so that
// `install --lock` and `build --lock` install the same files as `-f` without resolving.

#include <set>
#include <string>
#include <vector>

#include "builder/pypi/wheel_install.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_pixi.hpp"
#include "conda/pypi/pip_section.hpp"

namespace envbuild::builder::pypi {

/// custom_metadata keys: space-separated normalized names.
inline constexpr std::string_view kRequestedKey = "envbuild.pip.requested";
inline constexpr std::string_view kDirectKey = "envbuild.pip.direct-url";

/// The entry of `wheel` for `platform`; the URL is the redacted one the resolution has.
conda::CondaLockPackage lock_entry(const WheelToInstall& wheel, const std::string& platform);

/// Records which wheels the environment asked for (by name, and by URL) in `metadata`.
void add_requested(conda::CondaLockMetadata& metadata, const std::vector<WheelToInstall>& wheels);

/// The wheel a lock entry names, with what `metadata` says was asked for.
WheelToInstall locked_wheel(const conda::CondaLockPackage& entry,
                            const conda::CondaLockMetadata& metadata);

/// The wheels of a pixi.lock environment's pypi packages. URLs are used as written
/// (`direct+URL` marks a direct reference); paths are relative to `lock_dir`. pixi.lock does not
/// say what was asked for: a wheel no other one requires counts as requested. Dependencies are
/// the `requires_dist` names the environment has (pixi applied the markers when it locked). A
/// source distribution or an editable package is an Unsupported error naming it (`file`).
Result<std::vector<WheelToInstall>> pixi_wheels(
    const std::vector<const conda::PixiLockPackage*>& packages,
    const std::filesystem::path& lock_dir, const std::string& file);

}  // namespace envbuild::builder::pypi
