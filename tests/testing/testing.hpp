#pragma once

// Shared test helpers: a per-test scratch directory, the location of the test data (tests/data),
// and a way to run real tools (skopeo, umoci, cph, ...) with their output captured.

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace envbuild::testing {

/// The repository root (compiled in; ENVBUILD_SOURCE_DIR in the environment overrides).
std::filesystem::path source_dir();
/// Where `envbuild` and `envrun` were built (ENVBUILD_BIN_DIR overrides).
std::filesystem::path binary_dir();
/// tests/data in the repository: the real conda packages, repodata, environment and lock files
/// the tests read (tests/data/README.md says where each comes from and its license).
std::filesystem::path data_dir();
/// data_dir(), for tests written when the data could be missing; use data_dir().
/// TODO(#17): remove once no branch in flight calls it.
std::optional<std::filesystem::path> testdata_dir();

/// True when `tool` is on PATH.
bool have_tool(const std::string& tool);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
/// Runs `/bin/sh -c command`, capturing stdout+stderr.
CommandResult run_command(const std::string& command);
/// Quotes an argument for /bin/sh.
std::string shell_quote(const std::string& arg);
/// shell_quote() of a path, for the command lines tests build.
inline std::string q(const std::filesystem::path& path) {
  return shell_quote(path.string());
}

/// A fixture with a fresh scratch directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::filesystem::path dir_;
};

/// Sets (or, with nullopt, unsets) an environment variable for its lifetime, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

/// Writes a file, creating parent directories.
void write_text(const std::filesystem::path& path, const std::string& content);
std::string read_text(const std::filesystem::path& path);

}  // namespace envbuild::testing

/// The test data is part of the repository, so a test never skips for want of it: this fails
/// when tests/data is missing (a copy of the tests without it). For tests written before #17.
/// TODO(#17): remove with testdata_dir().
#define ENVB_REQUIRE_TESTDATA()                                                             \
  ASSERT_TRUE(std::filesystem::is_directory(::envbuild::testing::data_dir()))               \
      << ::envbuild::testing::data_dir() << " is missing: the tests need the repository's " \
      << "tests/data"

/// Skips the test when a real tool it drives is not installed (scripts/bootstrap installs it).
#define ENVB_REQUIRE_TOOL(tool)                                                    \
  do {                                                                             \
    if (!::envbuild::testing::have_tool(tool))                                     \
      GTEST_SKIP() << "'" << tool << "' is not installed (run scripts/bootstrap)"; \
  } while (false)
