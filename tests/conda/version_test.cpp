#include "conda/version.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "conda/version_spec.hpp"

namespace envbuild::conda {
namespace {

Version v(std::string_view text) {
  auto parsed = Version::parse(text);
  EXPECT_TRUE(parsed) << text << ": " << parsed.error().to_string();
  return parsed ? *parsed : Version{};
}

TEST(VersionParse, ValidRoundTrip) {
  for (std::string_view text : {"0", "1.2.3", "1!2.0", "1.0+local.7", "1.0.1_", "2024b", "1.1.0rc1",
                                "0.4.1.RC", "1_2_3", "1-2-3", "3.11.0", "20230101120000",
                                "1.0post1", "1.0.dev1", "1996.07.12", "2!0.4.1+abc_1"}) {
    SCOPED_TRACE(text);
    auto parsed = Version::parse(text);
    ASSERT_TRUE(parsed) << parsed.error().to_string();
    EXPECT_EQ(parsed->to_string(), text);
    auto again = Version::parse(parsed->to_string());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *parsed);
  }
}

TEST(VersionParse, InvalidPointsAtCharacter) {
  struct Case {
    std::string_view in;
    size_t column;  // 1-based, as printed
  };
  for (Case c :
       {Case{"", 0}, Case{"1..2", 3}, Case{"1.2.", 5}, Case{".1", 1}, Case{"1.2 3", 4},
        Case{"a!1", 1}, Case{"1!2!3", 4}, Case{"1+", 3}, Case{"1.0+a+b", 6}, Case{"1.*", 3},
        Case{"1.0$", 4}, Case{"!1", 1}, Case{"99999999999999999999999", 1}}) {
    SCOPED_TRACE(c.in);
    auto parsed = Version::parse(c.in);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code(), Errc::InvalidInput);
    EXPECT_NE(parsed.error().message().find("'" + std::string(c.in) + "'"), std::string::npos)
        << parsed.error().message();
    if (c.column > 0) {
      EXPECT_NE(parsed.error().message().find("(column " + std::to_string(c.column) + ")"),
                std::string::npos)
          << parsed.error().message();
      EXPECT_NE(parsed.error().message().find("\n  " + std::string(c.column - 1, ' ') + "^"),
                std::string::npos)
          << parsed.error().message();
    }
  }
}

// The CEP 33 example chain (landscape.md 4.6); entries joined by "==" are equal.
TEST(VersionOrder, CepExampleChainIsSorted) {
  std::vector<std::vector<std::string_view>> chain = {
      {"0.4", "0.4.0"}, {"0.4.1.rc", "0.4.1.RC"},
      {"0.4.1+local"},  {"0.4.1"},
      {"0.5a1"},        {"0.5b3"},
      {"0.5C1"},        {"0.5"},
      {"0.9.6"},        {"0.960923"},
      {"1.0"},          {"1.1dev1"},
      {"1.1a1"},        {"1.1.0dev1", "1.1.dev1"},
      {"1.1.a1"},       {"1.1.0rc1"},
      {"1.1.0"},        {"1.1.post1", "1.1.0post1"},
      {"1.1post1"},     {"1996.07.12"},
      {"1!0.4.1"},      {"1!3.1.1.6"},
      {"2!0.4.1"},
  };
  for (size_t i = 0; i < chain.size(); ++i) {
    for (auto a : chain[i]) {
      for (auto b : chain[i]) {
        EXPECT_EQ(v(a), v(b)) << a << " == " << b;
        EXPECT_EQ(v(a).hash(), v(b).hash()) << a << " hash " << b;
      }
      for (size_t j = i + 1; j < chain.size(); ++j) {
        for (auto b : chain[j]) {
          EXPECT_LT(v(a), v(b)) << a << " < " << b;
          EXPECT_GT(v(b), v(a)) << b << " > " << a;
          EXPECT_NE(v(a), v(b));
        }
      }
    }
  }
}

TEST(VersionOrder, Rules) {
  EXPECT_EQ(v("1.1"), v("1.1.0"));
  EXPECT_EQ(v("1.1"), v("1.1.0.0"));
  EXPECT_EQ(v("1.1.0rc"), v("1.1.rc"));  // conda/conda#12568
  EXPECT_GT(v("1.1.rc"), v("1.1rc"));
  EXPECT_LT(v("1.0.1_"), v("1.0.1a"));  // openssl-style trailing underscore
  EXPECT_LT(v("1.0.1_"), v("1.0.1"));
  EXPECT_EQ(v("1-2-3"), v("1_2_3"));
  EXPECT_EQ(v("1-2-3"), v("1.2.3"));
  EXPECT_LT(v("1.0dev"), v("1.0a"));
  EXPECT_LT(v("1.0"), v("1.0post"));
  EXPECT_LT(v("1.0.99999"), v("1.0post"));
  EXPECT_LT(v("1.9"), v("1.10"));
  EXPECT_EQ(v("01.02"), v("1.2"));
  EXPECT_LT(v("1.0+1"), v("1.0+2"));
  EXPECT_EQ(v("1.0"), v("1.0+0"));
  EXPECT_LT(v("2.0+9"), v("2.0.1"));
  EXPECT_LT(v("9999"), v("1!0"));
}

