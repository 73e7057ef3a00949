#pragma once

// The envrun cache: an image is materialized once into a relocated conda prefix, then reused
// by every later run with no I/O beyond a few small reads.
//
// Layout under the root (paths are kept short: binary files can only take a prefix as long as
// their package's placeholder):
//   p/<12 hex>        the prefix (12 hex of the manifest digest); with --store squashfs an empty
//                     directory where p/<12 hex>.sqfs, the prefix as one file, is mounted
//   p/<12 hex>.json   the completion marker: EnvInfo, written atomically after the rename
//   p/<12 hex>.lock   flock: exclusive while unpacking, shared while a command runs (gc skips)
//   p/.<12 hex>.*     staging directories of unfinished unpacks (removed by the next unpack)
//   r/<16 hex>        reference -> manifest digest, keyed by the source file's identity
//                     (device, inode, size, mtime) so a warm start never opens the image
//   l/                layers extracted once, shared by the prefixes (layer_cache.hpp)
//   i/                the store of pulled docker:// images (store.hpp)
//   tmp/              scratch space for archives while an image is open
//
// Between processes: the first one takes the entry's lock exclusively, checks the marker,
// unpacks into a staging directory, relocates, renames it into place and writes the marker;
// the others wait on the lock and then find the marker. A process killed midway leaves no
// marker, so its work is never used; the next unpack removes it.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.hpp"
#include "common/result.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"

namespace envbuild::runtime {

/// What a launch needs, computed once at unpack time and stored in the marker.
struct EnvInfo {
  std::string manifest_digest;  // "sha256:..."
  std::string reference;        // the reference it was first materialized from
  std::string image_prefix;     // the prefix inside the image ("/opt/conda")
  std::string prefix;           // where it is now
  std::string platform;         // "linux/amd64"
  /// The image config's Env with the image prefix rewritten to `prefix`.
  std::vector<std::string> env;
  /// etc/conda/env_vars.d/*.json (in name order), then conda-meta/state "env_vars".
  std::vector<std::pair<std::string, std::string>> env_vars;
  /// etc/conda/activate.d/*.sh, absolute, in name order.
  std::vector<std::string> activate_scripts;
  /// Virtual-package requirements: the org.envbuild.requirements label plus the `__` depends of
  /// conda-meta records, deduplicated ("__cuda >=12.4").
  std::vector<std::string> requirements;
  std::optional<std::vector<std::string>> entrypoint;  // rewritten like env
  std::optional<std::vector<std::string>> cmd;
  int64_t unpacked_at = 0;  // seconds since the epoch
  /// --store squashfs: the SquashFS file that holds the prefix, mounted at `prefix` to run;
  /// empty for an ordinary tree.
  std::string squashfs;
  bool operator==(const EnvInfo&) const = default;
};

std::string to_json_text(const EnvInfo& info);
Result<EnvInfo> env_info_from_json(std::string_view text, std::string_view what);

/// Replaces `from` with `to` where it is a whole path prefix (followed by the end, '/', ':',
/// ';' or '=' ...): "/opt/conda/bin:/usr/bin" -> "/x/bin:/usr/bin", "/opt/conda2" is kept.
std::string rewrite_prefix(std::string_view text, std::string_view from, std::string_view to);

/// The image prefix (conda::image_prefix_of): label org.envbuild.prefix, else config Env
/// CONDA_PREFIX, else /opt/conda.
std::string image_prefix_of(const oci::ImageConfig& config);

/// Opens an image reference for this host's platform: oci:, oci-archive:, docker-archive: (archives
/// are unpacked under <cache_root>/tmp while open), or docker:// from the cache's store, pulled
/// first when the store lacks it (store.hpp).
Result<std::unique_ptr<oci::Image>> open_reference(const oci::ImageReference& ref,
                                                   const std::filesystem::path& cache_root);

/// Test-only: ENVRUN_TEST_STALL=<phase> makes an unpack print "envrun: test stall at <phase>"
/// and sleep at that phase ("extracted": staged, not relocated; "renamed": in place, no marker).
void test_stall_point(std::string_view phase);

class LayerCache;
struct SquashfsImage;  // squashfs_image.hpp

/// How a cache entry is kept: a tree, or one SquashFS file mounted to run it (a cache on a file
/// system that counts files: one file per environment).
enum class Store { Tree, Squashfs };

struct UnpackOptions {
  /// Where layers are extracted once and shared by hardlinks (layer_cache.hpp); null: each
  /// unpack extracts its own layers (an `envrun unpack` DIR is an ordinary private prefix).
  const LayerCache* layers = nullptr;
  /// Called with the label's requirements before any layer is read; an error stops the unpack
  /// (the host cannot run it anyway).
  std::function<Result<void>(const std::vector<std::string>&)> precheck;
  /// The prefix the files are relocated to, when not the target directory itself.
  std::string relocate_to;
  /// How materialize() keeps a new entry.
  Store store = Store::Tree;
};

/// Unpacks `image` into `dir` as an ordinary conda prefix relocated to `dir` (which must not
/// exist, or be empty): layers with whiteouts applied into a staging sibling, the image prefix
/// relocated, renamed into place. Returns what a launch needs.
Result<EnvInfo> unpack_image(const oci::Image& image, const std::filesystem::path& dir,
                             const std::string& reference, const UnpackOptions& options = {});

/// A materialized environment, held in use: `in_use` is a shared flock on the entry's lock file
/// whose descriptor is inherited across exec, so `gc` skips the entry until the command and its
/// children have exited.
struct Materialized {
  EnvInfo info;
  bool unpacked_now = false;
  common::Fd in_use;
  /// A SquashFS entry's shared mount, held like `in_use` (runtime/mount.hpp).
  common::Fd mount_in_use;
};

struct CacheEntry {
  std::string id;  // 12 hex
  std::filesystem::path prefix;
  std::string reference;
  std::string manifest_digest;
  std::chrono::system_clock::time_point last_used;
  bool in_use = false;
};

struct GcReport {
  std::vector<std::string> removed;  // ids
  std::vector<std::string> in_use;   // old but running: kept
  size_t stale_staging = 0;          // abandoned staging directories removed
  size_t stale_refs = 0;
  std::vector<std::string> layers_removed;  // blob digests' hex
  size_t layers_in_use = 0;
  size_t unmounted = 0;  // idle shared mounts of SquashFS files taken down
};

class Cache {
 public:
  /// `root` is made absolute; nothing is created until needed.
  explicit Cache(std::filesystem::path root);
  /// $ENVRUN_CACHE, else $XDG_CACHE_HOME/envrun (when absolute), else ~/.cache/envrun with ~
  /// from $HOME or the password database. There is no shared fallback (a fixed directory in /tmp
  /// would be another user's to create first): with no home at all it is an error.
  static Result<std::filesystem::path> default_root();

