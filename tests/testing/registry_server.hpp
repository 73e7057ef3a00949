#pragma once

// A real docker-registry (distribution 2.8) on 127.0.0.1 for the registry tests: its own config
// and storage in a test directory, a free port, killed (SIGKILL) on stop() or destruction, and
// restartable on the same storage (and port, unless someone took it meanwhile).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/testing/testing.hpp"

namespace envbuild::testing {

inline int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

/// Starts `argv` with stdout and stderr appended to `log`; returns the pid.
inline pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

inline void kill_and_wait(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
}

class RegistryServer {
 public:
  enum class Deletes : bool { Refused, Enabled };

  /// `auth_yaml` is the `auth:` section's body (indented by 2), empty for none; `http_yaml`
  /// is added to the `http:` section (indented by 2), e.g. a `tls:` entry. Manifest and blob
  /// DELETEs are enabled unless `deletes` refuses them (as distribution does by default).
  RegistryServer(std::filesystem::path dir, std::string auth_yaml = "", std::string http_yaml = "",
                 Deletes deletes = Deletes::Enabled)
      : dir_(std::move(dir)),
        auth_yaml_(std::move(auth_yaml)),
        http_yaml_(std::move(http_yaml)),
        deletes_(deletes),
        port_(free_port()) {
    std::filesystem::create_directories(dir_ / "data");
  }
  ~RegistryServer() { stop(); }
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  /// Starts the registry and waits until it listens. free_port() closes the port it found, so
  /// another process can bind it before the registry does: the registry then exits saying so,
  /// and start() tries again on another free port. False when the registry does not start (its
  /// log() says why).
  bool start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      write_config();
      const auto log_start = log().size();  // a restart appends to the same log
      pid_ = spawn({"docker-registry", "serve", (dir_ / "config.yml").string()}, dir_ / "log");
      switch (wait_until_listening(log_start)) {
        case Startup::Listening:
          return true;
        case Startup::PortTaken:
          port_ = free_port();
          continue;
        case Startup::Failed:
          stop();
          return false;
      }
    }
    return false;
  }
  void stop() { kill_and_wait(pid_); }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log() const { return read_text(dir_ / "log"); }

 private:
  enum class Startup { Listening, PortTaken, Failed };

  void write_config() const {
    std::string config =
        "version: 0.1\nlog: {level: info}\nstorage:\n  filesystem: {rootdirectory: " +
        (dir_ / "data").string() +
        "}\n  delete: {enabled: " + (deletes_ == Deletes::Enabled ? "true" : "false") +
        "}\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n" + http_yaml_;
    if (!auth_yaml_.empty()) config += "auth:\n" + auth_yaml_;
    write_text(dir_ / "config.yml", config);
  }

  // The registry logs "listening on 127.0.0.1:PORT" once it holds the socket, and exits with
  // "bind: address already in use" when it cannot get it: each check looks at both.
  Startup wait_until_listening(size_t log_start) {
    auto since_start = [&] {
      const std::string text = log();
      return text.substr(std::min(log_start, text.size()));
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (since_start().find("listening on ") != std::string::npos) return Startup::Listening;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: its log has its last words
        pid_ = -1;
        return since_start().find("address already in use") != std::string::npos
                   ? Startup::PortTaken
                   : Startup::Failed;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a poll of the two signs
    }
    return Startup::Failed;
  }

  std::filesystem::path dir_;
  std::string auth_yaml_;
  std::string http_yaml_;
  Deletes deletes_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace envbuild::testing
