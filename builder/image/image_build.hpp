#pragma once

// `envbuild build`: a solved environment becomes a layered, reproducible OCI image straight from
// the package cache, never from a copied prefix.
//
//   solve/lock -> fetch (PackageCache) -> plan_package for the image prefix -> plan_layers ->
//   one layer per group of packages (their planned files + conda-meta records, under the prefix)
//   + one small top layer (history, state, env_vars, relocation index) -> config + manifest.
//
// Layer identity: a package layer's bytes depend only on its packages (their installed records,
// see installed_record(), and archive sha256s), the prefix, the platform, the python of a
// noarch: python package, the compression (and level), the tar mtime and kLayerFormat; never on
// the input (solve or lock) or a mirror (docs/design.md). That tuple, hashed, keys the layer cache
// (<cache>/layers/<key>.json -> descriptor + diff_id, blob in <cache>/oci/blobs/sha256), so a
// rebuild with one package changed compresses only that package's layer and the top layer.
// Records carry no requested spec (that is per environment: it lives in conda-meta/history).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "builder/image/layering.hpp"
#include "builder/install/install.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/install/package_cache.hpp"
#include "builder/pypi/wheel_install.hpp"
#include "builder/solve/solve.hpp"
#include "common/result.hpp"
#include "conda/environment_file.hpp"
#include "conda/package_record.hpp"
#include "oci/blob_store.hpp"
#include "oci/compression.hpp"
#include "oci/descriptor.hpp"
#include "oci/image.hpp"
#include "oci/mutate.hpp"
#include "oci/registry/auth.hpp"
#include "oci/registry/client.hpp"
#include "oci/registry/copy.hpp"

