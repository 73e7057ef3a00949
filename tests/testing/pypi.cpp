#include "tests/testing/pypi.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/testing/shared_fixture.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

namespace fs = std::filesystem;

std::vector<fs::path> make_wheels(const std::string& spec_json, const fs::path& out) {
  fs::create_directories(out);
  fs::path spec = out.parent_path() / (out.filename().string() + ".json");
  write_text(spec, spec_json);
  auto r = run_command("python3 " + shell_quote((source_dir() / "tests/testing/make_wheels.py").string()) +
                       " " + shell_quote(spec.string()) + " " + shell_quote(out.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<fs::path> files;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) files.emplace_back(line);
  return files;
}

const fs::path& pypi_test_wheels() {
  // Made once per test run (ctest runs each test in a process of its own).
  static const fs::path dir = [] {
    const fs::path spec = source_dir() / "tests/testing/pypi_test_wheels.json";
    const fs::path script = source_dir() / "tests/testing/make_wheels.py";
    auto made = shared_fixture("pypi-wheels", read_text(spec) + "\n" + file_identity(script),
                               [&](const fs::path& out) -> Result<void> {
                                 if (make_wheels(read_text(spec), out / "wheels").empty())
                                   return fail(Errc::Io, "make_wheels.py failed");
                                 return ok();
                               });
    EXPECT_TRUE(made) << made.error().to_string();
    return made ? *made / "wheels" : fs::path();
  }();
  return dir;
}

PypiServer::PypiServer(const fs::path& root, const fs::path& log, const std::string& extra_args)
    : log_(log) {
  std::string cmd = "exec python3 " +
                    shell_quote((source_dir() / "tests/testing/pypi_server.py").string()) +
                    " --root " + shell_quote(root.string()) + " --log " + shell_quote(log.string()) +
                    " " + extra_args + " 2>>" + shell_quote(log.string() + ".err");
  pipe_ = ::popen(cmd.c_str(), "r");
  if (!pipe_) {
    ADD_FAILURE() << "cannot start pypi_server.py";
    return;
  }
  char line[128] = {};
  if (!std::fgets(line, sizeof line, pipe_)) {
    ADD_FAILURE() << "pypi_server.py did not start: " << read_text(log.string() + ".err");
    return;
  }
  std::istringstream(line) >> port_ >> pid_;
}

PypiServer::~PypiServer() {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
  if (pipe_) ::pclose(pipe_);
}

std::vector<std::string> PypiServer::log_lines() const {
  std::vector<std::string> out;
  std::ifstream in(log_);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<PipChoice> pip_dry_run(const std::string& index_url,
                                   const std::vector<std::string>& requirements,
                                   const std::string& python_version,
                                   const std::vector<std::string>& platforms, std::string& error,
                                   const std::vector<std::string>& extra_args) {
  std::string xy = python_version;
  xy.erase(std::remove(xy.begin(), xy.end(), '.'), xy.end());
  std::string cmd =
      "PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 /usr/bin/python3 -m pip install --dry-run "
      "--ignore-installed --quiet --report - --disable-pip-version-check --no-input "
      "--only-binary :all: --implementation cp --python-version " + python_version +
      " --abi cp" + xy + " --index-url " + shell_quote(index_url) +
      // pip takes platform options only with --target; --dry-run writes nothing there.
      " --target " + shell_quote((fs::temp_directory_path() / "envbuild-tests" / "pip-target").string());
  for (const auto& p : platforms) cmd += " --platform " + p;
  for (const auto& a : extra_args) cmd += " " + a;
  for (const auto& r : requirements) cmd += " " + shell_quote(r);
  auto result = run_command(cmd + " 2>&1");
  std::vector<PipChoice> out;
  auto start = result.output.find('{');
  if (result.exit_code != 0 || start == std::string::npos) {
    error = result.output;
    return out;
  }
  auto report = nlohmann::json::parse(result.output.substr(start), nullptr, false);
  if (report.is_discarded()) {
    error = "pip's report is not JSON: " + result.output;
    return out;
  }
  for (const auto& item : report["install"]) {
    std::string url = item["download_info"]["url"].get<std::string>();
    std::string name = item["metadata"]["name"].get<std::string>();
    std::string normalized;
    bool run = false;
    for (char c : name) {
      if (c == '-' || c == '_' || c == '.') {
        if (!run) normalized += '-';
        run = true;
      } else {
        normalized += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        run = false;
      }
    }
    out.push_back({normalized, item["metadata"]["version"].get<std::string>(),
                   url.substr(url.rfind('/') + 1)});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace envbuild::testing
