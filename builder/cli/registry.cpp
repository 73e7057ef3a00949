#include <iostream>

#include "builder/cli/cli.hpp"

namespace envbuild::builder::cli {

void register_pkg(CLI::App& app, Outcome& outcome);  // pkg.cpp
void register_solve(CLI::App& app, Outcome& outcome);  // solve.cpp
void register_lock(CLI::App& app, Outcome& outcome);  // lock.cpp
void register_export(CLI::App& app, Outcome& outcome);  // export.cpp
void register_push(CLI::App& app, Outcome& outcome);  // push.cpp
void register_pull(CLI::App& app, Outcome& outcome);  // push.cpp
void register_index(CLI::App& app, Outcome& outcome);  // index.cpp
void register_install(CLI::App& app, Outcome& outcome);  // install.cpp
void register_build(CLI::App& app, Outcome& outcome);  // build.cpp
void register_cache(CLI::App& app, Outcome& outcome);  // cache.cpp
void register_inspect(CLI::App& app, Outcome& outcome);  // inspect.cpp
void register_config(CLI::App& app, Outcome& outcome);  // config.cpp

const std::vector<Registrar>& registrars() {
  static const std::vector<Registrar> kAll = {
      register_pkg,
      register_solve,
      register_lock,
      register_export,
      register_push,
      register_pull,
      register_index,
      register_install,
      register_build,
      register_cache,
      register_inspect,
      register_config,
  };
  return kAll;
}

void print_error(const Error& error) {
  std::cerr << "error: " << error.to_string() << "\n";
  if (!error.hint().empty()) std::cerr << "hint: " << error.hint() << "\n";
}

}  // namespace envbuild::builder::cli
