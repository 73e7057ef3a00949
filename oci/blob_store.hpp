#pragma once

// A content-addressed blob store on disk, laid out as an OCI image layout's `blobs/sha256/<hex>`
// (image-layout.md). Writes go to a temp file in the same directory and are linked into place
// only after the digest is known and checked, so readers never see a partial blob, and several
// processes may write the same blob at once: the first link wins and the others drop their copy.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/fs.hpp"
#include "common/io.hpp"
#include "common/result.hpp"
#include "oci/descriptor.hpp"
#include "oci/digest.hpp"

namespace envbuild::oci {

enum class Verify : bool { No, Yes };

struct BlobInfo {
  Digest digest;
  int64_t size = 0;
};

/// A sink that hashes what it writes into a temp file; commit() links it into the store under
/// its digest. Dropping it without commit() removes the temp file. Not thread-safe.
class BlobWriter final : public common::ByteSink {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter() override;

  Result<void> write(std::span<const std::byte> data) override;
  /// Makes the blob visible. With `expected`, a different digest is an Integrity error and
  /// nothing is committed.
  Result<BlobInfo> commit(const std::optional<Digest>& expected = std::nullopt);

 private:
  friend class BlobStore;
  struct Impl;
  explicit BlobWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The store rooted at `root` (blobs live in root/blobs/sha256). Cheap to copy; safe to use from
/// several processes at once.
class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root) : root_(std::move(root)) {}

  [[nodiscard]] const std::filesystem::path& root() const noexcept { return root_; }
  [[nodiscard]] std::filesystem::path path_of(const Digest& digest) const;

  /// True if the blob is present (and, when `size` is given, has that size).
  [[nodiscard]] bool contains(const Digest& digest,
                              std::optional<int64_t> size = std::nullopt) const;

  Result<BlobWriter> writer() const;
  /// Stores small in-memory bytes (JSON documents); skips the write if the blob exists.
  Result<BlobInfo> put(std::string_view bytes) const;
  /// Stores a JSON document and returns its descriptor.
  Result<Descriptor> put_document(std::string_view bytes, std::string_view media_type) const;
  /// Streams `source` into the store; with `expected`, checks digest (and size) before commit.
  Result<BlobInfo> put_stream(common::ByteSource& source,
                              const std::optional<Descriptor>& expected = std::nullopt) const;

  /// Opens a blob for reading. With Verify::Yes the stream fails at its end (Integrity) if the
  /// bytes do not hash to the digest, or as soon as it passes `size` when one is given.
  Result<std::unique_ptr<common::ByteSource>> open(
      const Digest& digest, Verify verify = Verify::No,
      std::optional<int64_t> size = std::nullopt) const;
  /// Reads a small blob (manifest, config) whole, always verified.
  Result<std::string> read_small(const Digest& digest, size_t max_bytes = 16u << 20) const;

 private:
  std::filesystem::path root_;
};

/// Wraps a source: reads at most `size` bytes (when given) and checks the sha256 before it
/// reports the end. Errors name `what`.
std::unique_ptr<common::ByteSource> verifying_source(std::unique_ptr<common::ByteSource> inner,
                                                     Digest digest, std::optional<int64_t> size,
                                                     std::string what);

/// Opens a fresh stream over a blob's bytes.
using BlobOpen = std::function<Result<std::unique_ptr<common::ByteSource>>()>;

/// Puts blob `d` into `to` unless it is there already: a hard link to `local` when one is given
/// and on the same file system (free and byte-identical), else the bytes of open(), checked
/// against `d` before they are committed. The one blob copy of every output and store.
Result<void> copy_blob(const Descriptor& d, const std::optional<std::filesystem::path>& local,
                       const BlobOpen& open, const BlobStore& to);

/// copy_blob() from another store.
Result<void> copy_blob(const BlobStore& from, const Descriptor& d, const BlobStore& to);

}  // namespace envbuild::oci
