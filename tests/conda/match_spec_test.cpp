#include "conda/match_spec.hpp"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "conda/channel_spec.hpp"
#include "conda/platform.hpp"

namespace envbuild::conda {
namespace {

PackageRecord record(std::string_view name, std::string_view version, std::string_view build,
                     std::uint64_t build_number = 0, std::string_view channel = "conda-forge",
                     std::string_view subdir = "linux-64") {
  PackageRecord r;
  r.name = std::string(name);
  r.version = *Version::parse(version);
  r.build = std::string(build);
  r.build_number = build_number;
  r.channel = std::string(channel);
  r.subdir = std::string(subdir);
  return r;
}

struct Case {
  std::string_view in;
  std::string_view canonical;
  std::string_view libsolv;
};

TEST(MatchSpecParse, ValidRoundTrip) {
  std::vector<Case> cases = {
      {"numpy", "numpy", "numpy"},
      {"numpy 1.26.*", "numpy 1.26.*", "numpy 1.26.*"},
      {"numpy>=1.20,<2|>=2.1", "numpy >=1.20,<2|>=2.1", "numpy >=1.20,<2|>=2.1"},
      {"numpy=1.26", "numpy 1.26.*", "numpy 1.26.*"},
      {"numpy==1.26.4", "numpy ==1.26.4", "numpy ==1.26.4"},
      {"pytorch=2.1=*cuda*", "pytorch ==2.1 *cuda*", "pytorch ==2.1 *cuda*"},
      {"conda-forge::numpy", "conda-forge::numpy", "numpy"},
      {"conda-forge/linux-64::numpy", "conda-forge/linux-64::numpy", "numpy"},
      {"numpy[version='>=1.20',build=py*,build_number=2]", "numpy >=1.20 py*[build_number=2]",
       "numpy >=1.20 py*"},
      {"python_abi 3.11.* *_cp311", "python_abi 3.11.* *_cp311", "python_abi 3.11.* *_cp311"},
      {"__cuda>=12", "__cuda >=12", "__cuda >=12"},
      {"pytorch-cuda=11.8", "pytorch-cuda 11.8.*", "pytorch-cuda 11.8.*"},
      {"numpy >=1.20", "numpy >=1.20", "numpy >=1.20"},
      {"numpy 1.26.4 py311h_0", "numpy ==1.26.4 py311h_0", "numpy ==1.26.4 py311h_0"},
      {"numpy=1.26.4=py311h_0", "numpy ==1.26.4 py311h_0", "numpy ==1.26.4 py311h_0"},
      {"numpy==1.26.4=py311h_0", "numpy ==1.26.4 py311h_0", "numpy ==1.26.4 py311h_0"},
      {"jaxlib>=0.4.31=cuda12*", "jaxlib >=0.4.31 cuda12*", "jaxlib >=0.4.31 cuda12*"},
      {"py*", "py*", "py*"},
      {"scipy   >=    1.5.0,  < 2.0.0", "scipy >=1.5.0,<2.0.0", "scipy >=1.5.0,<2.0.0"},
      {"python >= 3.8, < 3.9", "python >=3.8,<3.9", "python >=3.8,<3.9"},
      {"PySide6 ==6.11.1", "pyside6 ==6.11.1", "pyside6 ==6.11.1"},
      {"numpy * py311*", "numpy * py311*", "numpy * py311*"},
      {"defaults::libgomp", "defaults::libgomp", "libgomp"},
      {"dask-cuda==26.10.*,>=0.0.0a0", "dask-cuda 26.10.*,>=0.0.0a0",
       "dask-cuda 26.10.*,>=0.0.0a0"},
      {"numpy[md5=0123456789abcdef0123456789abcdef]", "numpy[md5=0123456789abcdef0123456789abcdef]",
       "numpy"},
      {"numpy[subdir=linux-64, build_number='>=3']", "numpy[subdir=linux-64,build_number='>=3']",
       "numpy"},
      {"https://conda.anaconda.org/conda-forge::zlib",
       "https://conda.anaconda.org/conda-forge::zlib", "zlib"},
      {"numpy[channel=conda-forge]", "conda-forge::numpy", "numpy"},
      {"python 3.9", "python ==3.9", "python ==3.9"},
      // A path channel ending in ':' (found by the match_spec fuzz target).
      {"../:/::p", "../:::p", "p"},
      // A name channel ending in two subdirs: the last is the spec's subdir, the first stays in
      // the name (fuzz finding: the name was parsed again and lost its own subdir too).
      {"x//osx-64//osx-64/::r", "x//osx-64/osx-64::r", "r"},
      {"x/linux-64/linux-64::r", "x/linux-64/linux-64::r", "r"},
      {"r[channel=x/linux-64/linux-64]", "x/linux-64/linux-64::r", "r"},
      // A channel printed with '[' goes in the brackets (before "::" it read as their start).
      {"r[channel=\"x[linux-64,osx-64]\"]", "r[channel='x[linux-64,osx-64]']", "r"},
      {"r[channel='https://h/c[linux-64]']", "r[channel='https://h/c[linux-64]']", "r"},
      {"r[channel=/a[b]", "r[channel='/a[b']", "r"},
      {"r[channel='https://h/c[linux-64]',subdir=osx-64]",
       "r[channel='https://h/c[linux-64]',subdir=osx-64]", "r"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto spec = MatchSpec::parse(c.in);
    ASSERT_TRUE(spec) << spec.error().to_string();
    EXPECT_EQ(spec->to_string(), c.canonical);
    EXPECT_EQ(spec->to_libsolv_string(), c.libsolv);
    auto again = MatchSpec::parse(spec->to_string());
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(*again, *spec) << again->to_string();
  }
}

TEST(MatchSpecParse, Fields) {
  auto spec = MatchSpec::parse("conda-forge/linux-64::numpy[version='>=1.20',build=py*]");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->name(), "numpy");
  ASSERT_TRUE(spec->channel());
  EXPECT_EQ(spec->channel()->location(), "conda-forge");
  EXPECT_EQ(spec->subdir(), "linux-64");
  EXPECT_EQ(spec->build(), "py*");
  EXPECT_TRUE(spec->has_extra_constraints());
  auto cuda = MatchSpec::parse("__cuda>=12");
  ASSERT_TRUE(cuda);
  EXPECT_TRUE(cuda->is_virtual());
  EXPECT_FALSE(cuda->has_extra_constraints());
}

TEST(MatchSpecParse, InvalidPointsAtCharacter) {
  struct Bad {
    std::string_view in;
    size_t column;
  };
  for (Bad c :
       {Bad{"", 0}, Bad{">=1.2", 1}, Bad{"numpy>=1.2,<", 13}, Bad{"num$py", 4},
        Bad{"numpy[versoin='1']", 7}, Bad{"numpy[build=py*", 16}, Bad{"numpy 1.0 py_0 extra", 16},
        Bad{"numpy >=1..2", 11}, Bad{"numpy[build_number=x]", 20}, Bad{"numpy[md5=xyz]", 11},
        Bad{"numpy[version=1]x", 17}, Bad{"numpy >=1.0 py=0", 15},
        // Fuzz finding: a quoted build with bytes that cannot be printed back bare.
        Bad{"numpy[build=\"py:0\"]", 16}, Bad{"numpy 1.0 py\"0", 13},
        Bad{"numpy[fn=\"a\x01b\"]", 12}, Bad{"numpy[fn=\"a'b\"]", 12},
        // Fuzz finding: an input that echoes " (column " inside the inner error.
        Bad{": (column ::/::r-=i", 0}}) {
    SCOPED_TRACE(c.in);
    auto spec = MatchSpec::parse(c.in);
    ASSERT_FALSE(spec) << spec->to_string();
    EXPECT_EQ(spec.error().code(), Errc::InvalidInput);
    if (c.column == 0) continue;
    EXPECT_NE(spec.error().message().find("'" + std::string(c.in) + "'"), std::string::npos)
        << spec.error().message();
    EXPECT_NE(spec.error().message().find("(column " + std::to_string(c.column) + ")"),
              std::string::npos)
        << spec.error().message();
  }
  auto typo = MatchSpec::parse("numpy[versoin='1']");
  ASSERT_FALSE(typo);
  EXPECT_EQ(typo.error().hint(), "did you mean 'version'?");
}

TEST(MatchSpecMatches, Records) {
  auto numpy = record("numpy", "1.26.4", "py311h64a7726_0", 0);
  struct M {
    std::string_view spec;
    bool want;
  };
  for (M m : {M{"numpy", true}, M{"numpy 1.26.*", true}, M{"numpy=1.26", true},
              M{"numpy=1.2", false}, M{"numpy==1.26.4", true}, M{"numpy>=1.20,<2|>=2.1", true},
              M{"numpy>=2|<1", false}, M{"numpy 1.26.4 py311h64a7726_0", true},
              M{"numpy 1.26.4 py310*", false}, M{"numpy * py311*", true}, M{"num*", true},
              M{"scipy", false}, M{"conda-forge::numpy", true}, M{"defaults::numpy", false},
              M{"conda-forge/linux-64::numpy", true}, M{"conda-forge/osx-64::numpy", false},
              M{"numpy[build_number=0]", true}, M{"numpy[build_number='>=1']", false},
              M{"NumPy", true}}) {
    SCOPED_TRACE(m.spec);
    auto spec = MatchSpec::parse(m.spec);
    ASSERT_TRUE(spec) << spec.error().to_string();
    EXPECT_EQ(spec->matches(numpy), m.want);
  }
  auto url_channel =
      record("zlib", "1.3", "h0", 0, "https://conda.anaconda.org/conda-forge/linux-64");
  EXPECT_TRUE(MatchSpec::parse("conda-forge::zlib")->matches(url_channel));
  EXPECT_TRUE(
      MatchSpec::parse("https://conda.anaconda.org/conda-forge::zlib")->matches(url_channel));
  EXPECT_FALSE(MatchSpec::parse("forge::zlib")->matches(url_channel));
  auto cuda = record("__cuda", "12.4", "0", 0, "@", "");
  EXPECT_TRUE(MatchSpec::parse("__cuda>=12")->matches(cuda));
  EXPECT_FALSE(MatchSpec::parse("__cuda>=12.5")->matches(cuda));
  auto abi = record("python_abi", "3.11", "4_cp311");
  EXPECT_TRUE(MatchSpec::parse("python_abi 3.11.* *_cp311")->matches(abi));
  EXPECT_FALSE(MatchSpec::parse("python_abi 3.11.* *_cp312")->matches(abi));
}

TEST(BuildNumberSpecParse, Table) {
  for (auto [in, out] : std::vector<std::pair<std::string_view, std::string_view>>{
           {"2", "2"}, {"==2", "2"}, {">=2", ">=2"}, {"<3", "<3"}, {"!=1", "!=1"}}) {
    auto spec = BuildNumberSpec::parse(in);
    ASSERT_TRUE(spec) << in;
    EXPECT_EQ(spec->to_string(), out);
  }
  EXPECT_FALSE(BuildNumberSpec::parse("x"));
  EXPECT_FALSE(BuildNumberSpec::parse(">="));
  EXPECT_TRUE(BuildNumberSpec::parse(">=2")->matches(3));
  EXPECT_FALSE(BuildNumberSpec::parse(">=2")->matches(1));
}

TEST(UnresolvedChannelParse, Table) {
  struct C {
    std::string_view in;
    UnresolvedChannel::Kind kind;
    std::string_view location;
    std::vector<std::string> platforms;
    std::string_view short_name;
  };
  using K = UnresolvedChannel::Kind;
  for (const C& c : std::vector<C>{
           {"conda-forge", K::Name, "conda-forge", {}, "conda-forge"},
           {"conda-forge/linux-64", K::Name, "conda-forge", {"linux-64"}, "conda-forge"},
           {"pkgs/main", K::Name, "pkgs/main", {}, "pkgs/main"},
           {"https://repo.mamba.pm/conda-forge/",
            K::Url,
            "https://repo.mamba.pm/conda-forge",
            {},
            "conda-forge"},
           {"https://localhost/t/${CONDA_TOKEN}/stable",
            K::Url,
            "https://localhost/t/${CONDA_TOKEN}/stable",
            {},
            "stable"},
           {"file:///srv/channel", K::Path, "file:///srv/channel", {}, "channel"},
           {"/srv/channel", K::Path, "/srv/channel", {}, "channel"},
           {"./local", K::Path, "./local", {}, "local"},
           {"conda-forge[linux-64,noarch]",
            K::Name,
            "conda-forge",
            {"linux-64", "noarch"},
            "conda-forge"},
           // Trailing slashes go only while the kind stays (fuzz findings: "~///", "C:/").
           {"~///", K::Path, "~/", {}, ""},
           {"C:/", K::Path, "C:/", {}, ""},
           {"x:///", K::Url, "x://", {}, ""},
           // The name keeps no trailing slash once the subdir is split off.
           {"x//linux-64//", K::Name, "x", {"linux-64"}, "x"},
       }) {
    SCOPED_TRACE(c.in);
    auto channel = UnresolvedChannel::parse(c.in);
    ASSERT_TRUE(channel) << channel.error().to_string();
    EXPECT_EQ(channel->kind(), c.kind);
    EXPECT_EQ(channel->location(), c.location);
    EXPECT_EQ(channel->platforms(), c.platforms);
    EXPECT_EQ(channel->short_name(), c.short_name);
    auto again = UnresolvedChannel::parse(channel->to_string());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *channel);
  }
  for (std::string_view bad : {"", "conda forge", "conda-forge[linux-65]", "x]", "]/", "a:b", "x$y",
                               "../x]//", "conda\x01forge"}) {
    EXPECT_FALSE(UnresolvedChannel::parse(bad)) << bad;
  }
}

TEST(PlatformParse, KnownAndUnknown) {
  for (auto name : Platform::known()) {
    auto p = Platform::parse(name);
    ASSERT_TRUE(p) << name;
    EXPECT_EQ(p->to_string(), name);
  }
  auto bad = Platform::parse("linux64");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().hint(), "did you mean 'linux-64'?");
  auto sorted = Platform::known();
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
}

