#include "conda/environment_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

Platform platform(std::string_view subdir) {
  return *Platform::parse(subdir);
}

Result<EnvironmentFile> parse(std::string_view text, std::string_view target = "linux-64") {
  EnvironmentFileOptions options;
  options.target = platform(target);
  return parse_environment_file(text, options);
}

TEST(EnvironmentFileParse, AllKeys) {
  auto env = parse(R"(name: demo
prefix: /opt/env
category: dev
channels:
  - conda-forge
  - nodefaults
  - https://localhost/t/${TOKEN}/stable
  - file:///srv/channel
dependencies:
  - python >=3.11
  - conda-forge::numpy=1.26
  - pip
  - pip:
    - requests==2.31
    - -r requirements.txt
variables:
  B: two
  A: "1"
platforms:
  - linux-64
  - osx-arm64
)");
  ASSERT_TRUE(env) << env.error().to_string();
  EXPECT_EQ(env->name, "demo");
  EXPECT_EQ(env->prefix, "/opt/env");
  EXPECT_EQ(env->category, "dev");
  EXPECT_TRUE(env->nodefaults);
  ASSERT_EQ(env->channels.size(), 3u);
  EXPECT_EQ(env->channels[1].kind(), UnresolvedChannel::Kind::Url);
  EXPECT_EQ(env->channels[2].kind(), UnresolvedChannel::Kind::Path);
  ASSERT_EQ(env->dependencies.size(), 3u);
  EXPECT_EQ(env->dependencies[1].to_string(), "conda-forge::numpy 1.26.*");
  ASSERT_EQ(env->pip.size(), 2u);
  EXPECT_EQ(env->pip[0].text, "requests==2.31");
  EXPECT_EQ(env->pip[0].line, 14);
  EXPECT_EQ(env->pip[1].text, "-r requirements.txt");
  ASSERT_EQ(env->variables.size(), 2u);
  EXPECT_EQ(env->variables[0], (std::pair<std::string, std::string>{"B", "two"}));
  ASSERT_EQ(env->platforms.size(), 2u);
  EXPECT_EQ(env->platforms[1].to_string(), "osx-arm64");
}

TEST(EnvironmentFileParse, SelectorsFollowTheTarget) {
  std::string_view text = R"(dependencies:
  - python
  - gcc  # [linux64]
  - clang  # [osx]
  - sel(win): pywin32
  - sel(unix): readline
  - pip:
    - psutil  # [not win]
)";
  auto on_linux = parse(text, "linux-64");
  ASSERT_TRUE(on_linux) << on_linux.error().to_string();
  ASSERT_EQ(on_linux->dependencies.size(), 3u);
  EXPECT_EQ(on_linux->dependencies[1].name(), "gcc");
  EXPECT_EQ(on_linux->dependencies[2].name(), "readline");
  EXPECT_EQ(on_linux->pip.size(), 1u);
  auto on_win = parse(text, "win-64");
  ASSERT_TRUE(on_win);
  ASSERT_EQ(on_win->dependencies.size(), 2u);
  EXPECT_EQ(on_win->dependencies[1].name(), "pywin32");
  EXPECT_TRUE(on_win->pip.empty());
}

struct BadCase {
  std::string_view text;
  std::string_view message;  // substring of the error
  std::string_view hint;
};

TEST(EnvironmentFileParse, ErrorsHaveLocationAndHint) {
  for (const BadCase& c : {
           BadCase{"name: x\ndependncies:\n  - numpy\n",
                   "environment.yml:2:1: unknown key 'dependncies'",
                   "did you mean 'dependencies'?"},
           BadCase{"dependencies:\n  - numpy\n  - conda:\n    - x\n",
                   "environment.yml:3:5: unknown dependencies subsection 'conda'",
                   "only 'pip:' subsections are supported (CEP 24)"},
           BadCase{"dependencies:\n  - python\n  - num$py\n",
                   "environment.yml:3:5: invalid match spec 'num$py'", ""},
           BadCase{"platforms: [linux-65]\n", "environment.yml:1:13: unknown platform 'linux-65'",
                   "did you mean 'linux-64'?"},
           BadCase{"dependencies:\n  - a: [\n", "environment.yml:", ""},
           BadCase{"dependencies: numpy\n", "environment.yml:1:15: 'dependencies' must be a list",
                   ""},
           BadCase{"dependencies:\n  - gcc  # [py>=38]\n", "environment.yml:2:13:", ""},
           BadCase{"variables: [a]\n", "'variables' must be a mapping", ""},
           BadCase{"", "empty environment file", ""},
       }) {
    SCOPED_TRACE(c.text);
    auto env = parse(c.text);
    ASSERT_FALSE(env);
    EXPECT_EQ(env.error().code(), Errc::InvalidInput);
    EXPECT_NE(env.error().message().find(c.message), std::string::npos) << env.error().message();
    EXPECT_EQ(env.error().hint(), c.hint);
  }
}

