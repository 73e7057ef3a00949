#pragma once

// `envbuild export` (issue 20): what an installed prefix or a lock file holds, written back as
// conda users know it: an environment.yml (`conda env export`), an @EXPLICIT file (`conda list
// --explicit`) or a conda-lock.yml. Prefixes and locks are untrusted: reads are bounded, nothing
// outside them is followed, and the YAML is written by an emitter (no text a name could inject).

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "builder/pypi/wheel_install.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"
#include "oci/image.hpp"

namespace envbuild::builder {

struct ExportedPackage {
  std::string name;
  std::string version;
  std::string build;
  std::string channel;  // a name or URL, as the source recorded it
  std::string subdir;
  std::string url;
  std::string md5;
  std::string sha256;
  std::vector<std::string> depends;
  bool operator==(const ExportedPackage&) const = default;
};

/// One environment for one platform, whatever the source.
struct ExportedEnvironment {
  std::string name;
  std::string platform;                                        // empty when the source does not say
  std::vector<std::string> channels;                           // in priority (or first-seen) order
  std::vector<ExportedPackage> packages;                       // sorted by name
  std::vector<std::string> requested_specs;                    // history / the lock's specs
  std::vector<std::pair<std::string, std::string>> variables;  // in file order
  /// The wheels of a pip: section, sorted by name: from a prefix or an image, those whose
  /// .dist-info's INSTALLER is not conda (name, version, requested: a REQUESTED marker; no URL
  /// is recorded there); from a lock, its pip entries with URL, sha256 and dependencies.
  std::vector<pypi::WheelToInstall> wheels;
};

/// An installed prefix: conda-meta/<name>-<version>-<build>.json records, the requested specs
/// of conda-meta/history (`# update specs:` lines, conda's list form too) and the variables of
/// conda-meta/state, and the wheels under lib/python*/site-packages. NotFound when
/// PREFIX/conda-meta is missing; InvalidInput naming the record that is not valid JSON or not a
/// record.
Result<ExportedEnvironment> read_prefix_environment(const std::filesystem::path& prefix);

/// The environment in an image (envbuild's, or any with a conda prefix): the files
/// read_prefix_environment reads (conda-meta/, the .dist-info INSTALLER and REQUESTED markers)
/// below `prefix` (empty: the image's org.envbuild.prefix label, else /opt/conda), taken from
/// its layers in order with whiteouts applied into a scratch directory under `scratch_root`
/// (removed afterwards; nothing else of the layers is written), then read as a prefix. Its name
/// is the image's CONDA_DEFAULT_ENV, else the prefix's folder name. NotFound when the layers
/// hold no conda-meta/ there; layers are untrusted (oci/layer_reader.hpp).
Result<ExportedEnvironment> read_image_environment(const oci::Image& image,
                                                  const std::filesystem::path& scratch_root,
                                                  std::string prefix = {});

/// A lock file: conda-lock.yml, @EXPLICIT or pixi.lock (told apart by content). `platform`
/// picks one of several (empty: the only one, or an InvalidInput error naming them);
/// `pixi_environment` names the pixi.lock environment (NotFound naming those it has).
Result<ExportedEnvironment> read_lock_environment(const std::filesystem::path& file,
                                                  const std::string& platform,
                                                  const std::string& pixi_environment);

struct EnvironmentYmlOptions {
  bool no_builds = false;                   // `name=version` instead of `name=version=build`
  bool from_history = false;                // only the requested specs
  bool override_channels = false;           // drop the source's channels
  std::vector<std::string> extra_channels;  // -c, before the source's
};

/// name, channels, dependencies (with a `pip:` list when wheels were installed), variables: the
/// keys `envbuild solve -f` reads back.
std::string to_environment_yml(const ExportedEnvironment& env, const EnvironmentYmlOptions& o);

/// URLs with `#sha256:<hex>` (conda 24's default) or, with `md5`, `#<md5>`; a package without
/// the hash asked for falls back to the other. InvalidInput naming a package with no URL.
Result<conda::ExplicitFile> to_explicit_file(const ExportedEnvironment& env, bool md5);

/// "libgcc-ng >=12" -> {"libgcc-ng", ">=12"}; "python_abi 3.11.* *_cp311" keeps the rest.
std::pair<std::string, std::string> split_dependency(const std::string& dep);

/// A conda-lock.yml v1 of the environments (one per platform), with `manager: pip` entries for
/// the wheels whose URL and sha256 are known (the others are counted in `wheels_left_out`).
/// InvalidInput naming a package with no URL or no hash (conda-lock requires both).
Result<conda::CondaLockFile> to_conda_lock(const std::vector<ExportedEnvironment>& envs,
                                           size_t* wheels_left_out = nullptr);

}  // namespace envbuild::builder