TEST(PlatformSelector, Evaluate) {
  auto linux64 = *Platform::parse("linux-64");
  auto aarch64 = *Platform::parse("linux-aarch64");
  auto osx_arm = *Platform::parse("osx-arm64");
  auto win = *Platform::parse("win-64");
  struct S {
    std::string_view expr;
    bool l64, la, oa, w;
  };
  for (S s : {S{"linux", true, true, false, false}, S{"unix", true, true, true, false},
              S{"win", false, false, false, true}, S{"linux64", true, false, false, false},
              S{"arm64", false, false, true, false}, S{"aarch64", false, true, false, false},
              S{"osx and arm64", false, false, true, false}, S{"not win", true, true, true, false},
              S{"x86_64", true, false, false, true}, S{"linux-64", true, false, false, false},
              S{"(linux or osx) and not aarch64", true, false, true, false},
              S{"osx and arm64 or aarch64", false, true, true, false},
              S{"osx64", false, false, false, false}}) {
    SCOPED_TRACE(s.expr);
    EXPECT_EQ(*evaluate_selector(s.expr, linux64), s.l64);
    EXPECT_EQ(*evaluate_selector(s.expr, aarch64), s.la);
    EXPECT_EQ(*evaluate_selector(s.expr, osx_arm), s.oa);
    EXPECT_EQ(*evaluate_selector(s.expr, win), s.w);
  }
  EXPECT_FALSE(evaluate_selector("py>=38", linux64));
  EXPECT_FALSE(evaluate_selector("linux and", linux64));
  // Nesting is bounded (the parser recurses per level): 32 levels evaluate, more are refused.
  EXPECT_TRUE(*evaluate_selector(std::string(31, '(') + "linux" + std::string(31, ')'), linux64));
  auto deep = evaluate_selector(std::string(100, '(') + "linux" + std::string(100, ')'), linux64);
  ASSERT_FALSE(deep);
  EXPECT_NE(deep.error().to_string().find("selector nested too deeply"), std::string::npos);
}

}  // namespace
}  // namespace envbuild::conda
