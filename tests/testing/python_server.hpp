#pragma once

// A python helper server of tests/testing (repo_server.py, fault_proxy.py) on 127.0.0.1 for one
// test: started with its arguments plus --port-file and --log in a scratch directory, waited for
// until it has written its port, stopped (SIGTERM) on destruction. Header-only.

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

class PythonServer {
 public:
  /// Runs tests/testing/`script` with `args`; its files are `scratch`/`name`.{port,log,out}. An
  /// empty server (port() == 0) when python3 is missing or it did not start.
  PythonServer(const std::string& script, const std::string& args,
               const std::filesystem::path& scratch, const std::string& name)
      : log_(scratch / (name + ".log")) {
    std::filesystem::create_directories(scratch);
    auto port_file = scratch / (name + ".port");
    std::string cmd = "python3 " + shell_quote((source_dir() / "tests/testing" / script).string()) +
                      " --port-file " + shell_quote(port_file.string()) + " --log " +
                      shell_quote(log_.string()) + " " + args + " >" +
                      shell_quote((scratch / (name + ".out")).string()) + " 2>&1 & echo $!";
    auto r = run_command(cmd);
    pid_ = std::atoi(r.output.c_str());
    for (int i = 0; i < 800 && port_ == 0; ++i) {  // python starts slowly on a busy host
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      if (std::filesystem::exists(port_file)) port_ = std::atoi(read_text(port_file).c_str());
    }
  }
  ~PythonServer() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  PythonServer(const PythonServer&) = delete;
  PythonServer& operator=(const PythonServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  /// The request log, one JSON object per line.
  [[nodiscard]] std::vector<std::string> log_lines() const {
    std::vector<std::string> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  void clear_log() const { std::filesystem::remove(log_); }

 private:
  std::filesystem::path log_;
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace envbuild::testing
