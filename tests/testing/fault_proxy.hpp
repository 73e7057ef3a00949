#pragma once

// Starts tests/testing/fault_proxy.py in front of a server on 127.0.0.1 (a docker-registry, a
// repo_server.py) for one test and stops it afterwards: --fault rules, --delay MIN-MAX to hold
// every request and answer a random time, --tags-page N to paginate tag lists. Header-only.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {

class FaultProxy {
 public:
  /// `upstream` is HOST:PORT; `args` go to fault_proxy.py as they are ("--delay 0-20 --seed 7").
  /// An empty proxy (port() == 0) when python3 is missing or it did not start.
  FaultProxy(const std::string& upstream, const std::filesystem::path& scratch,
             const std::string& args)
      : log_(scratch / "proxy.log") {
    std::filesystem::create_directories(scratch);
    auto port_file = scratch / "proxy.port";
    std::string cmd = "python3 " +
                      shell_quote((source_dir() / "tests/testing/fault_proxy.py").string()) +
                      " --upstream " + shell_quote(upstream) + " --port-file " +
                      shell_quote(port_file.string()) + " --log " + shell_quote(log_.string()) +
                      " " + args + " >" + shell_quote((scratch / "proxy.out").string()) +
                      " 2>&1 & echo $!";
    auto r = run_command(cmd);
    pid_ = std::atoi(r.output.c_str());
    for (int i = 0; i < 800 && port_ == 0; ++i) {  // python starts slowly on a busy host
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      if (std::filesystem::exists(port_file)) port_ = std::atoi(read_text(port_file).c_str());
    }
  }
  ~FaultProxy() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  /// The request log, one JSON object per line.
  [[nodiscard]] std::vector<std::string> log_lines() const {
    std::vector<std::string> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  std::filesystem::path log_;
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace envbuild::testing