// The selector comment is found by hand, as the regex `\s#\s*\[([^\]]*)\]\s*$` found it.
TEST(EnvironmentFileParse, SelectorCommentsMatchTheirOldRegex) {
  struct Case {
    std::string_view line;
    bool kept_on_linux;
  };
  for (const Case& c : {
           Case{"  - zlib  # [linux]", true},
           Case{"  - zlib  # [win]", false},
           Case{"  - zlib # [win]  \t", false},
           Case{"  - zlib\t#\t[win]", false},
           Case{"  - zlib #[win]", false},
           Case{"  - zlib # [win] # [linux]", true},  // the last comment decides
           Case{"  - zlib # [linux] # [win]", false},
           Case{"  - zlib # [win] and more", true},  // not at the end of the line: no selector
           Case{"  - zlib # note [win]", true},      // words before '[': no selector
           Case{"  - zlib  # [linux and (x86_64 or aarch64)]", true},
           Case{"  - zlib  # [not (win or osx)]", true},
       }) {
    SCOPED_TRACE(c.line);
    auto env = parse("dependencies:\n" + std::string(c.line) + "\n");
    ASSERT_TRUE(env) << env.error().to_string();
    EXPECT_EQ(env->dependencies.size(), c.kept_on_linux ? 1u : 0u);
  }
}