TEST(VersionHash, EqualVersionsShareABucket) {
  std::unordered_set<Version> set = {v("1.1"), v("1.1.0"), v("1.1.0.0"), v("1.1.1")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(VersionStartsWith, Prefixes) {
  EXPECT_TRUE(v("1.26.4").starts_with(v("1.26")));
  EXPECT_TRUE(v("1.26").starts_with(v("1.26")));
  EXPECT_TRUE(v("1.26.0").starts_with(v("1.26")));
  EXPECT_FALSE(v("1.260").starts_with(v("1.26")));
  EXPECT_FALSE(v("1.25.9").starts_with(v("1.26")));
  EXPECT_TRUE(v("1.1alpha").starts_with(v("1.1a")));
  EXPECT_FALSE(v("2!1.26").starts_with(v("1.26")));
  EXPECT_TRUE(v("1.0+abc.1").starts_with(v("1.0+abc")));
}

TEST(VersionCompatible, TildeEquals) {
  EXPECT_TRUE(v("1.4.5").compatible_with(v("1.4.5")));
  EXPECT_TRUE(v("1.4.9").compatible_with(v("1.4.5")));
  EXPECT_FALSE(v("1.5.0").compatible_with(v("1.4.5")));
  EXPECT_FALSE(v("1.4.4").compatible_with(v("1.4.5")));
  EXPECT_TRUE(v("1.9").compatible_with(v("1.4")));
  EXPECT_FALSE(v("2.0").compatible_with(v("1.4")));
}

struct SpecCase {
  std::string_view spec;
  std::string_view canonical;
  std::vector<std::string_view> match;
  std::vector<std::string_view> no_match;
};

TEST(VersionSpecParse, ValidRoundTripAndMatch) {
  std::vector<SpecCase> cases = {
      {"*", "*", {"0", "1.2"}, {}},
      {"", "*", {"1"}, {}},
      {"1.26.*", "1.26.*", {"1.26", "1.26.4"}, {"1.260", "1.27"}},
      {"1.26*", "1.26.*", {"1.26.4"}, {"1.260"}},
      {"=1.26", "1.26.*", {"1.26.4"}, {"1.27"}},
      {"==1.26.4", "==1.26.4", {"1.26.4", "1.26.4.0"}, {"1.26.5"}},
      {"1.26.4", "==1.26.4", {"1.26.4"}, {"1.26.40"}},
      {">=1.20,<2|>=2.1", ">=1.20,<2|>=2.1", {"1.20", "1.99", "2.1", "3"}, {"1.19", "2.0.5"}},
      {">= 1.5.0,  < 2.0.0", ">=1.5.0,<2.0.0", {"1.5"}, {"2.0"}},
      {"!=1.2", "!=1.2", {"1.3"}, {"1.2.0"}},
      {"!=1.2.*", "!=1.2.*", {"1.3"}, {"1.2.7"}},
      {"~=1.4.5", "~=1.4.5", {"1.4.7"}, {"1.5", "1.4.4"}},
      {">=1.2.*", ">=1.2", {"1.2"}, {"1.1"}},
      {"1.*.3", "1.*.3", {"1.2.3"}, {"1.2.4"}},
      {">1,(<2|>3)", ">1,(<2|>3)", {"1.5", "4"}, {"2.5"}},
      {"(>1,<2)|>3", ">1,<2|>3", {"1.5", "4"}, {"2.5"}},
      {"<3,>=2.0", "<3,>=2.0", {"2.9"}, {"3"}},
      {"3.11.*", "3.11.*", {"3.11.0"}, {"3.12"}},
      {"2.7.*", "2.7.*", {"2.7.18"}, {"3.7"}},
      {"<3.3.0a0", "<3.3.0a0", {"3.2.9"}, {"3.3.0"}},
      {">=0.0.0a0", ">=0.0.0a0", {"26.10.0"}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.spec);
    auto spec = VersionSpec::parse(c.spec);
    ASSERT_TRUE(spec) << spec.error().to_string();
    EXPECT_EQ(spec->to_string(), c.canonical);
    auto again = VersionSpec::parse(spec->to_string());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(*again, *spec);
    for (auto m : c.match) EXPECT_TRUE(spec->matches(v(m))) << m;
    for (auto m : c.no_match) EXPECT_FALSE(spec->matches(v(m))) << m;
  }
}

TEST(VersionSpecParse, InvalidPointsAtCharacter) {
  struct Case {
    std::string_view in;
    size_t column;
  };
  for (Case c :
       {Case{">=1.2,<", 8}, Case{">=", 3}, Case{"1.2,,3", 5}, Case{"(1.2", 5}, Case{"1.2)", 4},
        Case{">=1..2", 5}, Case{"~=1.*", 1}, Case{">=*1*", 1}, Case{"=<1", 2}, Case{"1|", 3}}) {
    SCOPED_TRACE(c.in);
    auto spec = VersionSpec::parse(c.in);
    ASSERT_FALSE(spec);
    EXPECT_EQ(spec.error().code(), Errc::InvalidInput);
    EXPECT_NE(spec.error().message().find("'" + std::string(c.in) + "'"), std::string::npos);
    EXPECT_NE(spec.error().message().find("(column " + std::to_string(c.column) + ")"),
              std::string::npos)
        << spec.error().message();
  }
}

TEST(VersionSpecParse, DeepNestingIsAnErrorNotAStackOverflow) {
  EXPECT_TRUE(VersionSpec::parse("((1.2))"));
  auto deep = VersionSpec::parse(std::string(100000, '(') + "1" + std::string(100000, ')'));
  ASSERT_FALSE(deep);
  EXPECT_NE(deep.error().message().find("nested too deeply"), std::string::npos);
}

}  // namespace
}  // namespace envbuild::conda
