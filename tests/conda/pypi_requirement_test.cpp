// PEP 508 markers and requirements. Marker truth values come from pip's vendored packaging 21.3
// evaluated for the same environment (python 3.11.9, linux x86_64), except extras, which are
// compared by their PEP 685 normal form (packaging 22+).

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "conda/pypi/marker.hpp"
#include "conda/pypi/name.hpp"
#include "conda/pypi/requirement.hpp"

namespace envbuild::conda::pypi {
namespace {

MarkerEnvironment linux_311() {
  MarkerEnvironment env;
  env.python_version = "3.11";
  env.python_full_version = "3.11.9";
  env.implementation_version = "3.11.9";
  return env;
}

TEST(PypiMarker, EvaluatesAsPackaging) {
  struct Case {
    std::string_view marker;
    bool want;
  };
  for (Case c : std::vector<Case>{
           {R"(python_version >= "3.8")", true},
           {R"(python_version < "3.10")", false},
           {R"(python_version == "3.11" and sys_platform == "linux")", true},
           {R"(sys_platform == "win32" or os_name == "posix")", true},
           {R"(platform_machine in "x86_64 aarch64")", true},
           {R"(platform_machine not in "x86_64 aarch64")", false},
           {R"("linux" in sys_platform)", true},
           {R"(python_full_version >= "3.11.10")", false},
           {R"(python_version > "3.9" and (sys_platform == "darwin" or platform_machine == "x86_64"))",
            true},
           {R"(implementation_name == "pypy")", false},
           {R"(platform_release >= "5.0")", false},
           {R"(os.name == "posix")", true},
           {R"(python_version ~= "3.10")", true},
           {R"(python_version != "3.11.*")", false},
           {R"(python_version == "3.*")", true},
           {R"(sys_platform < "m")", true},
           {R"(sys_platform == 'linux' and python_version<'4')", true},
           {R"(os_name == "nt" or os_name == "posix" and python_version < "3")", false},
           {R"((os_name == "nt" or os_name == "posix") and python_version >= "3")", true},
       }) {
    SCOPED_TRACE(c.marker);
    auto marker = Marker::parse(c.marker);
    ASSERT_TRUE(marker) << marker.error().to_string();
    auto value = marker->evaluate(linux_311());
    ASSERT_TRUE(value) << value.error().to_string();
    EXPECT_EQ(*value, c.want);
    // The normal form means the same.
    auto again = Marker::parse(marker->to_string());
    ASSERT_TRUE(again) << marker->to_string();
    EXPECT_EQ(*again->evaluate(linux_311()), c.want);
    EXPECT_EQ(again->to_string(), marker->to_string());
  }
}

TEST(PypiMarker, ExtrasCompareNormalized) {
  auto marker = Marker::parse(R"(extra == "Test_X")");
  ASSERT_TRUE(marker);
  EXPECT_TRUE(*marker->evaluate(linux_311(), "test-x"));
  EXPECT_FALSE(*marker->evaluate(linux_311(), ""));
  EXPECT_TRUE(*marker->evaluate_any(linux_311(), {"other", "test.x"}));
  EXPECT_TRUE(marker->mentions_extra());
  EXPECT_FALSE(Marker::parse(R"(os_name == "posix")")->mentions_extra());
}

TEST(PypiMarker, TargetNotHostDecides) {
  // Given a linux-aarch64 target for python 3.9, the machine envbuild runs on does not matter.
  MarkerEnvironment env = linux_311();
  env.python_version = "3.9";
  env.python_full_version = env.implementation_version = "3.9.18";
  env.platform_machine = "aarch64";
  EXPECT_TRUE(*Marker::parse(R"(platform_machine == "aarch64" and python_version < "3.10")")
                   ->evaluate(env));
}

TEST(PypiMarker, RejectsWithColumnAndBounds) {
  struct Case {
    std::string_view in;
    size_t column;
  };
  for (Case c : std::vector<Case>{{R"(python_version >= )", 19},
                                  {R"(python_version >= "3.8)", 19},
                                  {R"(pyton_version >= "3.8")", 1},
                                  {R"(python_version => "3.8")", 16},
                                  {R"((os_name == "nt")", 17},
                                  {R"(os_name == "nt" and)", 20},
                                  {R"(os_name == "nt" xor os_name == "posix")", 17}}) {
    SCOPED_TRACE(c.in);
    auto parsed = Marker::parse(c.in);
    ASSERT_FALSE(parsed) << parsed->to_string();
    EXPECT_EQ(parsed.error().code(), Errc::InvalidInput);
    EXPECT_NE(parsed.error().message().find("(column " + std::to_string(c.column) + ")"),
              std::string::npos)
        << parsed.error().message();
  }
  // Deep nesting is refused, never a stack overflow.
  std::string deep = std::string(10000, '(') + R"(os_name == "nt")" + std::string(10000, ')');
  EXPECT_FALSE(Marker::parse(deep));
  std::string nested = std::string(32, '(') + R"(os_name == "nt")" + std::string(32, ')');
  EXPECT_TRUE(Marker::parse(nested));
  // A long flat chain is fine: it does not nest.
  std::string chain = R"(os_name == "nt")";
  for (int i = 0; i < 500; ++i) chain += R"( or os_name == "nt")";
  EXPECT_TRUE(Marker::parse(chain));
  EXPECT_FALSE(Marker::parse(std::string(kMaxMarkerLength + 1, ' ')));
  // Undefined comparisons are errors at evaluation.
  auto odd = Marker::parse(R"(os_name ~= "posix")");
  ASSERT_TRUE(odd);
  EXPECT_FALSE(odd->evaluate(linux_311()));
}

TEST(PypiName, NormalizesAsPep503) {
  EXPECT_EQ(normalize_name("Foo.Bar__baz"), "foo-bar-baz");
  EXPECT_EQ(normalize_name("friendly-bard"), "friendly-bard");
  EXPECT_EQ(normalize_name("FRIENDLY_._BARD"), "friendly-bard");
  EXPECT_EQ(wheel_name_part("Foo.Bar"), "foo_bar");
  EXPECT_TRUE(is_valid_name("a"));
  EXPECT_TRUE(is_valid_name("zope.interface"));
  EXPECT_FALSE(is_valid_name("-a"));
  EXPECT_FALSE(is_valid_name("a-"));
  EXPECT_FALSE(is_valid_name("a b"));
  EXPECT_FALSE(is_valid_name(""));
}

TEST(PypiRequirement, ParsesAndPrintsNormalForm) {
  struct Case {
    std::string_view in, normal;
  };
  for (Case c : std::vector<Case>{
           {"requests", "requests"},
           {"requests==2.31", "requests==2.31"},
           {"requests [socks, security] >= 2.8.1, == 2.8.*", "requests[security,socks]==2.8.*,>=2.8.1"},
           {"name (>=1.0,<2)", "name<2,>=1.0"},
           {"Name[Foo_Bar]", "Name[foo-bar]"},
           {R"(pywin32 >1.0 ; sys_platform == "win32")", R"(pywin32>1.0; sys_platform == "win32")"},
           {"pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee",
            "pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee"},
           {R"(pkg @ file:///tmp/pkg-1.0-py3-none-any.whl ; python_version >= "3")",
            R"(pkg @ file:///tmp/pkg-1.0-py3-none-any.whl ; python_version >= "3")"},
           {R"(a;python_version<"3")", R"(a; python_version < "3")"},
           {"a[]", "a"},
       }) {
    SCOPED_TRACE(c.in);
    auto r = Requirement::parse(c.in);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->to_string(), c.normal);
    auto again = Requirement::parse(r->to_string());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(*again, *r);
  }
  auto r = Requirement::parse("Foo.Bar[x] @ https://h/f.whl");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->key(), "foo-bar");
  EXPECT_EQ(r->url, "https://h/f.whl");
  EXPECT_EQ(r->extras, std::vector<std::string>{"x"});
}

TEST(PypiRequirement, RejectsWithColumn) {
  struct Case {
    std::string_view in;
    size_t column;
  };
  for (Case c : std::vector<Case>{{"", 1},
                                  {"-foo", 1},
                                  {"foo[bar", 8},
                                  {"foo >= ", 8},
                                  {"foo (>=1.0", 11},
                                  {"foo @ ", 7},
                                  {"foo==1.0; os_name =", 19},
                                  {"foo==1.0 bar", 9},
                                  {"foo\x01", 4}}) {
    SCOPED_TRACE(c.in);
    auto r = Requirement::parse(c.in);
    ASSERT_FALSE(r) << r->to_string();
    EXPECT_EQ(r.error().code(), Errc::InvalidInput);
    EXPECT_NE(r.error().message().find("(column " + std::to_string(c.column) + ")"),
              std::string::npos)
        << r.error().message();
  }
}

}  // namespace
}  // namespace envbuild::conda::pypi
