// envrun: the lean launcher. A warm `envrun [--no-check] IMAGE [--] COMMAND...` (the image already
// unpacked in the cache) runs here: a stat of the image's index.json (or archive), two small
// reads, the host check against the per-boot driver probe cache, activation and execve. This
// binary links only that code (cache_lookup.cpp, launch_warm.cpp, activate.cpp, host_check.cpp
// and what they call) and, with --as-needed, no shared library beyond the C++ runtime, so a warm
// start pays for no dynamic loading of libcurl, libarchive, OpenSSL or yaml-cpp.
//
// Everything else (a cold start, the subcommands, --help) is envrun-full, exec'd with the same
// argv: $ENVRUN_FULL, else envrun-full next to this binary, else ../libexec/envrun/envrun-full.

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/cache.hpp"
#include "runtime/launch.hpp"

namespace {

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

[[noreturn]] void exec_full(char** argv) {
  std::string tried;
  auto attempt = [&](const std::string& path) {
    ::execv(path.c_str(), argv);
    tried += (tried.empty() ? "" : ", ") + path + " (" + std::strerror(errno) + ")";
  };
  if (const char* full = std::getenv("ENVRUN_FULL"); full && *full) {
    attempt(full);
  } else {
    std::string dir = self_dir();
    attempt(dir + "/envrun-full");
    attempt(dir + "/../libexec/envrun/envrun-full");
  }
  envbuild::runtime::print_error(
      envbuild::Error(envbuild::Errc::NotFound, "cannot run envrun-full: tried " + tried)
          .with_hint("install envrun-full next to envrun, or set ENVRUN_FULL to its path"));
  ::_exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace envbuild::runtime;
  auto root = Cache::default_root();
  if (auto form = parse_run_form(argc, argv); form && root) {
    RunOptions options;
    options.cache_root = std::move(*root);
    options.check = form->check;
    if (auto failure = run_if_cached(form->image, std::move(form->command), options)) {
      print_error(failure->error);
      return failure->exit_code;
    }
  }
  exec_full(argv);
}
