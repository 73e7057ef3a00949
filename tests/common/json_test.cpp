#include "common/json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace envbuild::common {
namespace {

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(ParseJson, AcceptsDocumentsAndTheirValues) {
  struct Case {
    std::string in;
    std::string dumped;
  };
  const Case cases[] = {
      {R"({"b":[1,2.5,"x",null,true],"a":{}})", R"({"a":{},"b":[1,2.5,"x",null,true]})"},
      {" [ ] ", "[]"},
      {"\"text\"", "\"text\""},
      {"-7", "-7"},
      {nested(kMaxJsonDepth), nested(kMaxJsonDepth)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in.substr(0, 80));
    auto j = parse_json(c.in, "doc");
    ASSERT_TRUE(j) << j.error().to_string();
    EXPECT_EQ(j->dump(), c.dumped);
  }
}

TEST(ParseJson, RefusesBrokenAndTooDeepDocumentsWithTheirName) {
  struct Case {
    std::string in;
    std::string_view want;
  };
  const Case cases[] = {
      {"{", "config.json: invalid JSON"},
      {"[1,]", "config.json: invalid JSON"},
      {"{} {}", "config.json: invalid JSON"},  // trailing bytes
      {"", "config.json: invalid JSON"},
      {nested(kMaxJsonDepth + 1), "nested more than 256 levels deep"},
      {nested(kMaxJsonDepth + 1, '{', '}'), "config.json: invalid JSON"},  // {{ is no object
      {"{\"a\":" + std::string(300, '[') + "1" + std::string(300, ']') + "}",
       "nested more than 256 levels deep"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in.substr(0, 80));
    auto j = parse_json(c.in, "config.json", Errc::Integrity);
    ASSERT_FALSE(j);
    EXPECT_EQ(j.error().code(), Errc::Integrity);
    EXPECT_NE(j.error().message().find(c.want), std::string::npos) << j.error().message();
  }
}

// Issue 16, class 9: 500k levels of nesting ended in a stack overflow in a copy of the value.
TEST(ParseJson, HalfAMillionLevelsAreRefusedWithoutRecursion) {
  auto j = parse_json(nested(500'000), "image config");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code(), Errc::InvalidInput);
  EXPECT_NE(j.error().message().find("image config: arrays and objects nested more than 256"),
            std::string::npos)
      << j.error().message();
  // A lower bound is the caller's to choose.
  EXPECT_FALSE(parse_json(nested(5), "x", Errc::InvalidInput, 4));
  EXPECT_TRUE(parse_json(nested(4), "x", Errc::InvalidInput, 4));
}

}  // namespace
}  // namespace envbuild::common
