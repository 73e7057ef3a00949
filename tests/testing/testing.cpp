#include "tests/testing/testing.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace envbuild::testing {

namespace fs = std::filesystem;

namespace {
// Under `bazel test` the runfiles tree holds the data files and tests/bin/{envbuild,envrun}.
std::optional<fs::path> bazel_runfiles() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (!srcdir || !workspace) return std::nullopt;
  return fs::path(srcdir) / workspace;
}
}  // namespace

fs::path source_dir() {
  if (const char* env = std::getenv("ENVBUILD_SOURCE_DIR"); env && *env) return env;
  if (auto runfiles = bazel_runfiles()) return *runfiles;
#ifdef ENVBUILD_SOURCE_DIR
  return ENVBUILD_SOURCE_DIR;
#else
  return fs::current_path();
#endif
}

fs::path binary_dir() {
  if (const char* env = std::getenv("ENVBUILD_BIN_DIR"); env && *env) return env;
  if (auto runfiles = bazel_runfiles()) return *runfiles / "tests" / "bin";
#ifdef ENVBUILD_BINARY_DIR
  return ENVBUILD_BINARY_DIR;
#else
  return fs::current_path();
#endif
}

fs::path data_dir() {
  return source_dir() / "tests" / "data";
}

std::optional<fs::path> testdata_dir() {
  return data_dir();
}

bool have_tool(const std::string& tool) {
  return run_command("command -v " + shell_quote(tool) + " >/dev/null 2>&1").exit_code == 0;
}

std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  std::string full = "( " + command + " ) 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

void TempDirTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : name)
    if (c == '/') c = '_';
  fs::path base = fs::temp_directory_path() / "envbuild-tests";
  fs::create_directories(base);
  std::string templ = (base / (name + ".XXXXXX")).string();
  ASSERT_NE(::mkdtemp(templ.data()), nullptr);
  dir_ = templ;
}

void TempDirTest::TearDown() {
  if (dir_.empty() || std::getenv("ENVBUILD_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  // Tests may leave read-only trees behind; make them writable before removal.
  run_command("chmod -R u+rwX " + shell_quote(dir_.string()));
  fs::remove_all(dir_, ec);
}

void write_text(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ScopedEnv::ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
  if (const char* old = std::getenv(name)) old_ = old;
  if (value)
    ::setenv(name, value->c_str(), 1);
  else
    ::unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (old_)
    ::setenv(name_, old_->c_str(), 1);
  else
    ::unsetenv(name_);
}

}  // namespace envbuild::testing
