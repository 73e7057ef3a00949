// The envbuild command line as users meet it (issue 19): usage errors exit 2 with a "did you
// mean", every command that solves takes the same options, one cache root for every command,
// ./environment.yml by default, command-line specs in the file syntax, ${VAR} in channels.

#include <sys/stat.h>

#include <regex>
#include <set>

#include "tests/testing/channels.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

std::string envbuild() {
  return shell_quote((testing::binary_dir() / "envbuild").string());
}

class CliTest : public testing::TempDirTest {
 protected:
  // `envbuild ARGS` run in dir_, stdout and stderr together.
  testing::CommandResult run(const std::string& args, const std::string& env = "") {
    return run_command("cd " + shell_quote(dir_.string()) + " && " + env + " " + envbuild() + " " +
                       args + " 2>&1");
  }
  std::string cache() { return shell_quote((dir_ / "cache").string()); }
};

// Issue 19, point 6: usage errors are invalid input (2), never CLI11's own codes (106, 109).
TEST_F(CliTest, UsageErrorsExitTwoWithDidYouMean) {
  struct Case {
    std::string args;
    int code;
    std::string says;
  };
  const Case cases[] = {
      {"", 2, "Usage: envbuild"},
      {"bulid -t x", 2, "did you mean 'build'"},
      {"instal -p x", 2, "did you mean 'install'"},
      {"build -t x --outptu oci:x", 2, "did you mean '--output'"},
      {"solve --chanel x xz", 2, "did you mean '--channel'"},
      {"lock --virtual-packages __cuda=12", 2, "did you mean '--virtual-package'"},
      {"pkg", 2, "A subcommand is required"},
      {"pkg infoo x", 2, "did you mean 'info'"},
      {"install", 2, "--prefix DIR or -n NAME is required"},
      {"solve -c x --channel-priority sometimes xz", 2, "strict, flexible or disabled"},
      {"solve -c x 'xz[version=>=5'", 2, "xz[version=>=5"},
      {"solve -c x", 2, "no environment given"},
      {"--help", 0, "Subcommands:"},
      {"build --help", 0, "--virtual-package"},
      {"--version", 0, "envbuild "},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = run(c.args);
    EXPECT_EQ(r.exit_code, c.code) << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
  }
}

// Issue 19, point 6: hints name only flags that exist. Every --flag a hint or message in the
// builder, conda and oci sources names is an option of some envbuild command.
TEST_F(CliTest, FlagsNamedInMessagesExist) {
  std::set<std::string> known;
  std::string all_help = run("--help").output;
  for (const char* cmd : {"solve", "lock", "export", "install", "build", "push", "pull", "index",
                          "cache", "cache prune", "inspect", "pkg info", "pkg extract"})
    all_help += run(std::string(cmd) + " --help").output;
  std::regex flag(R"((--[a-z][a-z-]+))");
  for (std::sregex_iterator it(all_help.begin(), all_help.end(), flag), end; it != end; ++it)
    known.insert((*it)[1]);
  // Sentences in string literals (an option's own name alone is argv, maybe another program's).
  std::set<std::string> named;
  std::regex literal(R"re("([^"\n]* [^"\n]*)")re");
  for (const char* folder : {"builder", "conda", "oci"}) {
    for (const auto& entry : fs::recursive_directory_iterator(testing::source_dir() / folder)) {
      if (entry.path().extension() != ".cpp") continue;
      const std::string text = testing::read_text(entry.path());
      for (std::sregex_iterator it(text.begin(), text.end(), literal), end; it != end; ++it) {
        const std::string sentence = (*it)[1];
        for (std::sregex_iterator f(sentence.begin(), sentence.end(), flag); f != end; ++f) {
          const auto at = static_cast<size_t>(f->position(0));
          if (at >= 4 && sentence.compare(at - 4, 4, "pip ") == 0) continue;  // pip's own
          named.insert((*f)[1]);
        }
      }
    }
  }
  // Issue 20 is under way: conda/lockfile_pixi.cpp's hint names the flag that the pixi.lock
  // input of install and build will take. Remove it from here when a command has it.
  const std::set<std::string> pending = {};
  // Other programs' options, named as theirs: the pip options a pip: section's lines may carry
  // (conda/pypi/pip_section.cpp reads them) and `python -m build --wheel`.
  const std::set<std::string> others = {
      "--index-url",   "--extra-index-url", "--find-links",   "--no-index", "--pre",
      "--no-deps",     "--no-binary",       "--only-binary",  "--hash",     "--trusted-host",
      "--wheel"};
  EXPECT_GT(named.size(), 10u);
  for (const auto& f : named)
    EXPECT_TRUE(known.count(f) || pending.count(f) || others.count(f))
        << f << " is named but no option";
}

// Issue 19, point 3: solve, lock, install and build take one option set; build's hint for a
// virtual package names --virtual-package, which it takes.
TEST_F(CliTest, EveryCommandThatSolvesTakesTheSameOptions) {
  const fs::path channel = testing::conda_forge_subset_channel(dir_);
  for (const char* cmd : {"solve", "lock", "install", "build"}) {
    SCOPED_TRACE(cmd);
    const std::string help = run(std::string(cmd) + " --help").output;
    for (const char* option :
         {"--file", "--platform", "--channel", "--virtual-package", "--channel-alias",
          "--channel-priority", "--offline", "--no-solv-cache", "--cache-dir"})
      EXPECT_NE(help.find(option), std::string::npos) << option;
  }
  const std::string base = "-c " + shell_quote(channel.string()) + " --cache-dir " + cache() +
                           " xz " + shell_quote("__cuda >=12") + " ";
  struct Case {
    std::string args;
  };
  const Case cases[] = {
      {"solve " + base},
      {"lock -o lock.yml " + base},
      {"install -q -p " + shell_quote((dir_ / "p").string()) + " " + base},
      {"build -t t --plan " + base},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto without = run(c.args);
    EXPECT_EQ(without.exit_code, 4) << without.output;
    EXPECT_NE(without.output.find("--virtual-package __cuda"), std::string::npos) << without.output;
    auto with = run(c.args + "--virtual-package __cuda=12.4 --channel-priority flexible");
    EXPECT_EQ(with.exit_code, 0) << with.output;
  }
  EXPECT_TRUE(fs::exists(dir_ / "p/bin/xz"));
}

