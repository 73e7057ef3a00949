#pragma once

// The cache's file conventions shared by the warm lookup (cache_lookup.cpp, linked into the lean
// launcher) and the unpack path (cache.cpp): lock files, the source key of a reference, and the
// local store of pulled registry images.

#include <filesystem>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "common/result.hpp"
#include "oci/reference.hpp"

namespace envbuild::runtime::internal {

/// Entries are named by this many hex digits of their manifest digest.
constexpr size_t kIdLength = 12;

bool exists_nofollow(const std::filesystem::path& path);

/// A lock descriptor without O_CLOEXEC: it is meant to survive exec (see Materialized).
Result<common::Fd> open_lock_file(const std::filesystem::path& path);

/// flock(2), retried on EINTR.
Result<void> flock_fd(const common::Fd& fd, int op, const std::filesystem::path& path);

/// FNV-1a of `text` as 16 hex digits (not sha256: OpenSSL's first use reads openssl.cnf, a cost
/// on every warm start, and these keys only tell names in one cache apart).
std::string short_hash(std::string_view text);

/// The OCI layout a registry reference is pulled into: <root>/i/<16 hex of the reference>,
/// tagged "latest" (its blobs are shared with the other pulled images through <root>/i/blobs).
std::filesystem::path store_layout_for(const std::filesystem::path& root,
                                       const oci::ImageReference& ref);

/// The directories of $ENVRUN_SHARED_CACHE (colon-separated): envrun caches that an
/// administrator filled (`ENVRUN_CACHE=/shared/envrun envrun pull ...`) and users read. Opt-in;
/// each must be writable by its owner alone, and blobs read from one are verified by digest.
std::vector<std::filesystem::path> shared_cache_roots();

/// The identity of the file a warm start can stat instead of opening the image: the archive, a
/// layout's index.json (blobs are content-addressed, so index.json decides the image), or the
/// index.json of a registry image's layout in the store.
Result<std::string> source_key(const oci::ImageReference& ref, const std::filesystem::path& root);

}  // namespace envbuild::runtime::internal
