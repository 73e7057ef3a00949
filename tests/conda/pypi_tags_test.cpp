// Wheel file names, target tags and the pip: section. Tag ranks come from pip's vendored
// packaging.tags (cpython_tags + compatible_tags for (3, 11) and the same platform list).

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "conda/pypi/pip_section.hpp"
#include "conda/pypi/tags.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda::pypi {
namespace {

PythonTarget target(std::string_view python, std::string_view subdir, std::string_view glibc) {
  auto t = PythonTarget::make(python, "h955ad1f_0_cpython", subdir, glibc);
  EXPECT_TRUE(t) << t.error().to_string();
  return *t;
}

TEST(WheelFilenameParse, ReadsNameVersionBuildAndTags) {
  auto w = WheelFilename::parse("Foo_Bar-1.0.post1-2abc-py2.py3-none-any.whl");
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->name, "Foo_Bar");
  EXPECT_EQ(w->version.to_string(), "1.0.post1");
  ASSERT_TRUE(w->build);
  EXPECT_EQ(w->build->first, 2u);
  EXPECT_EQ(w->build->second, "abc");
  ASSERT_EQ(w->tags.size(), 2u);
  EXPECT_EQ(w->tags[0].to_string(), "py2-none-any");
  EXPECT_EQ(w->tags[1].to_string(), "py3-none-any");
  auto platform = WheelFilename::parse(
      "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
  ASSERT_TRUE(platform);
  EXPECT_EQ(platform->tags.size(), 2u);
}

TEST(WheelFilenameParse, RejectsNonWheels) {
  for (std::string_view name : {"foo-1.0.tar.gz", "foo-1.0-py3-none.whl", "foo-1.0-x-py3-none-any.whl",
                                "-1.0-py3-none-any.whl", "foo-1.0-a-b-c-d-e.whl",
                                "foo-bad!version-py3-none-any.whl", "foo-1.0-py3-none-an/y.whl"}) {
    SCOPED_TRACE(name);
    auto w = WheelFilename::parse(name);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code(), Errc::InvalidInput);
    EXPECT_NE(w.error().message().find(std::string(name)), std::string::npos);
  }
}

TEST(SdistVersion, SplitsOnTheProjectName) {
  EXPECT_EQ(sdist_version("foo-bar-1.2.tar.gz", "foo-bar")->to_string(), "1.2");
  EXPECT_EQ(sdist_version("Foo_Bar-2.0rc1.zip", "foo-bar")->to_string(), "2.0rc1");
  EXPECT_FALSE(sdist_version("foo-bar-1.2.tar.gz", "foo"));
  EXPECT_FALSE(sdist_version("foo-1.0-py3-none-any.whl", "foo"));
}

TEST(SupportedTags, RanksAsPackaging) {
  SupportedTags tags(target("3.11.9", "linux-64", "2.17"));
  EXPECT_EQ(tags.tags().size(), 439u);
  EXPECT_EQ(tags.tags().front().to_string(), "cp311-cp311-manylinux_2_17_x86_64");
  EXPECT_EQ(tags.tags().back().to_string(), "py30-none-any");
  struct Case {
    std::string_view file;
    std::optional<size_t> rank;
  };
  for (Case c : std::vector<Case>{
           {"a-1-cp311-cp311-manylinux_2_17_x86_64.whl", 0},
           {"a-1-cp311-abi3-linux_x86_64.whl", 33},
           {"a-1-cp37-abi3-manylinux1_x86_64.whl", 117},
           {"a-1-py3-none-any.whl", 427},
           {"a-1-py2.py3-none-any.whl", 427},
           {"a-1-py2-none-any.whl", std::nullopt},
           {"a-1-cp311-none-any.whl", 425},
           {"a-1-py311-none-manylinux1_x86_64.whl", 219},
           {"a-1-cp310-cp310-manylinux1_x86_64.whl", std::nullopt},
           {"a-1-cp311-cp311-manylinux_2_28_x86_64.whl", std::nullopt},
           {"a-1-cp311-cp311-manylinux_2_17_aarch64.whl", std::nullopt},
           {"a-1-cp311-cp311-musllinux_1_1_x86_64.whl", std::nullopt},
           {"a-1-cp311-cp311-win_amd64.whl", std::nullopt},
       }) {
    SCOPED_TRACE(c.file);
    auto w = WheelFilename::parse(c.file);
    ASSERT_TRUE(w);
    EXPECT_EQ(tags.rank(*w), c.rank);
  }
}

TEST(SupportedTags, FollowTheTargetNotTheHost) {
  // Given an aarch64 target with glibc 2.28 and python 3.10, wheels for this build machine
  // (x86_64, 3.11) do not fit and the target's do.
  SupportedTags tags(target("3.10.14", "linux-aarch64", "2.28"));
  EXPECT_TRUE(tags.rank(*WheelFilename::parse("a-1-cp310-cp310-manylinux_2_28_aarch64.whl")));
  EXPECT_TRUE(tags.rank(*WheelFilename::parse("a-1-cp310-cp310-manylinux2014_aarch64.whl")));
  EXPECT_FALSE(tags.rank(*WheelFilename::parse("a-1-cp310-cp310-manylinux2010_aarch64.whl")));
  EXPECT_FALSE(tags.rank(*WheelFilename::parse("a-1-cp311-cp311-manylinux2014_x86_64.whl")));
  // Without __glibc only linux_<arch> and pure wheels.
  SupportedTags no_glibc(target("3.11.1", "linux-64", ""));
  EXPECT_FALSE(no_glibc.rank(*WheelFilename::parse("a-1-cp311-cp311-manylinux1_x86_64.whl")));
  EXPECT_TRUE(no_glibc.rank(*WheelFilename::parse("a-1-py3-none-any.whl")));
}

