#include "runtime/store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "common/fs.hpp"
#include "common/url.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"
#include "oci/registry/copy.hpp"
#include "runtime/internal/cache_files.hpp"

namespace envbuild::runtime {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStoreTag = "latest";

oci::ImageReference store_reference(const fs::path& layout) {
  oci::ImageReference dest;
  dest.transport = oci::Transport::OciLayout;
  dest.path = layout.string();
  dest.tag = kStoreTag;
  return dest;
}

Result<PullResult> pull_locked(const oci::ImageReference& ref, const fs::path& root,
                               const oci::registry::RegistryOptions& options) {
  const fs::path layout = internal::store_layout_for(root, ref);
  ENVB_TRY(common::make_dirs(root / "i" / "blobs" / "sha256"));
  ENVB_TRY(common::make_dirs(layout));
  ENVB_TRY(common::make_dirs(root / "tmp"));
  if (!internal::exists_nofollow(layout / "blobs") &&
      ::symlink("../blobs", (layout / "blobs").c_str()) != 0)
    return common::errno_error("symlink", (layout / "blobs").string(), errno);
  ENVB_TRY(common::write_file_atomic(layout / "reference", ref.to_string() + "\n"));
  oci::registry::CopyOptions copy;
  copy.registry = options;
  copy.scratch_dir = root / "tmp";
  std::fprintf(stderr, "envrun: pulling %s\n", ref.to_string().c_str());
  ENVB_ASSIGN_OR_RETURN(oci::registry::TransferReport transfer,
                        oci::registry::copy_image(ref, store_reference(layout), copy));
  return PullResult{transfer.manifest.digest.to_string(), layout, transfer};
}

/// Whether the store layout at `layout` holds a complete pull (tagged kStoreTag).
bool holds_image(const fs::path& layout) {
  if (!internal::exists_nofollow(layout / "index.json")) return false;
  auto opened = oci::Layout::open(layout);
  if (!opened) return false;
  auto tags = opened->tags();
  return tags && std::find(tags->begin(), tags->end(), kStoreTag) != tags->end();
}

/// The first shared cache (ENVRUN_SHARED_CACHE) whose store holds `ref`. A shared cache is read,
/// never written, and must be one only its owner can change (common::check_protected_dir); its
/// tag decides which manifest `ref` names, as a registry's would, and every blob read from it is
/// verified against its digest.
Result<std::optional<fs::path>> find_in_shared_stores(const oci::ImageReference& ref) {
  for (const fs::path& shared : internal::shared_cache_roots()) {
    // A shared file system that is not mounted on this node is not an error: try the next.
    if (!internal::exists_nofollow(shared)) continue;
    ENVB_TRY(common::check_protected_dir(shared, "the shared cache (ENVRUN_SHARED_CACHE)"));
    fs::path layout = internal::store_layout_for(shared, ref);
    if (holds_image(layout)) return std::optional<fs::path>(layout);
  }
  return std::optional<fs::path>{};
}

Result<common::FileLock> lock_reference(const oci::ImageReference& ref, const fs::path& root) {
  ENVB_TRY(common::make_dirs(root / "i"));
  return common::FileLock::acquire(internal::store_layout_for(root, ref).string() + ".lock",
                                   common::LockMode::Exclusive);
}

}  // namespace

oci::registry::RegistryOptions default_registry_options(const oci::ImageReference& ref) {
  oci::registry::RegistryOptions options;
  if (common::is_loopback_host(ref.host)) options.transport.tls.verify = false;
  return options;
}

Result<PullResult> pull_to_store(const oci::ImageReference& ref, const fs::path& root,
                                 const oci::registry::RegistryOptions& options) {
  if (ref.transport != oci::Transport::Registry)
    return fail(Errc::InvalidInput,
                "envrun pull takes a docker:// reference (the others are local already), got " +
                    ref.to_string());
  ENVB_ASSIGN_OR_RETURN(common::FileLock lock, lock_reference(ref, root));
  return pull_locked(ref, root, options);
}

Result<std::unique_ptr<oci::Image>> open_from_store(const oci::ImageReference& ref,
                                                    const fs::path& root,
                                                    const oci::registry::RegistryOptions& options) {
  // Concurrent first runs: one pulls, the others wait here and then find it.
  ENVB_ASSIGN_OR_RETURN(common::FileLock lock, lock_reference(ref, root));
  fs::path layout = internal::store_layout_for(root, ref);
  oci::OpenOptions open;
  open.scratch_dir = root / "tmp";
  if (!holds_image(layout)) {
    ENVB_ASSIGN_OR_RETURN(std::optional<fs::path> shared, find_in_shared_stores(ref));
    if (shared) {
      std::fprintf(stderr, "envrun: %s from the shared cache %s (every blob is verified)\n",
                   ref.to_string().c_str(), shared->string().c_str());
      return oci::open_image(store_reference(*shared), open)
          .context("opening the shared cache's image of " + ref.to_string());
    }
    ENVB_TRY(pull_locked(ref, root, options));
  }
  return oci::open_image(store_reference(layout), open)
      .context("opening the stored image of " + ref.to_string());
}

}  // namespace envbuild::runtime
