#include "common/result.hpp"

#include <gtest/gtest.h>

namespace envbuild {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return fail(Errc::InvalidInput, "not positive: " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  ENVB_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return x * 2;
}

Result<void> check(int v) {
  ENVB_TRY(parse_positive(v).context("checking " + std::to_string(v)));
  return ok();
}

TEST(Result, ValueAndErrorPropagate) {
  EXPECT_EQ(*doubled(4), 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidInput);
  EXPECT_EQ(bad.error().to_string(), "not positive: -1");
}

TEST(Result, ContextChainReadsOutermostFirst) {
  auto r = check(0).context("building image");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "building image: checking 0: not positive: 0");
}

TEST(Result, CombinatorsCompose) {
  auto r = parse_positive(3).and_then([](int v) { return parse_positive(v - 5); });
  EXPECT_FALSE(r);
  auto t = parse_positive(3).transform([](int v) { return std::to_string(v); });
  EXPECT_EQ(*t, "3");
  EXPECT_EQ(parse_positive(-2).value_or(7), 7);
}

TEST(Result, ExitCodesAreDistinctForUserFacingKinds) {
  EXPECT_EQ(exit_code_for(Errc::InvalidInput), 2);
  EXPECT_NE(exit_code_for(Errc::HostMismatch), exit_code_for(Errc::Unsatisfiable));
}

}  // namespace
}  // namespace envbuild
