#pragma once

// Helpers for the PyPI tests: wheels built by tests/testing/make_wheels.py from a JSON list,
// a package index (tests/testing/pypi_server.py: PEP 691 + PEP 503, PEP 658 on request) on
// 127.0.0.1, and Debian's pip as the peer resolver.

#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace envbuild::testing {

/// Writes `spec_json` to `out`/../<name>.json and builds its wheels and sdists into `out`.
/// Returns the make_wheels.py output (the files written); fails the test on an error.
std::vector<std::filesystem::path> make_wheels(const std::string& spec_json,
                                               const std::filesystem::path& out);

/// The wheels most PyPI tests share, built once per test run (shared_fixture): a
/// dependency chain with a newer sdist-only version and a pre-release (alpha, beta, gamma),
/// platform wheels for the right and a wrong python and glibc (delta), extras and
/// Requires-Python (epsilon, zeta), a backtracking case (app, other, lib), and a wheel with
/// .data directories and entry points (tool). pypi_test_wheels.json beside this file lists them.
const std::filesystem::path& pypi_test_wheels();

/// The index server, started for one test, stopped when destroyed. Ready when constructed:
/// it reports its port on its stdout once listening (no polling).
class PypiServer {
 public:
  /// `extra_args`: "--metadata", "--format html", "--auth u:p", "--yank F", "--files-host URL".
  PypiServer(const std::filesystem::path& root, const std::filesystem::path& log,
             const std::string& extra_args = "");
  ~PypiServer();
  PypiServer(const PypiServer&) = delete;
  PypiServer& operator=(const PypiServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  /// http://127.0.0.1:PORT
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string simple_url() const { return url() + "/simple"; }
  /// The request log, one JSON object per line.
  [[nodiscard]] std::vector<std::string> log_lines() const;

 private:
  std::filesystem::path log_;
  FILE* pipe_ = nullptr;
  int pid_ = -1;
  int port_ = 0;
};

/// One distribution pip would install.
struct PipChoice {
  std::string name;  // normalized
  std::string version;
  std::string filename;
  bool operator==(const PipChoice&) const = default;
  bool operator<(const PipChoice& o) const { return name < o.name; }
};
inline void PrintTo(const PipChoice& c, std::ostream* os) {
  *os << c.name << "==" << c.version << " (" << c.filename << ")";
}

/// Debian's pip (`/usr/bin/python3 -m pip install --dry-run --ignore-installed --report -
/// --only-binary :all: --python-version X --implementation cp --abi cpXY --platform P...
/// --index-url URL REQS`), sorted by name; `error` gets pip's output when it finds none.
std::vector<PipChoice> pip_dry_run(const std::string& index_url,
                                   const std::vector<std::string>& requirements,
                                   const std::string& python_version,
                                   const std::vector<std::string>& platforms, std::string& error,
                                   const std::vector<std::string>& extra_args = {});

}  // namespace envbuild::testing
