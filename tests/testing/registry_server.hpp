#pragma once

// A real docker-registry (distribution 2.8) on 127.0.0.1 for the registry tests: its own config
// and storage in a test directory, a free port, killed (SIGKILL) on stop() or destruction, and
// restartable on the same port and storage.

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

inline bool port_open(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(s);
  return ok;
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
      : dir_(std::move(dir)), port_(free_port()) {
    std::filesystem::create_directories(dir_ / "data");
    std::string config =
        "version: 0.1\nlog: {level: info}\nstorage:\n  filesystem: {rootdirectory: " +
        (dir_ / "data").string() + "}\n  delete: {enabled: " +
        (deletes == Deletes::Enabled ? "true" : "false") +
        "}\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n" + http_yaml;
    if (!auth_yaml.empty()) config += "auth:\n" + auth_yaml;
    write_text(dir_ / "config.yml", config);
  }
  ~RegistryServer() { stop(); }
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  /// Starts the registry and waits until it accepts connections; false on timeout.
  bool start() {
    pid_ = spawn({"docker-registry", "serve", (dir_ / "config.yml").string()}, dir_ / "log");
    for (int i = 0; i < 200; ++i) {
      if (port_open(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void stop() { kill_and_wait(pid_); }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log() const { return read_text(dir_ / "log"); }

 private:
  std::filesystem::path dir_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace envbuild::testing
