#include "common/msgpack.hpp"

#include <bit>
#include <cstring>

namespace envbuild::common {

namespace {

class Reader {
 public:
  Reader(std::string_view bytes, MsgpackHandler& handler) : in_(bytes), handler_(handler) {}

  std::string run() {
    if (!value(0)) return error_.empty() ? "stopped" : error_;
    if (pos_ != in_.size()) {
      invalid("bytes after the end of the document");
      return error_;
    }
    return {};
  }

 private:
  bool value(size_t depth) {
    uint8_t tag = 0;
    if (!byte(tag)) return false;
    if (tag <= 0x7f) return handler_.unsigned_integer(tag);
    if (tag >= 0xe0) return handler_.integer(static_cast<int8_t>(tag));
    if ((tag & 0xf0) == 0x80) return map(tag & 0x0f, depth);
    if ((tag & 0xf0) == 0x90) return array(tag & 0x0f, depth);
    if ((tag & 0xe0) == 0xa0) return string(tag & 0x1f);
    switch (tag) {
      case 0xc0: return handler_.null();
      case 0xc2: return handler_.boolean(false);
      case 0xc3: return handler_.boolean(true);
      case 0xc4: return sized<uint8_t>([&](size_t n) { return binary(n); });
      case 0xc5: return sized<uint16_t>([&](size_t n) { return binary(n); });
      case 0xc6: return sized<uint32_t>([&](size_t n) { return binary(n); });
      case 0xc7: return sized<uint8_t>([&](size_t n) { return skip(1) && binary(n); });
      case 0xc8: return sized<uint16_t>([&](size_t n) { return skip(1) && binary(n); });
      case 0xc9: return sized<uint32_t>([&](size_t n) { return skip(1) && binary(n); });
      case 0xca: {
        uint32_t bits = 0;
        return number(bits) && handler_.floating(std::bit_cast<float>(bits));
      }
      case 0xcb: {
        uint64_t bits = 0;
        return number(bits) && handler_.floating(std::bit_cast<double>(bits));
      }
      case 0xcc: return unsigned_of<uint8_t>();
      case 0xcd: return unsigned_of<uint16_t>();
      case 0xce: return unsigned_of<uint32_t>();
      case 0xcf: return unsigned_of<uint64_t>();
      case 0xd0: return signed_of<uint8_t, int8_t>();
      case 0xd1: return signed_of<uint16_t, int16_t>();
      case 0xd2: return signed_of<uint32_t, int32_t>();
      case 0xd3: return signed_of<uint64_t, int64_t>();
      case 0xd4: return skip(1) && binary(1);
      case 0xd5: return skip(1) && binary(2);
      case 0xd6: return skip(1) && binary(4);
      case 0xd7: return skip(1) && binary(8);
      case 0xd8: return skip(1) && binary(16);
      case 0xd9: return sized<uint8_t>([&](size_t n) { return string(n); });
      case 0xda: return sized<uint16_t>([&](size_t n) { return string(n); });
      case 0xdb: return sized<uint32_t>([&](size_t n) { return string(n); });
      case 0xdc: return sized<uint16_t>([&](size_t n) { return array(n, depth); });
      case 0xdd: return sized<uint32_t>([&](size_t n) { return array(n, depth); });
      case 0xde: return sized<uint16_t>([&](size_t n) { return map(n, depth); });
      case 0xdf: return sized<uint32_t>([&](size_t n) { return map(n, depth); });
      default: return invalid("the never-used byte 0xc1");
    }
  }

  bool map(size_t count, size_t depth) {
    // Each entry takes at least two bytes: a count the input cannot hold is refused up front.
    if (count > (in_.size() - pos_) / 2) return invalid("a map of more entries than bytes left");
    if (depth + 1 > kMaxMsgpackDepth) return invalid("nested too deep");
    if (!handler_.begin_map(count)) return false;
    for (size_t i = 0; i < count; ++i) {
      uint8_t tag = 0;
      if (!byte(tag)) return false;
      size_t length = 0;
      if ((tag & 0xe0) == 0xa0) {
        length = tag & 0x1f;
      } else if (tag == 0xd9 || tag == 0xda || tag == 0xdb) {
        if (!length_of(tag == 0xd9 ? 1 : tag == 0xda ? 2 : 4, length)) return false;
      } else {
        --pos_;
        return invalid("a map key that is not a string");
      }
      std::string_view text;
      if (!take(length, text) || !handler_.key(text) || !value(depth + 1)) return false;
    }
    return handler_.end_map();
  }

  bool array(size_t count, size_t depth) {
    if (count > in_.size() - pos_) return invalid("an array of more items than bytes left");
    if (depth + 1 > kMaxMsgpackDepth) return invalid("nested too deep");
    if (!handler_.begin_array(count)) return false;
    for (size_t i = 0; i < count; ++i)
      if (!value(depth + 1)) return false;
    return handler_.end_array();
  }

  bool string(size_t length) {
    std::string_view text;
    return take(length, text) && handler_.string(text);
  }
  bool binary(size_t length) {
    std::string_view bytes;
    return take(length, bytes) && handler_.binary(bytes);
  }

  template <typename Length, typename Then>
  bool sized(Then then) {
    Length n = 0;
    return number(n) && then(static_cast<size_t>(n));
  }
  bool length_of(size_t width, size_t& out) {
    if (width == 1) {
      uint8_t n = 0;
      if (!number(n)) return false;
      out = n;
    } else if (width == 2) {
      uint16_t n = 0;
      if (!number(n)) return false;
      out = n;
    } else {
      uint32_t n = 0;
      if (!number(n)) return false;
      out = n;
    }
    return true;
  }
  template <typename U>
  bool unsigned_of() {
    U v = 0;
    return number(v) && handler_.unsigned_integer(v);
  }
  template <typename U, typename S>
  bool signed_of() {
    U v = 0;
    return number(v) && handler_.integer(static_cast<S>(v));
  }

  /// A big-endian unsigned number.
  template <typename U>
  bool number(U& out) {
    if (in_.size() - pos_ < sizeof(U)) return invalid("the input ends inside a value");
    U v = 0;
    std::memcpy(&v, in_.data() + pos_, sizeof(U));
    pos_ += sizeof(U);
    if constexpr (std::endian::native == std::endian::little && sizeof(U) > 1) v = byteswap(v);
    out = v;
    return true;
  }
  template <typename U>
  static U byteswap(U v) {
    if constexpr (sizeof(U) == 2) return static_cast<U>(__builtin_bswap16(v));
    if constexpr (sizeof(U) == 4) return static_cast<U>(__builtin_bswap32(v));
    if constexpr (sizeof(U) == 8) return static_cast<U>(__builtin_bswap64(v));
    return v;
  }
  bool byte(uint8_t& out) { return number(out); }
  bool skip(size_t n) {
    if (in_.size() - pos_ < n) return invalid("the input ends inside a value");
    pos_ += n;
    return true;
  }
  bool take(size_t n, std::string_view& out) {
    if (in_.size() - pos_ < n) return invalid("a length past the end of the input");
    out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool invalid(std::string_view why) {
    error_ = std::string(why) + " (at byte " + std::to_string(pos_) + ")";
    return false;
  }

  std::string_view in_;
  size_t pos_ = 0;
  MsgpackHandler& handler_;
  std::string error_;
};

}  // namespace

std::string walk_msgpack(std::string_view bytes, MsgpackHandler& handler) {
  return Reader(bytes, handler).run();
}

}  // namespace envbuild::common
