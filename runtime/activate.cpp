#include "runtime/activate.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/format.hpp"
#include "common/fs.hpp"

extern char** environ;

namespace envbuild::runtime {
namespace {

std::string_view key_of(std::string_view kv) {
  return kv.substr(0, kv.find('='));
}

/// Sets KEY=VALUE, replacing an existing KEY in place (keeps the host's order stable).
void set_var(std::vector<std::string>& env, std::string_view key, std::string_view value) {
  std::string kv = std::string(key) + "=" + std::string(value);
  for (auto& e : env)
    if (key_of(e) == key) {
      e = std::move(kv);
      return;
    }
  env.push_back(std::move(kv));
}

std::string get_var(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env)
    if (key_of(e) == key && e.size() > key.size()) return e.substr(key.size() + 1);
  return {};
}

bool is_executable_file(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0 && !std::filesystem::is_directory(path);
}

}  // namespace

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

std::vector<std::string> activated_environment(const EnvInfo& info,
                                               const std::vector<std::string>& host_env) {
  std::vector<std::string> env = host_env;
  std::string image_path;
  std::string default_env;
  for (const auto& kv : info.env) {
    std::string_view key = key_of(kv);
    if (key.size() == kv.size()) continue;  // no '='
    std::string value = kv.substr(key.size() + 1);
    if (key == "PATH") {
      image_path = value;
    } else if (key == "CONDA_DEFAULT_ENV") {
      default_env = value;
    } else if (key != "HOME" && key != "HOSTNAME") {
      set_var(env, key, value);
    }
  }
  // The prefix's own directories first (as the image has them), then the host's PATH, so host
  // tools (and module systems on HPC) keep working.
  std::string path;
  auto add = [&](std::string_view entry) {
    if (entry.empty()) return;
    if (!path.empty()) path += ':';
    path += entry;
  };
  bool has_bin = false;
  std::string_view rest = image_path;
  while (!rest.empty()) {
    std::string_view entry = rest.substr(0, rest.find(':'));
    if (entry == info.prefix || entry.starts_with(info.prefix + "/")) {
      add(entry);
      if (entry == info.prefix + "/bin") has_bin = true;
    }
    rest.remove_prefix(std::min(rest.size(), entry.size() + 1));
  }
  if (!has_bin) add(info.prefix + "/bin");
  std::string host_path = get_var(host_env, "PATH");
  add(host_path.empty() ? std::string("/usr/local/bin:/usr/bin:/bin") : host_path);
  set_var(env, "PATH", path);
  set_var(env, "CONDA_PREFIX", info.prefix);
  set_var(env, "CONDA_DEFAULT_ENV", default_env.empty() ? info.prefix : default_env);
  set_var(env, "CONDA_SHLVL", "1");
  for (const auto& [key, value] : info.env_vars) set_var(env, key, value);
  return env;
}

std::optional<std::string> find_in_path(const std::string& name, const std::string& path_value) {
  std::string_view rest = path_value;
  // Host PATHs often name a directory twice (shell profiles prepending it again): probing it
  // again is a syscall on every start that cannot find anything new.
  std::vector<std::string_view> seen;
  while (true) {
    std::string_view entry = rest.substr(0, rest.find(':'));
    std::string candidate = (entry.empty() ? std::string(".") : std::string(entry)) + "/" + name;
    bool repeated = std::find(seen.begin(), seen.end(), entry) != seen.end();
    seen.push_back(entry);
    if (!repeated && is_executable_file(candidate)) return candidate;
    if (entry.size() >= rest.size()) break;
    rest.remove_prefix(entry.size() + 1);
  }
  return std::nullopt;
}

std::vector<std::string> shell_command(const std::vector<std::string>& host_env) {
  std::string shell = get_var(host_env, "SHELL");
  if (shell.empty() || !is_executable_file(shell)) shell = "/bin/sh";
  return {shell, "-i"};
}

Result<LaunchPlan> plan_launch(const EnvInfo& info, std::vector<std::string> command,
                               const std::vector<std::string>& host_env) {
  if (command.empty()) {
    if (info.entrypoint) command = *info.entrypoint;
    if (info.cmd) command.insert(command.end(), info.cmd->begin(), info.cmd->end());
  }
  if (command.empty() || command.front().empty())
    return Error(Errc::InvalidInput, "no command given and the image has no Entrypoint or Cmd")
        .with_hint("envrun IMAGE -- COMMAND ARGS...");
  LaunchPlan plan;
  plan.envp = activated_environment(info, host_env);
  if (!info.activate_scripts.empty()) {
    std::string script;
    for (const auto& s : info.activate_scripts) script += ". " + common::shell_quote(s) + "; ";
    script += "exec \"$@\"";
    plan.file = "/bin/sh";
    plan.argv = {"sh", "-c", script, "sh"};
    plan.argv.insert(plan.argv.end(), command.begin(), command.end());
    return plan;
  }
  if (command.front().find('/') != std::string::npos) {
    plan.file = command.front();
  } else {
    auto found = find_in_path(command.front(), get_var(plan.envp, "PATH"));
    if (!found)
      return fail(Errc::NotFound, "command not found in the environment: " + command.front());
    plan.file = *found;
  }
  plan.argv = std::move(command);
  return plan;
}

Error exec_launch(const LaunchPlan& plan) {
  std::vector<char*> argv;
  for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : plan.envp) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::execve(plan.file.c_str(), argv.data(), envp.data());
  int err = errno;
  Error error = common::errno_error("execve", plan.file, err);
  errno = err;  // callers pick 126/127 from it
  return error;
}

}  // namespace envbuild::runtime
