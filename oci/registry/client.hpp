#pragma once

// A client for one repository of a registry (opencontainers/distribution-spec spec.md): the
// /v2/ ping, manifests and indexes by tag or digest (OCI and Docker media types), manifest
// deletes, tag listing with pagination, blob existence checks, downloads into a verifying
// BlobStore writer, uploads (POST then monolithic PUT, or PATCH chunks for large blobs) and
// cross-repository mounts; and on top of it push() and pull() of whole images with parallel blob
// transfers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/http.hpp"
#include "common/result.hpp"
#include "oci/blob_store.hpp"
#include "oci/descriptor.hpp"
#include "oci/image.hpp"
#include "oci/manifest.hpp"
#include "oci/reference.hpp"
#include "oci/registry/auth.hpp"

namespace envbuild::oci::registry {

enum class UploadOutcome { Existed, Mounted, Uploaded };

struct RegistryOptions {
  /// HTTP options (TLS, deadlines, retries) of every request to the registry; its use_netrc is
  /// ignored (registry credentials come from `credentials` or the auth files, as for skopeo).
  common::HttpOptions transport;
  /// --creds; when unset, lookup_credentials() is consulted (if lookup is on).
  std::optional<Credentials> credentials;
  bool lookup_stored_credentials = true;
  /// Parallel blob transfers.
  size_t jobs = 4;
  /// Blobs larger than this are uploaded in PATCH chunks of chunk_size bytes.
  int64_t chunk_threshold = 256ll << 20;
  int64_t chunk_size = 64ll << 20;
  /// Attempts per blob transfer (each restarts the upload session or the download).
  int blob_attempts = 3;
  /// Repositories of the same registry to mount missing blobs from (`?mount=&from=`).
  std::vector<std::string> mount_from;
  /// When set, mounts are tried only for these blobs (the ones a layer cache says are in the
  /// mount_from repositories), so a blob that is not there costs no extra POST.
  std::shared_ptr<const std::set<Digest>> mountable;
  /// Progress of push_blobs (and so push): bytes of blob bodies as they are sent, and each blob
  /// once it is done, with how. Called from the transfer threads.
  std::function<void(uint64_t bytes)> on_bytes;
  std::function<void(const Descriptor& blob, UploadOutcome how)> on_blob;
};

enum class Action { Pull, Push };

/// The most bytes of a manifest or index read from a registry.
inline constexpr size_t kMaxManifestBytes = 4u << 20;

/// Bounds on a tag listing: the registry chooses how many tags each page holds (distribution 2.8
/// ignores `n` and sends every tag at once), so the reader caps what it accepts.
struct TagListLimits {
  /// More tags than this in all is an InvalidInput error.
  size_t max_tags = 10'000;
  /// More pages than this is an InvalidInput error (a registry sending one tag per page).
  size_t max_pages = 64;
};

struct FetchedManifest {
  std::string bytes;
  Descriptor descriptor;  // media type, digest (verified), size
};

/// One repository on one registry. Copies share the authentication state and counters but not
/// the connection: give each thread its own copy (fork()).
class Repository {
 public:
  /// Resolves the endpoint (docker.io -> registry-1.docker.io), the credentials and the token
  /// scopes. InvalidInput for a host or repository name outside the distribution grammar
  /// (oci/reference.hpp). Nothing is sent until ping().
  static Result<Repository> connect(const std::string& host, const std::string& name, Action action,
                                    const RegistryOptions& options);

  [[nodiscard]] Repository fork() const;

  /// GET /v2/: checks the registry speaks the API (and primes authentication). With TLS
  /// verification off, falls back to plain http when https does not answer (like skopeo).
  Result<void> ping();

  /// GET a manifest or index by tag or digest; the digest is verified (against the reference
  /// when it is one, else against Docker-Content-Digest when the registry sends it). One over
  /// max_bytes is an InvalidInput error.
  Result<FetchedManifest> get_manifest(const std::string& reference,
                                       size_t max_bytes = kMaxManifestBytes);
  /// HEAD a manifest: its descriptor, or nullopt when the tag or digest is unknown.
  Result<std::optional<Descriptor>> head_manifest(const std::string& reference);
  /// PUT a manifest or index (Content-Type = media_type) under a tag or its digest. A 400
  /// MANIFEST_BLOB_UNKNOWN is asked again twice (a registry rewriting a blob's link meanwhile).
  Result<Descriptor> put_manifest(const std::string& reference, const std::string& bytes,
                                  const std::string& media_type);

  /// HEAD a blob: its size, or nullopt when absent.
  /// With server_error_is_absent, a 5xx answer (after the transport's retries) is taken as
  /// "not there" rather than an error.
  Result<std::optional<int64_t>> head_blob(const Digest& digest, bool server_error_is_absent = false);
  /// Downloads a blob into `store`, checking size and digest before it becomes visible.
  Result<void> fetch_blob(const Descriptor& blob, const BlobStore& store);
  /// Uploads a blob unless it exists (HEAD first); tries the mount sources first.
  /// `open` returns a fresh stream over the blob's bytes.
  Result<UploadOutcome> push_blob(const Descriptor& blob, const common::BodyOpener& open);
  /// POST ?mount=&from=: true if the registry mounted it (201).
  Result<bool> mount_blob(const Digest& digest, const std::string& from);

