#pragma once

// JSON from untrusted sources (image manifests, configs and indexes, registry answers, repodata,
// package metadata, conda-meta records, relocation records, cache entries) goes through
// parse_json: nlohmann's parser itself keeps no recursion, but copying, comparing, dumping and
// walking a document recurse once per level, so 500k nested arrays end in a stack overflow far
// from the parse. parse_json (and parse_msgpack) refuse such a document while parsing (a depth counter in the SAX
// events that build the value: no second pass over the bytes), with a message that names it.

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace envbuild::common {

/// The deepest nesting of arrays and objects parse_json accepts by default. Real documents
/// stay under 10 (repodata 4, an image config 5, a conda-lock file read as JSON 6); a few
/// hundred levels cost a few hundred stack frames in any recursive use of the value.
inline constexpr size_t kMaxJsonDepth = 256;

/// Parses `text` as one JSON document. A syntax error, trailing bytes or nesting deeper than
/// `max_depth` is an error of kind `code` whose message starts with `what` ("image config
/// sha256:ab12...", "info/paths.json").
Result<nlohmann::json> parse_json(std::string_view text, std::string_view what,
                                  Errc code = Errc::InvalidInput, size_t max_depth = kMaxJsonDepth);

/// Parses `bytes` as one msgpack document (CEP 16 sharded repodata) into the same JSON model,
/// with the same depth bound; msgpack `bin` becomes a JSON binary value. The reader never
/// allocates ahead from a declared length or count (a string or array that claims 4 GiB ends
/// at the end of the input), so memory stays within a small multiple of bytes.size(): callers
/// bound that (a decompressed shard is at most kMaxShardBytes).
Result<nlohmann::json> parse_msgpack(std::string_view bytes, std::string_view what,
                                     Errc code = Errc::InvalidInput,
                                     size_t max_depth = kMaxJsonDepth);

}  // namespace envbuild::common
