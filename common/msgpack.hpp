#pragma once

// A streaming msgpack reader: walks a document and tells a handler what it meets, with no DOM
// and no copy of a string (views into the input). For large untrusted documents read once
// (CEP 16 repodata shards, a few hundred per solve); common::parse_msgpack builds a DOM where
// a caller wants one.
//
// Strict, as nlohmann's reader is: map keys must be strings, the never-used byte 0xc1 and
// anything after the document are errors, and a length or count that the remaining input
// cannot hold is refused before anything is read. Nesting is bounded (kMaxMsgpackDepth).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace envbuild::common {

inline constexpr size_t kMaxMsgpackDepth = 128;

/// What the reader meets, in document order. Returning false stops the walk (the handler keeps
/// its own reason); `key` is called for each map key before its value. The string_views point
/// into the bytes walked, so they stay valid as long as those do.
class MsgpackHandler {
 public:
  virtual ~MsgpackHandler() = default;
  virtual bool null() = 0;
  virtual bool boolean(bool value) = 0;
  virtual bool integer(int64_t value) = 0;
  virtual bool unsigned_integer(uint64_t value) = 0;
  virtual bool floating(double value) = 0;
  virtual bool string(std::string_view value) = 0;
  /// bin and ext values (an ext's type byte is not passed).
  virtual bool binary(std::string_view bytes) = 0;
  virtual bool key(std::string_view key) = 0;
  virtual bool begin_map(size_t count) = 0;
  virtual bool end_map() = 0;
  virtual bool begin_array(size_t count) = 0;
  virtual bool end_array() = 0;
};

/// Walks `bytes` (one msgpack document). "" when the whole document was read; otherwise why
/// the input is not msgpack (with the byte offset), or "stopped" when the handler returned
/// false.
std::string walk_msgpack(std::string_view bytes, MsgpackHandler& handler);

}  // namespace envbuild::common
