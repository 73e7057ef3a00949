// PEP 440 versions and specifiers. Expected values come from pip's vendored packaging 21.3
// (the peer the resolver is checked against), e.g.
//   python3 -c 'from pip._vendor.packaging.version import Version; print(Version("1.0-1"))'

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "conda/pypi/specifier.hpp"
#include "conda/pypi/version.hpp"

namespace envbuild::conda::pypi {
namespace {

Version v(std::string_view text) {
  auto parsed = Version::parse(text);
  EXPECT_TRUE(parsed) << text << ": " << (parsed ? "" : parsed.error().to_string());
  return parsed ? *parsed : Version{};
}

TEST(PypiVersionParse, NormalizesAsPackagingDoes) {
  struct Case {
    std::string_view in, normal;
  };
  for (Case c : {Case{"1.0", "1.0"},
                 Case{"v1.0", "1.0"},
                 Case{"1.0.0", "1.0.0"},
                 Case{"1!2.0", "1!2.0"},
                 Case{"1.0a1", "1.0a1"},
                 Case{"1.0-alpha1", "1.0a1"},
                 Case{"1.0.ALPHA.1", "1.0a1"},
                 Case{"1.0b2", "1.0b2"},
                 Case{"1.0c3", "1.0rc3"},
                 Case{"1.0pre5", "1.0rc5"},
                 Case{"1.0preview6", "1.0rc6"},
                 Case{"1.0-1", "1.0.post1"},
                 Case{"1.0-r2", "1.0.post2"},
                 Case{"1.0rev3", "1.0.post3"},
                 Case{"1.0.dev4", "1.0.dev4"},
                 Case{"1.0-dev", "1.0.dev0"},
                 Case{"1.0+Ubuntu-1", "1.0+ubuntu.1"},
                 Case{"1.0a1.post2.dev3+local.7", "1.0a1.post2.dev3+local.7"},
                 Case{" 2.0 ", "2.0"},
                 Case{"1.0_post_1", "1.0.post1"},
                 Case{"1.0a.", "1.0a0"},
                 Case{"1.0.POST", "1.0.post0"},
                 Case{"2024.1.15", "2024.1.15"},
                 Case{"1.0a", "1.0a0"},
                 Case{"1.0.post.", "1.0.post0"},
                 Case{"1.0.dev.", "1.0.dev0"},
                 Case{"1.0a.post1", "1.0a0.post1"},
                 Case{"1.0a.-1", "1.0a0.post1"},
                 Case{"1.0-a1", "1.0a1"}}) {
    SCOPED_TRACE(c.in);
    Version parsed = v(c.in);
    EXPECT_EQ(parsed.to_string(), c.normal);
    EXPECT_EQ(v(parsed.to_string()), parsed);
    EXPECT_EQ(v(parsed.to_string()).to_string(), c.normal);
  }
}

TEST(PypiVersionParse, RejectsWithColumn) {
  struct Case {
    std::string_view in;
    size_t column;  // 1-based
  };
  for (Case c : {Case{"", 1}, Case{"a", 1}, Case{"1.0x", 4}, Case{"1..0", 2}, Case{"1.0+", 5},
                 Case{"1.0+a..b", 7}, Case{"1!", 3}, Case{"1.0 1", 4},
                 Case{"99999999999999999999999", 1}, Case{"1.0-", 4}}) {
    SCOPED_TRACE(c.in);
    auto parsed = Version::parse(c.in);
    ASSERT_FALSE(parsed) << parsed->to_string();
    EXPECT_EQ(parsed.error().code(), Errc::InvalidInput);
    EXPECT_NE(parsed.error().message().find("'" + std::string(c.in) + "'"), std::string::npos)
        << parsed.error().message();
    EXPECT_NE(parsed.error().message().find("(column " + std::to_string(c.column) + ")"),
              std::string::npos)
        << parsed.error().message();
  }
  EXPECT_FALSE(Version::parse(std::string(300, '1')));
}

TEST(PypiVersionOrder, StaysSorted) {
  const std::vector<std::string_view> sorted = {
      "0.9",       "1.0.dev0",  "1.0a0",          "1.0a1.dev0", "1.0a1",     "1.0b1",
      "1.0rc1",    "1.0",       "1.0+abc",        "1.0+abc.1",  "1.0+5",     "1.0.post0.dev0",
      "1.0.post0", "1.0.post1", "1.1.dev1",       "1.1",        "2",         "1!0.1"};
  for (size_t i = 0; i + 1 < sorted.size(); ++i) {
    SCOPED_TRACE(std::string(sorted[i]) + " < " + std::string(sorted[i + 1]));
    EXPECT_LT(v(sorted[i]), v(sorted[i + 1]));
    EXPECT_GT(v(sorted[i + 1]), v(sorted[i]));
  }
  EXPECT_EQ(v("1.0"), v("1.0.0.0"));
  EXPECT_EQ(v("1.0a"), v("1.0a0"));
  EXPECT_TRUE(v("1.0.dev1").is_prerelease());
  EXPECT_TRUE(v("1.0rc1").is_prerelease());
  EXPECT_FALSE(v("1.0.post1").is_prerelease());
  EXPECT_EQ(v("1!2.0rc1.post3+x").base_version().to_string(), "1!2.0");
  EXPECT_EQ(v("2.0rc1+x").public_version().to_string(), "2.0rc1");
}

TEST(PypiSpecifier, ContainsAsPackaging) {
  struct Case {
    std::string_view spec, version;
    bool want;
  };
  // SpecifierSet(spec).contains(version) with packaging 21.3's default pre-release rule.
  for (Case c : std::vector<Case>{
           {">=1.0", "1.0", true},          {">=1.0", "0.9", false},
           {">=1.0", "2.0a1", false},       {">=1.0a1", "2.0a1", true},
           {"<2.0", "2.0rc1", false},       {"<2.0", "1.9rc1", false},
           {"<2.0rc2", "2.0rc1", false},    {">1.0", "1.0.post1", false},
           {">1.0.post1", "1.0.post2", true}, {">1.0", "1.0+local", false},
           {">1.0", "1.1", true},           {"==1.0", "1.0.0", true},
           {"==1.0", "1.0+abc", true},      {"==1.0+abc", "1.0", false},
           {"==1.0.*", "1.0.5", true},      {"==1.0.*", "1.1", false},
           {"!=1.0.*", "1.0.1", false},     {"~=2.2", "2.9", true},
           {"~=2.2", "3.0", false},         {"~=2.2.0", "2.2.9", true},
           {"~=2.2.0", "2.3", false},       {"~=1.4.5a4", "1.4.9", true},
           {"~=2.2.post3", "2.5", true},    {"<=1.0", "1.0+local", true},
           {"===1.0", "1.0", true},         {"===1.0", "1.0.0", false},
           {">=1.0,<2", "1.5", true},       {">=1.0,<2", "2.0", false},
           {"!=1.5", "1.5.0", false},       {"==1!1.0", "1.0", false},
           {"<3.1", "3.0.dev0", false},     {"", "1.0a1", false},
           {">=1.0,!=1.5.*,<2", "1.5.3", false}, {"==2.0.*", "2", true},
           {"==2.0.0.*", "2.0", true},      {" >= 1.0 , < 2 ", "1.2", true},
       }) {
    SCOPED_TRACE(std::string(c.spec) + " contains " + std::string(c.version));
    auto set = SpecifierSet::parse(c.spec);
    ASSERT_TRUE(set) << set.error().to_string();
    EXPECT_EQ(set->contains(v(c.version)), c.want);
  }
}

TEST(PypiSpecifier, ContainsWithPrereleasesAllowed) {
  struct Case {
    std::string_view spec, version;
    bool want;
  };
  for (Case c : std::vector<Case>{{">=1.0", "2.0a1", true},
                                  {"<2.0", "2.0rc1", false},
                                  {"<2.0", "1.9rc1", true},
                                  {"==1.*", "1.0rc1", true},
                                  {"==1.0.*", "1.0.dev1", true},
                                  {"<3.1", "3.0.dev0", true},
                                  {"<3.1", "3.1.dev0", false},
                                  {"==1.0.*", "1rc1", false},
                                  {"~=1.0", "1.1b1", true}}) {
    SCOPED_TRACE(std::string(c.spec) + " contains " + std::string(c.version));
    auto set = SpecifierSet::parse(c.spec);
    ASSERT_TRUE(set);
    EXPECT_EQ(set->contains(v(c.version), Prereleases::Allow), c.want);
  }
}

TEST(PypiSpecifier, RejectsWithColumn) {
  struct Case {
    std::string_view in;
    size_t column;
  };
  for (Case c : {Case{"1.0", 1}, Case{">=", 3}, Case{">=1.0+local", 3}, Case{"~=1", 3},
                 Case{"==1.0a1.*", 3}, Case{">=1.0,<2x", 9}, Case{"=>1.0", 1}}) {
    SCOPED_TRACE(c.in);
    auto parsed = SpecifierSet::parse(c.in);
    ASSERT_FALSE(parsed) << parsed->to_string();
    EXPECT_EQ(parsed.error().code(), Errc::InvalidInput);
    EXPECT_NE(parsed.error().message().find("(column " + std::to_string(c.column) + ")"),
              std::string::npos)
        << parsed.error().message();
  }
}

TEST(PypiSpecifier, NormalFormRoundTrips) {
  for (std::string_view text : {">=1.0", "<2,>=1.0", "==1.4.*", "~=2.2", "===foobar", "!=1.0a1",
                                ">=1.0.post1,<2.dev0"}) {
    SCOPED_TRACE(text);
    auto set = SpecifierSet::parse(text);
    ASSERT_TRUE(set);
    auto again = SpecifierSet::parse(set->to_string());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->to_string(), set->to_string());
  }
  EXPECT_EQ(SpecifierSet::parse(" < 2 , >=1.0.0 ")->to_string(), "<2,>=1.0.0");
}

TEST(PypiSpecifier, FilterFallsBackToPrereleasesOnlyWithoutClauses) {
  const std::vector<Version> only_pre = {v("1.0a1"), v("2.0b1")};
  // packaging 21.3: an empty set takes pre-releases when nothing else is there...
  EXPECT_EQ(filter_versions(SpecifierSet(), only_pre).size(), 2u);
  // ...a set with clauses does not (unless a clause names a pre-release).
  EXPECT_TRUE(filter_versions(*SpecifierSet::parse(">=1.0"), only_pre).empty());
  EXPECT_EQ(filter_versions(*SpecifierSet::parse(">=1.0b1"), only_pre).size(), 1u);
  EXPECT_EQ(filter_versions(*SpecifierSet::parse(">=1.0"), only_pre, Prereleases::Allow).size(),
            1u);
  const std::vector<Version> mixed = {v("1.0a1"), v("2.0")};
  EXPECT_EQ(filter_versions(SpecifierSet(), mixed), std::vector<size_t>{1});
}

// The length bound holds for the normal form: "-N" becomes ".postN", so a version just under
// the bound could normalize past it and never be read back (fuzz target pypi_marker).
TEST(PypiVersionParse, TheNormalFormOfAVersionReadsBack) {
  std::string release = "1";
  for (int i = 0; i < 124; ++i) release += ".1";  // 249 characters
  ASSERT_TRUE(Version::parse(release + "-1"));  // 251 characters; ".post1" makes 255
  auto longer = Version::parse(release + "-1234");  // 254 characters; its normal form 258
  ASSERT_FALSE(longer);
  EXPECT_NE(longer.error().to_string().find("normal form is longer than"), std::string::npos);
  for (const std::string& text : {release + "-1", std::string("1.0-1"), std::string("1.0a")}) {
    auto v = Version::parse(text);
    ASSERT_TRUE(v) << text;
    auto again = Version::parse(v->to_string());
    ASSERT_TRUE(again) << v->to_string();
    EXPECT_EQ(again->to_string(), v->to_string());
  }
}

}  // namespace
}  // namespace envbuild::conda::pypi