  /// The cache is trusted (envrun runs what it holds), so it must be this user's alone:
  /// common::ensure_private_dir (created 0700 when missing; refused when another user could
  /// write into it or into a directory above it). Every method that reads or changes the cache
  /// checks this first.
  Result<void> check_root() const;

  [[nodiscard]] const std::filesystem::path& root() const noexcept { return root_; }
  /// Where the prefix for a manifest digest goes: <root>/p/<12 hex>.
  [[nodiscard]] std::filesystem::path prefix_for(const oci::Digest& manifest) const;

  /// The warm path: an entry already complete for `ref` (no image opened), held in use.
  Result<std::optional<Materialized>> lookup(const oci::ImageReference& ref) const;
  /// lookup(), else open the image and unpack it (exactly once across processes).
  Result<Materialized> materialize(const oci::ImageReference& ref,
                                   const UnpackOptions& options = {}) const;
  /// The same for a SquashFS image (squashfs_image.hpp) this host cannot mount: unpacked and
  /// relocated into p/<12 hex of its key>, found again by its key.
  Result<Materialized> materialize_squashfs(const SquashfsImage& image,
                                            const UnpackOptions& options = {}) const;
  /// The warm half of that: the entry of an image unpacked before, held in use.
  Result<std::optional<Materialized>> lookup_squashfs(const SquashfsImage& image) const;
  /// An entry kept as a SquashFS file (--store squashfs) made ready to run: mounted at its
  /// prefix (shared, mount.hpp), or, where this host cannot mount, extracted there once (the
  /// files already name that prefix) and turned into an ordinary entry.
  Result<Materialized> ready_to_run(Materialized entry) const;

  Result<std::vector<CacheEntry>> list() const;
  /// Removes entries unused for `older_than` that no process holds, abandoned staging
  /// directories and references to removed entries.
  Result<GcReport> gc(std::chrono::seconds older_than) const;

 private:
  Result<std::optional<Materialized>> open_entry(const std::string& id) const;
  /// The entry recorded under r/<key>, held in use; nullopt when there is none.
  Result<std::optional<Materialized>> lookup_key(const std::string& key) const;
  /// Unpacks into p/<id> with `unpack` exactly once across processes (entry lock, then marker),
  /// records r/<key> -> id (unless `key` is empty), and returns the entry held in use.
  Result<Materialized> fill_entry(
      const std::string& id, const std::string& key, const std::string& what,
      const std::function<Result<EnvInfo>(const std::filesystem::path&)>& unpack) const;
  std::filesystem::path root_;
};

}  // namespace envbuild::runtime
