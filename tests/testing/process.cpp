#include "tests/testing/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>

#include "tests/testing/testing.hpp"

extern char** environ;

namespace envbuild::testing {

Spawned spawn_process(const std::vector<std::string>& argv_in, const EnvChanges& env,
                      const std::filesystem::path& output) {
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (!env.contains(kv.substr(0, kv.find('=')))) envs.push_back(kv);
  }
  for (const auto& [k, v] : env)
    if (v) envs.push_back(k + "=" + *v);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  Spawned s;
  s.output = output;
  int rc = posix_spawn(&s.pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "posix_spawn " << argv[0];
  return s;
}

int wait_status(const Spawned& s) {
  int status = 0;
  while (::waitpid(s.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

int Finished::exit_code() const {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Finished run_process(const std::vector<std::string>& argv, const EnvChanges& env,
                     const std::filesystem::path& output) {
  Spawned s = spawn_process(argv, env, output);
  Finished f;
  f.status = wait_status(s);
  f.output = read_text(output);
  return f;
}

}  // namespace envbuild::testing