TEST(MarkerEnvironmentOfTarget, DescribesTheTarget) {
  MarkerEnvironment env = marker_environment(target("3.10.14", "linux-aarch64", "2.28"));
  EXPECT_EQ(env.python_version, "3.10");
  EXPECT_EQ(env.python_full_version, "3.10.14");
  EXPECT_EQ(env.platform_machine, "aarch64");
  EXPECT_EQ(env.sys_platform, "linux");
  EXPECT_EQ(env.os_name, "posix");
  EXPECT_EQ(marker_environment(target("3.12.0", "osx-arm64", "")).sys_platform, "darwin");
  EXPECT_EQ(marker_environment(target("3.12.0", "win-64", "")).os_name, "nt");
  EXPECT_EQ(manylinux_glibc("manylinux2014_x86_64"), (std::pair{2, 17}));
  EXPECT_EQ(manylinux_glibc("manylinux_2_28_aarch64"), (std::pair{2, 28}));
  EXPECT_FALSE(manylinux_glibc("linux_x86_64"));
  EXPECT_FALSE(PythonTarget::make("3", "", "linux-64", "2.17"));
}

class PipSectionTest : public testing::TempDirTest {};

std::vector<PipRequirement> lines(std::initializer_list<std::string> texts) {
  std::vector<PipRequirement> out;
  int n = 10;
  for (const auto& t : texts) out.push_back({t, n++});
  return out;
}

TEST_F(PipSectionTest, ReadsRequirementsAndOptions) {
  testing::write_text(dir_ / "reqs" / "base.txt",
                      "# base\nrich==13.7.1  # pinned\n-r more.txt\nclick \\\n  >=8\n");
  testing::write_text(dir_ / "reqs" / "more.txt", "attrs\n");
  PipSectionContext context;
  context.base_dir = dir_;
  auto section = parse_pip_section(
      lines({"--index-url https://pypi.example/simple", "--extra-index-url=https://x/simple",
             "-f ./wheels", "--pre", "--no-deps", "-r reqs/base.txt",
             "requests[socks]>=2; python_version >= \"3.8\"", "./wheels/demo-1.0-py3-none-any.whl",
             "pkg @ https://h/pkg-2.0-py3-none-any.whl", "-e ./src", "./project", "git+https://h/r.git",
             "six==1.16.0 --hash=sha256:" + std::string(64, 'a')}),
      context);
  ASSERT_TRUE(section) << section.error().to_string();
  const PipOptions& o = section->options;
  EXPECT_EQ(o.index_url, "https://pypi.example/simple");
  EXPECT_EQ(o.extra_index_urls, std::vector<std::string>{"https://x/simple"});
  EXPECT_EQ(o.find_links, std::vector<std::string>{(dir_ / "wheels").string()});
  EXPECT_TRUE(o.pre);
  EXPECT_TRUE(o.no_deps);
  std::vector<std::string> got;
  for (const auto& e : section->entries)
    got.push_back(std::to_string(static_cast<int>(e.kind)) + " " +
                  (e.kind == PipEntry::Kind::Requirement ? e.requirement.to_string() : e.location) +
                  " @" + e.origin);
  std::vector<std::string> want = {
      "0 rich==13.7.1 @reqs/base.txt:2",
      "0 attrs @more.txt:1",
      "0 click>=8 @reqs/base.txt:4",
      "0 requests[socks]>=2; python_version >= \"3.8\" @environment.yml:16",
      "0 demo @ file://" + (dir_ / "wheels/demo-1.0-py3-none-any.whl").string() +
          " @environment.yml:17",
      "0 pkg @ https://h/pkg-2.0-py3-none-any.whl @environment.yml:18",
      "2 " + (dir_ / "src").string() + " @environment.yml:19",
      "1 " + (dir_ / "project").string() + " @environment.yml:20",
      "3 git+https://h/r.git @environment.yml:21",
      "0 six==1.16.0 @environment.yml:22",
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(section->entries.back().hashes, std::vector<std::string>{std::string(64, 'a')});
}

TEST_F(PipSectionTest, ErrorsNameTheLine) {
  PipSectionContext context;
  context.base_dir = dir_;
  struct Case {
    std::string line;
    std::string_view want;
  };
  for (const Case& c : std::vector<Case>{
           {"--index-ur https://x", "environment.yml:10: '--index-ur https://x': unknown pip option"},
           {"--index-url", "--index-url needs a value"},
           {"--no-binary :all:", "never runs"},
           {"requests>=", "environment.yml:10: invalid requirement"},
           {"-r missing.txt", "environment.yml:10: -r missing.txt"},
           {"-r https://h/r.txt", "by URL"},
           {"six --hash=md5:abc", "unsupported option"},
       }) {
    SCOPED_TRACE(c.line);
    auto section = parse_pip_section(lines({c.line}), context);
    ASSERT_FALSE(section);
    EXPECT_NE(section.error().to_string().find(c.want), std::string::npos)
        << section.error().to_string();
  }
  auto typo = parse_pip_section(lines({"--extra-index-ur x"}), context);
  ASSERT_FALSE(typo);
  EXPECT_EQ(typo.error().hint(), "did you mean '--extra-index-url'?");
}

TEST_F(PipSectionTest, IncludesAreBounded) {
  // Given a requirements file that includes itself, expect an error, not a hang.
  testing::write_text(dir_ / "loop.txt", "-r loop.txt\n");
  PipSectionContext context;
  context.base_dir = dir_;
  auto section = parse_pip_section(lines({"-r loop.txt"}), context);
  ASSERT_FALSE(section);
  EXPECT_NE(section.error().to_string().find("nest deeper than 8"), std::string::npos);
}

}  // namespace
}  // namespace envbuild::conda::pypi
