#pragma once

// Starts tests/testing/fault_proxy.py in front of a server on 127.0.0.1 (a docker-registry, a
// repo_server.py) for one test and stops it afterwards: --fault rules, --delay MIN-MAX to hold
// every request and answer a random time, --tags-page N to paginate tag lists. Header-only.

#include <filesystem>
#include <string>

#include "tests/testing/python_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

class FaultProxy : public PythonServer {
 public:
  /// `upstream` is HOST:PORT; `args` go to fault_proxy.py as they are ("--delay 0-20 --seed 7").
  FaultProxy(const std::string& upstream, const std::filesystem::path& scratch,
             const std::string& args)
      : PythonServer("fault_proxy.py", "--upstream " + shell_quote(upstream) + " " + args, scratch,
                     "proxy") {}

  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port()); }
};

}  // namespace envbuild::testing
