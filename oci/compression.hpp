#pragma once

// Layer compression: streaming gzip (zlib) and zstd sinks whose output depends only on the input
// and the level (no file name or time in the gzip header), and a decompressing source that
// detects the format from its magic bytes.

#include <memory>
#include <span>
#include <string_view>

#include "common/io.hpp"
#include "common/result.hpp"

namespace envbuild::oci {

enum class Compression { None, Gzip, Zstd };

std::string_view to_string(Compression c);
/// The OCI layer media type for a compression.
std::string_view layer_media_type(Compression c);
/// From a layer media type (OCI or Docker); Unsupported for anything else.
Result<Compression> compression_of_media_type(std::string_view media_type);
/// From the first bytes of a blob (gzip 1f8b, zstd 28b52ffd, else None).
Compression detect_compression(std::span<const std::byte> head);
/// The level used when none is given: gzip 6 (gzip's default), zstd 3 (zstd's default).
int default_level(Compression c);

/// A sink that compresses into `next` (not owned; must outlive it). close() writes the trailer
/// and closes `next`. With Compression::None it forwards unchanged.
Result<std::unique_ptr<common::ByteSink>> make_compressor(Compression c, int level,
                                                          common::ByteSink& next);

/// A source that yields the decompressed bytes of `inner`, detecting gzip/zstd/plain from the
/// magic. Truncated or corrupt input is an Integrity error naming `what`.
Result<std::unique_ptr<common::ByteSource>> make_decompressor(
    std::unique_ptr<common::ByteSource> inner, std::string what);

}  // namespace envbuild::oci
