#pragma once

// Starts tests/testing/repo_server.py (ETag/Last-Modified/304, optional 503s, optional basic auth,
// Range, optionally a connection dropped mid-body once per path: extra_args "--drop-after N",
// "--drop-once", "--no-range")
// on 127.0.0.1 for one test and stops it afterwards. Header-only.

#include <filesystem>
#include <string>

#include "tests/testing/python_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

class RepoServer : public PythonServer {
 public:
  /// Returns an empty server (port() == 0) when python3 is missing or it did not start.
  RepoServer(const std::filesystem::path& root, const std::filesystem::path& scratch,
             int fail_first = 0, const std::string& auth = "", const std::string& extra_args = "")
      : PythonServer("repo_server.py",
                     "--root " + shell_quote(root.string()) + " --fail-first " +
                         std::to_string(fail_first) +
                         (auth.empty() ? "" : " --auth " + shell_quote(auth)) + " " + extra_args,
                     scratch, "server") {}

  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
};

}  // namespace envbuild::testing