  /// DELETE a manifest by digest (the registry drops every tag that names it): true when it was
  /// deleted, false when the registry does not know it. A registry that does not delete
  /// (distribution without storage.delete.enabled answers 405) is an Unsupported error; one
  /// that does not let us, Unauthorized.
  Result<bool> delete_manifest(const Digest& digest);

  /// GET /v2/<name>/tags/list, following `Link: <URL>; rel="next"` from page to page
  /// (distribution-spec "Listing Tags"), in the registry's order. An unknown repository is a
  /// NotFound error; past `limits`, and a next link that leaves this repository's tag list on
  /// this origin (our credentials would go with it), are InvalidInput errors.
  Result<std::vector<std::string>> tags(const TagListLimits& limits = {});
  /// GET /v2/<name>/referrers/<digest> (OCI distribution 1.1): the index of the manifests whose
  /// subject is `subject`, or nullopt when the registry has no referrers API (404), in which
  /// case clients keep the `sha256-<hex>` tag schema themselves.
  Result<std::optional<Index>> referrers(const Digest& subject);

  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// "scheme://endpoint" without the /v2/.
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }
  [[nodiscard]] const common::HttpCounters& counters() const noexcept {
    return *client_->counters();
  }
  [[nodiscard]] const RegistryOptions& options() const noexcept { return *options_; }

 private:
  Repository() = default;
  /// Sends with the current Authorization when the URL is the registry's own origin (never to
  /// an upload Location or anywhere else); on a 401 from the registry answers the challenge once
  /// and resends.
  Result<common::HttpResponse> send(common::HttpRequest request);
  Result<void> upload(const Descriptor& blob, const common::BodyOpener& open, std::string location);
  /// An upload's Location resolved against the registry; refused when it leaves https.
  Result<std::string> resolve(const std::string& location) const;

  std::string host_;
  std::string name_;
  std::string origin_;
  std::shared_ptr<const RegistryOptions> options_;
  std::shared_ptr<Authenticator> auth_;
  std::unique_ptr<common::HttpClient> client_;
};

struct TransferReport {
  Descriptor manifest;  // what the reference now names (an index for a multi-image push)
  size_t blobs = 0;
  size_t uploaded = 0;  // or downloaded, for a pull
  size_t existed = 0;   // already in the target, skipped
  size_t mounted = 0;
  uint64_t blob_bytes = 0;  // bytes of blobs actually transferred
  uint64_t requests = 0;
  uint64_t put_requests = 0;
  uint64_t patch_requests = 0;
  uint64_t post_requests = 0;
  std::chrono::milliseconds elapsed{0};
};

/// Opens a blob's bytes for an upload.
using BlobOpener = std::function<Result<std::unique_ptr<common::ByteSource>>(const Descriptor&)>;

/// Pushes `blobs` in parallel (options().jobs threads), each skipped after a HEAD or mounted
/// when it can be, and counts them into `report` (blobs, uploaded, existed, mounted,
/// blob_bytes).
Result<void> push_blobs(Repository& repo, const std::vector<Descriptor>& blobs,
                        const BlobOpener& open, TransferReport& report);

/// GETs `references` (tags or digests) on up to options().jobs threads: each manifest, verified
/// as get_manifest() does, or nullopt when the registry does not know it (404); in the order of
/// `references`. Other errors end the batch.
Result<std::vector<std::optional<FetchedManifest>>> get_manifests(
    Repository& repo, const std::vector<std::string>& references,
    size_t max_bytes = kMaxManifestBytes);

/// Pushes one image to `dest` (a Registry reference; by tag, or by digest when it has no tag):
/// blobs in parallel (each skipped after a HEAD when the registry has it), then the manifest.
Result<TransferReport> push(const Image& image, const ImageReference& dest,
                            const RegistryOptions& options = {});

/// Pushes several single-platform images and an index over them (multi-arch) under dest's tag.
Result<TransferReport> push_index(const std::vector<const Image*>& images,
                                  const ImageReference& dest, const RegistryOptions& options = {});

/// Pulls `src` into `store`: the manifest (from an index, only the one for `platform`, default
/// the host's), its config and layers, every blob verified. Blobs already in the store are
/// skipped. The returned manifest descriptor carries the platform.
Result<TransferReport> pull(const ImageReference& src, const std::optional<Platform>& platform,
                            const BlobStore& store, const RegistryOptions& options = {});

/// What pull() fetches but the layers: the manifest (chosen as pull() does) and its config,
/// into `store`, for reading an image without downloading it (envbuild inspect). The returned
/// descriptor carries the index's platform when it gave one; open it with open_store_image.
Result<Descriptor> pull_manifest_and_config(const ImageReference& src,
                                            const std::optional<Platform>& platform,
                                            const BlobStore& store,
                                            const RegistryOptions& options = {});

}  // namespace envbuild::oci::registry