// Issue 16, class 9: a 30 KB selector comment made std::regex recurse until the stack overflowed.
TEST(EnvironmentFileParse, HugeSelectorCommentsEndInAnAnswerOrAnError) {
  const std::string long_name(30'000, 'a');
  auto plain = parse("dependencies:\n  - zlib  # [" + long_name + "]\n");
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_TRUE(plain->dependencies.empty());  // an unknown name is false
  auto unclosed = parse("dependencies:\n  - zlib  # [linux " + std::string(30'000, ' ') + "\n");
  ASSERT_TRUE(unclosed) << unclosed.error().to_string();
  EXPECT_EQ(unclosed->dependencies.size(), 1u);  // no selector at all
  for (const std::string& nested : {std::string(15'000, '(') + "linux" + std::string(15'000, ')'),
                                    std::string(10'000, 'n') + "linux"}) {
    std::string deep = nested;
    if (deep.front() == 'n') {  // "not not not ... linux"
      deep.clear();
      for (int i = 0; i < 10'000; ++i) deep += "not ";
      deep += "linux";
    }
    auto env = parse("dependencies:\n  - zlib  # [" + deep + "]\n");
    ASSERT_FALSE(env);
    EXPECT_NE(env.error().message().find("selector nested too deeply"), std::string::npos)
        << env.error().message().substr(0, 200);
  }
}

// Issue 16, class 9: YAML nesting and size are bounded before yaml-cpp (which recurses once per
// level) sees the document; brackets in quotes, comments and block scalars do not count.
TEST(EnvironmentFileParse, DeepOrHugeYamlIsRefusedBeforeParsing) {
  struct Case {
    std::string text;
    std::string_view want;  // "" when it must parse
  };
  std::string staircase = "dependencies:\n";
  for (int i = 1; i <= 120; ++i) staircase += std::string(i, ' ') + "- \n";
  std::string dashes = "dependencies:\n  ";
  for (int i = 0; i < 15'000; ++i) dashes += "- ";
  dashes += "zlib\n";
  const std::string brackets(200, '[');
  const Case cases[] = {
      {"dependencies: " + std::string(100'000, '[') + "\n", "collections nested more than 100"},
      {"dependencies: [" + std::string(100'000, '{') + "\n", "environment.yml:1:"},
      {staircase, "collections nested more than 100"},
      {dashes, "environment.yml:2:"},
      {"dependencies: [zlib]\n" + std::string(65u << 20, '#'), "a YAML file may have"},
      {"name: '" + brackets + "'\ndependencies: [zlib]\n", ""},
      {"name: \"" + brackets + "\"\ndependencies: [zlib]\n", ""},
      {"name: x  # " + brackets + "\ndependencies: [zlib]\n", ""},
      {"variables:\n  SCRIPT: |\n    " + brackets + "\n    " + brackets +
           "\ndependencies: [zlib]\n",
       ""},
      {"dependencies:\n  - pip:\n    - numpy[extra," + std::string(150, '[') + "]\n", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text.substr(0, 60));
    auto env = parse(c.text);
    if (c.want.empty()) {
      EXPECT_TRUE(env) << env.error().to_string();
      continue;
    }
    ASSERT_FALSE(env);
    EXPECT_EQ(env.error().code(), Errc::InvalidInput);
    EXPECT_NE(env.error().message().find(c.want), std::string::npos)
        << env.error().message().substr(0, 300);
  }
}

TEST(EnvironmentFileParse, CondaLockKeysWarn) {
  auto env = parse("allow-pypi-requests: true\ndependencies: [python]\n");
  ASSERT_TRUE(env) << env.error().to_string();
  ASSERT_EQ(env->warnings.size(), 1u);
  EXPECT_EQ(env->warnings[0], "environment.yml:1:1: ignoring conda-lock key 'allow-pypi-requests'");
}

// Every environment file in tests/data parses, except the ones listed here, which
// must fail with the given message.
TEST(EnvironmentFileTestData, EveryFileParsesOrFailsAsExpected) {
  const std::map<std::string, std::string> expected_failures = {
      // conda's own negative fixture: misspelled top-level keys.
      {"conda-tests/invalid_keys.yml", "unknown key 'names'"},
  };
  auto root = testing::data_dir() / "envs";
  size_t parsed = 0, failed = 0, specs = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    auto ext = entry.path().extension();
    if (ext != ".yml" && ext != ".yaml") continue;
    std::string rel = std::filesystem::relative(entry.path(), root).generic_string();
    if (rel.starts_with("conda-meta/")) continue;
    SCOPED_TRACE(rel);
    for (std::string_view target : {"linux-64", "osx-arm64", "win-64"}) {
      auto env = read_environment_file(entry.path(), platform(target));
      auto want = expected_failures.find(rel);
      if (want == expected_failures.end()) {
        ASSERT_TRUE(env) << env.error().to_string();
        if (target == "linux-64") {
          ++parsed;
          specs += env->dependencies.size();
          for (const auto& spec : env->dependencies) {
            auto again = MatchSpec::parse(spec.to_string());
            ASSERT_TRUE(again) << spec.to_string();
            EXPECT_EQ(*again, spec) << spec.to_string();
          }
        }
      } else {
        ASSERT_FALSE(env);
        EXPECT_NE(env.error().message().find(want->second), std::string::npos)
            << env.error().to_string();
        if (target == "linux-64") ++failed;
      }
    }
  }
  EXPECT_GE(parsed, 75u);
  EXPECT_EQ(failed, expected_failures.size());
  EXPECT_GE(specs, 450u);
}

TEST(EnvironmentFileTestData, SpotChecks) {
  auto envs = testing::data_dir() / "envs";
  auto filtered = read_environment_file(
      envs / "conda-lock-tests/test-env-filter-platform__environment.yml", platform("osx-arm64"));
  ASSERT_TRUE(filtered) << filtered.error().to_string();
  ASSERT_EQ(filtered->dependencies.size(), 2u);
  EXPECT_EQ(filtered->dependencies[1].name(), "clang_osx-arm64");
  auto white = read_environment_file(envs / "mamba-tests/micromamba__env-extra-white-space.yaml",
                                     platform("linux-64"));
  ASSERT_TRUE(white);
  EXPECT_EQ(white->dependencies[2].to_string(), "scipy >=1.5.0,<2.0.0");
  // pip options, editable installs and -r lines are kept as pip requirements.
  auto pip = read_environment_file(envs / "conda-tests/advanced-pip__env_template.yml",
                                   platform("linux-64"));
  ASSERT_TRUE(pip) << pip.error().to_string();
  EXPECT_EQ(pip->pip.size(), 6u);
  auto vars = read_environment_file(envs / "rattler-tests/variables.environment.yaml",
                                    platform("linux-64"));
  ASSERT_TRUE(vars);
  ASSERT_EQ(vars->variables.size(), 1u);
  EXPECT_EQ(vars->variables[0].second, "My Value");
}

}  // namespace
}  // namespace envbuild::conda