// Issue 19, point 4: one cache root, one meaning: what install fetched, solve --offline finds
// under the same --cache-dir or ENVBUILD_CACHE; a cache others can write to is refused.
TEST_F(CliTest, OneCacheRootForEveryCommand) {
  testing::conda_forge_subset_channel(dir_);
  // A channel over HTTP: a local one is read in place, never cached.
  testing::RepoServer server(dir_, dir_);
  ASSERT_NE(server.port(), 0);
  const std::string c = "-c " + server.url() + "/conda-forge-subset ";
  auto install = run("install -q -p " + shell_quote((dir_ / "p").string()) + " --cache-dir " +
                     cache() + " " + c + "xz");
  ASSERT_EQ(install.exit_code, 0) << install.output;
  EXPECT_TRUE(fs::is_directory(dir_ / "cache/repodata"));
  EXPECT_TRUE(fs::is_directory(dir_ / "cache/pkgs"));
  auto offline = run("solve --offline --cache-dir " + cache() + " " + c + "xz");
  EXPECT_EQ(offline.exit_code, 0) << offline.output;
  auto by_env = run("lock --offline -o lock.yml " + c + "xz", "ENVBUILD_CACHE=" + cache());
  EXPECT_EQ(by_env.exit_code, 0) << by_env.output;
  auto empty =
      run("solve --offline --cache-dir " + shell_quote((dir_ / "other").string()) + " " + c + "xz");
  EXPECT_NE(empty.exit_code, 0) << empty.output;

  ASSERT_EQ(::chmod((dir_ / "cache").c_str(), 0777), 0);
  auto shared = run("solve --offline --cache-dir " + cache() + " " + c + "xz");
  EXPECT_EQ(shared.exit_code, 2) << shared.output;
  EXPECT_NE(shared.output.find("the envbuild cache"), std::string::npos) << shared.output;
}

// Issue 19, point 6: -f defaults to ./environment.yml; specs on the command line take the file
// syntax; ${VAR} in a channel is the variable's value.
TEST_F(CliTest, EnvironmentFileSpecsAndChannelVariables) {
  const fs::path channel = testing::conda_forge_subset_channel(dir_);
  write_text(dir_ / "environment.yml",
             "channels: [" + channel.string() + "]\ndependencies: [ncurses]\n");
  auto by_default = run("solve --cache-dir " + cache());
  ASSERT_EQ(by_default.exit_code, 0) << by_default.output;
  EXPECT_NE(by_default.output.find("ncurses"), std::string::npos) << by_default.output;

  const std::string c = "--cache-dir " + cache() + " -c " + shell_quote(channel.string()) + " ";
  for (const char* spec : {"xz[version='>=5']", "xz[build=h166bdaf_0]", "xz=5.2", "xz >=5,<6",
                           "conda-forge-subset::xz"}) {
    SCOPED_TRACE(spec);
    auto r = run("solve " + c + shell_quote(spec));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("h166bdaf_0"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("ncurses"), std::string::npos) << "the specs replace the file";
  }

  const std::string var_channel = "file://${ENVB_TEST_CHANNEL}";
  auto expanded = run("solve --cache-dir " + cache() + " -c " + shell_quote(var_channel) + " xz",
                      "ENVB_TEST_CHANNEL=" + shell_quote(channel.string()));
  EXPECT_EQ(expanded.exit_code, 0) << expanded.output;
  auto unset = run("solve --cache-dir " + cache() + " -c " + shell_quote(var_channel) + " xz");
  EXPECT_EQ(unset.exit_code, 2) << unset.output;
  EXPECT_NE(unset.output.find("${ENVB_TEST_CHANNEL} is not set"), std::string::npos)
      << unset.output;
}

// Issue 19, point 11: downloads show bytes, rate and ETA on a terminal (a status line redrawn in
// place), and plain lines, one per package, when stderr is not a terminal (CI logs).
TEST_F(CliTest, ProgressIsAStatusLineOnATerminalAndPlainLinesOtherwise) {
  ENVB_REQUIRE_TOOL("script");
  testing::conda_forge_subset_channel(dir_);
  testing::RepoServer server(dir_, dir_ / "server");
  ASSERT_NE(server.port(), 0);
  const std::string args = "install -c " + server.url() + "/conda-forge-subset xz --cache-dir ";
  auto plain = run(args + cache() + "-plain -p " + shell_quote((dir_ / "p1").string()));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("fetched 1/6 "), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("fetched 6/6 "), std::string::npos) << plain.output;
  EXPECT_EQ(plain.output.find('\r'), std::string::npos) << plain.output;

  // script(1) gives envbuild a terminal.
  const std::string command =
      envbuild() + " " + args + cache() + "-tty -p " + shell_quote((dir_ / "p2").string());
  auto tty = run_command("cd " + shell_quote(dir_.string()) + " && TERM=xterm script -qec " +
                         shell_quote(command) + " /dev/null");
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("\r\033[Kfetching 6 packages: "), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find("fetched 6/6 "), std::string::npos) << tty.output;
}

}  // namespace
}  // namespace envbuild::builder
