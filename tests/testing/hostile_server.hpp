#pragma once

// tests/testing/hostile_server.py for one test (a collector that records every request, a
// registry that sends credentials elsewhere, a server that trickles bytes), and a watchdog that
// bounds how long a test against one may run. Header-only.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {

/// Aborts the test process (which kills its servers: they die with their parent) when the test
/// is still running after `limit`: a client that hangs on a hostile server fails, it does not
/// stall the suite.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, std::string what)
      : thread_([this, limit, what = std::move(what)] {
          std::unique_lock lock(mutex_);
          if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: %s still running after %lld s\n", what.c_str(),
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

class HostileServer {
 public:
  /// Starts the server with `args` (hostile_server.py's flags but --log), binding `bind`.
  /// port() is 0 when it did not start (python3 missing): see log_text().
  HostileServer(const std::filesystem::path& scratch, const std::string& name,
                std::vector<std::string> args, std::string bind = "127.0.0.1", bool tls = false)
      : log_(scratch / (name + ".requests")), bind_(std::move(bind)), tls_(tls) {
    std::vector<std::string> argv = {
        "python3", (source_dir() / "tests/testing/hostile_server.py").string(),
        "--log",   log_.string(),
        "--bind",  bind_};
    argv.insert(argv.end(), args.begin(), args.end());
    // Everything the child needs is made before fork(): a test may have threads (a watchdog),
    // and the child must not allocate.
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    const int err = ::open((scratch / (name + ".stderr")).c_str(),
                           O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int out[2];
    if (err < 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test, even when a watchdog aborts it
      ::dup2(out[1], 1);
      ::dup2(err, 2);
      ::execvp(raw[0], raw.data());
      ::_exit(127);
    }
    ::close(err);
    ::close(out[1]);
    // The server prints its port once it listens: a blocking read, no polling.
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
  }
  ~HostileServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  /// "127.0.0.1:PORT".
  [[nodiscard]] std::string host() const { return bind_ + ":" + std::to_string(port_); }
  [[nodiscard]] std::string url() const { return (tls_ ? "https://" : "http://") + host(); }

  /// The requests received so far, one JSON object each (method, path, headers, body).
  [[nodiscard]] std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);)
      out.push_back(nlohmann::json::parse(line, nullptr, false));
    return out;
  }
  /// How many requests carried an Authorization header.
  [[nodiscard]] size_t authorized_requests() const {
    size_t n = 0;
    for (const auto& r : requests())
      if (r.is_object() && r["headers"].is_object())
        for (const auto& [name, value] : r["headers"].items())
          if (name == "Authorization" || name == "authorization") ++n;
    return n;
  }
  /// Everything received (request lines, headers with Basic credentials decoded, bodies) as one
  /// text, to search for secrets.
  [[nodiscard]] std::string transcript() const {
    std::ifstream in(log_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text;
  }

 private:
  std::filesystem::path log_;
  std::string bind_;
  bool tls_;
  pid_t pid_ = -1;
  int port_ = 0;
};

/// Writes key.pem and cert.pem, a self-signed certificate for 127.0.0.1, into `dir`; "" on
/// success, else openssl's output.
inline std::string make_localhost_certificate(const std::filesystem::path& dir) {
  auto made = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1 -keyout " +
      shell_quote((dir / "key.pem").string()) + " -out " +
      shell_quote((dir / "cert.pem").string()) + " 2>&1");
  return made.exit_code == 0 ? "" : made.output;
}

}  // namespace envbuild::testing
