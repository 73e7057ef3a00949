#include "common/msgpack.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

namespace envbuild::common {
namespace {

/// Writes what the reader meets as compact text: the events and their values, in order.
class Recorder final : public MsgpackHandler {
 public:
  std::string out;
  size_t stop_after = SIZE_MAX;

  bool null() override { return add("nil"); }
  bool boolean(bool v) override { return add(v ? "true" : "false"); }
  bool integer(int64_t v) override { return add("i" + std::to_string(v)); }
  bool unsigned_integer(uint64_t v) override { return add("u" + std::to_string(v)); }
  bool floating(double v) override { return add("f" + std::to_string(v)); }
  bool string(std::string_view v) override { return add("s'" + std::string(v) + "'"); }
  bool binary(std::string_view v) override { return add("b" + std::to_string(v.size())); }
  bool key(std::string_view k) override { return add("k'" + std::string(k) + "'"); }
  bool begin_map(size_t n) override { return add("{" + std::to_string(n)); }
  bool end_map() override { return add("}"); }
  bool begin_array(size_t n) override { return add("[" + std::to_string(n)); }
  bool end_array() override { return add("]"); }

 private:
  bool add(const std::string& event) {
    if (!out.empty()) out += ' ';
    out += event;
    return --stop_after > 0;
  }
};

std::string bytes_of(const nlohmann::json& doc) {
  auto v = nlohmann::json::to_msgpack(doc);
  return std::string(v.begin(), v.end());
}

TEST(WalkMsgpack, MeetsEveryKindOfValueInOrder) {
  struct Case {
    std::string in;
    std::string want;
  };
  const Case cases[] = {
      {bytes_of(nullptr), "nil"},
      {bytes_of(true), "true"},
      {bytes_of(5), "u5"},
      {bytes_of(-3), "i-3"},
      {bytes_of(-200), "i-200"},
      {bytes_of(70000), "u70000"},
      {bytes_of(-70000), "i-70000"},
      {bytes_of(uint64_t{1} << 40), "u1099511627776"},
      {bytes_of(int64_t{-1} << 40), "i-1099511627776"},
      {bytes_of(1.5), "f1.500000"},
      {std::string("\xca\x3f\xc0\x00\x00", 5), "f1.500000"},  // float32
      {bytes_of(std::string(40, 'x')), "s'" + std::string(40, 'x') + "'"},  // str8
      {bytes_of(std::string(300, 'y')), "s'" + std::string(300, 'y') + "'"},  // str16
      {bytes_of(nlohmann::json::binary({1, 2, 3})), "b3"},
      {std::string("\xd6\x05\x01\x02\x03\x04", 6), "b4"},  // fixext4
      {std::string("\xc7\x02\x05\xaa\xbb", 5), "b2"},      // ext8
      {bytes_of({{"a", {1, "x"}}, {"b", nlohmann::json::object()}}),
       "{2 k'a' [2 u1 s'x' ] k'b' {0 } }"},
      {bytes_of(nlohmann::json::array()), "[0 ]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.want);
    Recorder r;
    EXPECT_EQ(walk_msgpack(c.in, r), "");
    EXPECT_EQ(r.out, c.want);
  }
}

TEST(WalkMsgpack, RefusesWhatIsNotOneDocument) {
  struct Case {
    std::string in;
    std::string_view want;
  };
  const Case cases[] = {
      {"", "ends inside a value"},
      {std::string("\xc1", 1), "never-used byte"},
      {std::string("\x01\x02", 2), "after the end of the document"},
      {std::string("\x81\x01\x02", 3), "map key that is not a string"},
      {std::string("\xdf\xff\xff\xff\xff", 5), "more entries than bytes left"},
      {std::string("\xdd\xff\xff\xff\xff", 5), "more items than bytes left"},
      {std::string("\xdb\xff\xff\xff\xff" "abc", 8), "past the end"},
      {std::string("\xcd\x01", 2), "ends inside a value"},
      {std::string(kMaxMsgpackDepth + 1, '\x91') + "\xc0", "nested too deep"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.want);
    Recorder r;
    const std::string why = walk_msgpack(c.in, r);
    EXPECT_NE(why.find(c.want), std::string::npos) << why;
    EXPECT_NE(why.find("at byte"), std::string::npos) << why;
  }
  // Nested to the bound is fine.
  Recorder deep;
  EXPECT_EQ(walk_msgpack(std::string(kMaxMsgpackDepth, '\x91') + "\xc0", deep), "");
  // A handler that stops ends the walk.
  Recorder stopping;
  stopping.stop_after = 2;
  EXPECT_EQ(walk_msgpack(bytes_of({1, 2, 3}), stopping), "stopped");
  EXPECT_EQ(stopping.out, "[3 u1");
}

}  // namespace
}  // namespace envbuild::common
