#pragma once

// Starts tests/testing/repo_server.py (ETag/Last-Modified/304, optional 503s, optional basic auth,
// Range, optionally a connection dropped mid-body once per path: extra_args "--drop-after N",
// "--drop-once", "--no-range")
// on 127.0.0.1 for one test and stops it afterwards. Header-only.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {

class RepoServer {
 public:
  /// Returns an empty server (port() == 0) when python3 is missing or it did not start.
  RepoServer(const std::filesystem::path& root, const std::filesystem::path& scratch,
             int fail_first = 0, const std::string& auth = "", const std::string& extra_args = "")
      : log_(scratch / "server.log") {
    auto port_file = scratch / "server.port";
    std::string cmd = "python3 " +
                      shell_quote((source_dir() / "tests/testing/repo_server.py").string()) +
                      " --root " + shell_quote(root.string()) + " --port-file " +
                      shell_quote(port_file.string()) + " --log " + shell_quote(log_.string()) +
                      " --fail-first " + std::to_string(fail_first) +
                      (auth.empty() ? "" : " --auth " + shell_quote(auth)) + " " + extra_args +
                      " >" + shell_quote((scratch / "server.out").string()) + " 2>&1 & echo $!";
    auto r = run_command(cmd);
    pid_ = std::atoi(r.output.c_str());
    for (int i = 0; i < 800 && port_ == 0; ++i) {  // python starts slowly on a busy host
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      if (std::filesystem::exists(port_file)) port_ = std::atoi(read_text(port_file).c_str());
    }
  }
  ~RepoServer() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  RepoServer(const RepoServer&) = delete;
  RepoServer& operator=(const RepoServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
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