namespace envbuild::builder {

class RegistryLayerCache;  // builder/image/registry_cache.hpp

/// Bumped whenever what goes into a package layer changes (paths, records, tar format).
inline constexpr std::string_view kLayerFormat = "envbuild-conda-layer-v1";

/// What the image holds, once the packages are known (from a solve or a lock file).
struct EnvironmentSpec {
  std::vector<conda::PackageRecord> records;                   // url + sha256/md5 at least
  std::vector<std::string> specs;                              // as requested (conda-meta/history)
  std::vector<std::pair<std::string, std::string>> variables;  // environment.yml `variables:`
  std::string name;                                            // environment name ("" = "base")
  /// The wheels of the pip: section (resolved after the conda part, or from a lock file).
  std::vector<pypi::WheelToInstall> wheels;
  /// Channel base URLs and index origins with credentials (records hold redacted URLs): for
  /// the downloads only.
  std::vector<std::string> credentialed_channels;
};

/// An environment to solve: what the solver is asked, and what the environment says besides its
/// packages (name, specs as requested, variables, pip), from an environment.yml and/or match
/// specs given on the command line.
struct EnvironmentRequest {
  SolveRequest solve;
  EnvironmentSpec environment;  // no records yet
  std::filesystem::path file;   // the environment.yml read (empty: specs only)
  /// The pip: section, solved after the conda part (environment_of).
  std::vector<conda::PipRequirement> pip;
  /// Where the conda packages that may install Python distributions are fetched to when the
  /// file has a pip: section; root empty: the default cache.
  PackageCacheOptions packages;
  /// Not empty: the pip: section's find-links locations instead of the file's.
  std::vector<std::string> pip_find_links;
};

/// Reads `file` (none when empty) with its selectors evaluated for `subdir`, and adds `specs`
/// (written as in a file: `xz[version='>=5']`, `conda-forge::numpy 1.26.*`). `base` holds the
/// solve options; its channels, when it has any, replace the file's; its platforms, when it has
/// none, come from the file's `platforms:`. The file's warnings go to `warn`.
/// `configured_channels` (conda's `channels` setting) are the channels when neither `base` nor
/// the file names any (a file's `nodefaults` alone names none, and so gets none).
Result<EnvironmentRequest> environment_request(
    const std::filesystem::path& file, const std::vector<std::string>& specs,
    const std::string& subdir, SolveRequest base,
    const std::function<void(const std::string&)>& warn = nullptr,
    const std::vector<std::string>& configured_channels = {});

/// How the pip: section of `request` is solved after `solution`, its conda part: for its
/// platform and glibc, through its package cache (offline when its repodata is), with the
/// credentials of its channels, relative paths from the environment file's folder.
pypi::PipSolveOptions pip_solve_options(const EnvironmentRequest& request,
                                        const PlatformSolution& solution);

/// The environment of one solution of `request`: its records, the credentials of its channels
/// for the downloads, and the wheels of its pip: section resolved against those records.
Result<EnvironmentSpec> environment_of(const EnvironmentRequest& request,
                                       const PlatformSolution& solution);

/// Reads an @EXPLICIT file, a conda-lock.yml (its pip entries become wheels) or a pixi.lock (no
/// solve). `environment` picks one of a pixi.lock's environments (`--environment`; others have
/// one).
Result<EnvironmentSpec> environment_from_lock(const std::filesystem::path& file,
                                              const std::string& subdir,
                                              const std::string& environment = "default");

/// "linux-64" -> linux/amd64, "linux-aarch64" -> linux/arm64/v8, ...
Result<oci::Platform> oci_platform_for_subdir(const std::string& subdir);

struct ImageBuildOptions {
  std::string prefix = "/opt/conda";  // absolute, where the environment lives in the image
  std::string subdir;                 // the environment's platform
  size_t max_layers = 100;            // the whole image, base layers included
  oci::Compression compression = oci::Compression::Gzip;
  std::optional<int> level;
  /// Tar mtime of every layer and, when set, the image's `created`; default
  /// oci::default_source_date_epoch() for the mtime and the newest package for `created`.
  std::optional<int64_t> source_date_epoch;
  std::filesystem::path cache_root;  // packages, layers/, oci/ (default_cache_root() when empty)
  PackageCacheOptions packages;      // root defaults to cache_root
  const oci::Image* base = nullptr;  // none: an image from scratch
  std::string image_name;            // -t NAME:TAG (org.opencontainers.image.title/ref.name)
  /// Entrypoint, cmd, workdir, user, extra labels; env and created are filled by the build.
  oci::ConfigChanges config;
  oci::Annotations annotations;                  // manifest annotations, on top of envbuild's
  LinkScripts link_scripts = LinkScripts::Skip;  // images never run them; recorded as pending
  size_t jobs = 4;                               // parallel planning and layer compression
  std::function<void(const std::string&)> progress;
  /// --cache-from: a package layer missing from the local layer cache whose key this registry
  /// cache knows is not built. With fetch_cached_layers its blob is downloaded (verified) into
  /// the store and remembered in the local layer cache; without, the image refers to the blob
  /// where it is (ImageBuild::remote_blobs), for a docker:// output on that registry to mount.
  const RegistryLayerCache* cache_from = nullptr;
  bool fetch_cached_layers = true;
};

/// One layer of the image as planned (and, after a build, as written).
struct PlannedLayer {
  std::vector<size_t> packages;  // indexes into ImageBuild::records
  std::vector<size_t> wheels;    // indexes into ImageBuild::wheels
  uint64_t size = 0;             // installed bytes
  std::string reason;            // from plan_layers, or "environment files"
  std::string cache_key;         // sha256 hex of the layer identity (empty: top layer)
  std::optional<oci::LayerInfo> info;
  bool reused = false;         // came from the layer cache (local or registry)
  bool from_registry = false;  // came from the registry cache (--cache-from)
};

struct ImageBuild {
  std::vector<conda::PackageRecord> records;  // completed from info/index.json, link order
  std::vector<pypi::WheelToInstall> wheels;   // the pip: section's, by name
  std::vector<PlannedLayer> layers;           // bottom first; the top layer last
  size_t base_layers = 0;
  oci::Platform platform;
  oci::BlobStore store{""};                 // the cache's blob store: the image's blobs are here
  std::optional<oci::Descriptor> manifest;  // after build_environment_image
  std::string explicit_lock;                // compact @EXPLICIT of the packages
  std::string requirements;                 // org.envbuild.requirements
  size_t layers_written = 0, layers_reused = 0;
  size_t layers_from_registry = 0;  // of the reused ones
  /// Packages whose plan came from the plan cache (builder/install/plan_cache.hpp), and packages whose
  /// files were patched and staged (planned now, or written into a layer).
  size_t plans_cached = 0, plans_staged = 0;
  std::set<oci::Digest> remote_blobs;  // layers left in the registry cache (not in `store`)
  double fetch_ms = 0, plan_ms = 0, layers_ms = 0;
  std::vector<std::string> warnings;
};

/// Fetches and plans the packages and groups them into layers; writes nothing but the package
/// and plan caches. `build_environment_image` with `plan_only` = true stops here.
Result<ImageBuild> plan_environment_image(const EnvironmentSpec& env,
                                          const ImageBuildOptions& options);

/// The layer plan from the records alone, with download sizes (repodata's) for installed ones:
/// nothing is downloaded or written (build --plan). nullopt when a record has no size or name
/// (a lock without them): plan_environment_image is then the way.
Result<std::optional<ImageBuild>> estimate_environment_image(const EnvironmentSpec& env,
                                                             const ImageBuildOptions& options);

/// Fetches, plans and writes the layers (through the layer cache), the config and the manifest
/// into the cache's blob store. The result's manifest names the image; open it with
/// oci::open_store_image(result.store, *result.manifest).
Result<ImageBuild> build_environment_image(const EnvironmentSpec& env,
                                           const ImageBuildOptions& options);

/// The org.envbuild.requirements value (conda/image_contract.hpp): the virtual-package depends
/// of the records and the __glibc a manylinux wheel's tag needs, deduplicated, sorted, joined
/// with ";".
std::string virtual_requirements(const std::vector<conda::PackageRecord>& records,
                                 const std::vector<pypi::WheelToInstall>& wheels = {});

/// "@EXPLICIT\n<url>#<sha256>\n..." in the given order (md5 when no sha256 is known).
std::string compact_explicit_lock(const std::vector<conda::PackageRecord>& records,
                                  const std::string& subdir);

/// Human table of a plan: layer, packages, size, reason (and digest / reused after a build).
std::string format_layer_table(const ImageBuild& build);

struct OutputOptions {
  std::filesystem::path scratch_dir;  // where an oci-archive is staged
  bool tls_verify = true;             // docker://: false also falls back to plain http
  std::string cert_dir;               // docker://: *.crt CAs, client *.cert/*.key
  /// docker://: --creds; unset, the stored logins (podman's auth.json, Docker's config.json).
  std::optional<oci::registry::Credentials> credentials;
  /// docker://: repositories of the same registry to mount blobs from (the layer cache), and
  /// the blobs they hold (none: try every blob).
  std::vector<std::string> mount_from;
  std::shared_ptr<const std::set<oci::Digest>> mountable;
  /// docker://: told what the push did ("pushed REF: N blobs (U uploaded, M mounted, ...)").
  std::function<void(const std::string&)> progress;
  /// docker://: push progress (oci::registry::RegistryOptions::on_bytes, on_blob).
  std::function<void(uint64_t)> on_bytes;
  std::function<void(const oci::Descriptor&, oci::registry::UploadOutcome)> on_blob;
  /// Artifact manifests (an SBOM) in `artifacts_store` whose subject is the image: listed in an
  /// oci:/oci-archive: layout's index.json, pushed beside a docker:// image
  /// (builder/image/referrers.hpp); a docker-archive: has no place for them.
  std::vector<oci::Descriptor> artifacts;
  const oci::BlobStore* artifacts_store = nullptr;
};

/// The RegistryOptions of a docker:// output (TLS, mounts).
oci::registry::RegistryOptions registry_options(const OutputOptions& options);

/// Pushes the artifacts of `options` (an SBOM) beside the image pushed to `ref`.
Result<void> push_output_artifacts(const OutputOptions& options, const oci::ImageReference& ref,
                                   const oci::registry::RegistryOptions& registry);

/// The oci::registry::WriteOptions of an output: its registry options, its scratch directory,
/// `name_and_tag` (-t) as the name and tag where the reference has none, and the artifacts
/// added to a layout. Refers to `options`, which must outlive it.
oci::registry::WriteOptions write_options(const OutputOptions& options,
                                          const std::string& name_and_tag);

/// After oci::registry::write_image()/write_index() to `ref`: for a docker:// push, reports it
/// through options.progress and pushes the artifacts beside it.
Result<void> finish_output(const OutputOptions& options, const oci::ImageReference& ref,
                           const oci::registry::WriteOptions& write,
                           const oci::registry::TransferReport& report);

/// Writes the image to an oci:, oci-archive:, docker-archive: or docker:// reference.
/// `name_and_tag` (-t) gives the tag when the reference has none.
Result<void> write_image_output(const oci::Image& image, const std::string& output,
                                const std::string& name_and_tag, const OutputOptions& options);

}  // namespace envbuild::builder
