#pragma once

// Owners for libarchive handles, and the glue that lets libarchive read from a ByteSource and
// write to a ByteSink without throwing through its C frames.

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/io.hpp"
#include "common/result.hpp"

namespace envbuild::oci::internal {

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveReader = std::unique_ptr<archive, ArchiveReadDeleter>;
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

/// "call: libarchive's message".
inline Error archive_error(archive* a, std::string_view call, Errc code = Errc::Io) {
  const char* msg = archive_error_string(a);
  return Error(code, std::string(call) + ": " + (msg ? msg : "unknown libarchive error"));
}

/// Context for archive_write_open2: forwards blocks to a sink and keeps the first error.
struct SinkContext {
  common::ByteSink* sink = nullptr;
  std::optional<Error> error;
};

inline la_ssize_t sink_write_cb(archive* a, void* client, const void* buf, size_t len) {
  auto* ctx = static_cast<SinkContext*>(client);
  auto r = ctx->sink->write(std::span(static_cast<const std::byte*>(buf), len));
  if (!r) {
    ctx->error = std::move(r).error();
    archive_set_error(a, EIO, "%s", ctx->error->to_string().c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(len);
}

/// A tar writer (PAX restricted, 10240-byte records as GNU tar writes) into `ctx.sink`.
/// `unblocked`: libarchive hands every piece straight to the sink instead of copying it into
/// records first, and does not pad the end; the caller pads to a whole record.
inline Result<ArchiveWriter> open_tar_writer(SinkContext& ctx, bool unblocked = false) {
  ArchiveWriter a(archive_write_new());
  if (!a) return fail(Errc::Internal, "archive_write_new failed");
  if (unblocked && archive_write_set_bytes_per_block(a.get(), 0) != ARCHIVE_OK)
    return archive_error(a.get(), "archive_write_set_bytes_per_block", Errc::Internal);
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK)
    return archive_error(a.get(), "archive_write_set_format_pax_restricted", Errc::Internal);
  if (archive_write_open2(a.get(), &ctx, nullptr, sink_write_cb, nullptr, nullptr) != ARCHIVE_OK)
    return archive_error(a.get(), "archive_write_open2");
  return a;
}

/// Context for archive_read_open: pulls from a source through a 1 MiB buffer.
struct SourceContext {
  common::ByteSource* source = nullptr;
  std::vector<std::byte> buffer = std::vector<std::byte>(1u << 20);
  std::optional<Error> error;
};

inline la_ssize_t source_read_cb(archive* a, void* client, const void** out) {
  auto* ctx = static_cast<SourceContext*>(client);
  auto r = ctx->source->read(ctx->buffer);
  if (!r) {
    ctx->error = std::move(r).error();
    archive_set_error(a, EIO, "%s", ctx->error->to_string().c_str());
    return -1;
  }
  *out = ctx->buffer.data();
  return static_cast<la_ssize_t>(*r);
}

/// A tar reader (any tar dialect, no decompression: callers decompress first).
inline Result<ArchiveReader> open_tar_reader(SourceContext& ctx) {
  ArchiveReader a(archive_read_new());
  if (!a) return fail(Errc::Internal, "archive_read_new failed");
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_none(a.get());
  if (archive_read_open(a.get(), &ctx, nullptr, source_read_cb, nullptr) != ARCHIVE_OK) {
    if (ctx.error) return *ctx.error;
    return archive_error(a.get(), "archive_read_open", Errc::Integrity);
  }
  return a;
}

}  // namespace envbuild::oci::internal
