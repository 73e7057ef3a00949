// The warm path of `envrun IMAGE -- COMMAND`: an entry already in the cache, the host check
// (driver probe cached per boot), activation and exec. Linked into the lean launcher together
// with cache_lookup.cpp, so nothing here may reach the image readers or the unpacker.

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "oci/reference.hpp"
#include "runtime/activate.hpp"
#include "runtime/cache.hpp"
#include "runtime/internal/launch_env.hpp"
#include "runtime/launch.hpp"

namespace envbuild::runtime {

Result<HostCheckOutcome> check_host(const std::vector<std::string>& requirements,
                                    const std::filesystem::path& host_cache_dir) {
  HostCheckOutcome outcome;
  std::vector<Requirement> parsed;
  for (const auto& text : requirements) {
    ENVB_ASSIGN_OR_RETURN(Requirement r, conda::parse_host_requirement(text));
    parsed.push_back(std::move(r));
  }
  if (parsed.empty()) return outcome;
  DetectOptions options;
  options.cache_dir = host_cache_dir;
  outcome.host = detect_host(options);
  outcome.detected = true;
  ENVB_ASSIGN_OR_RETURN(outcome.report, check_requirements(parsed, outcome.host));
  return outcome;
}

std::string describe(const HostCheckOutcome& outcome) {
  if (!outcome.detected) return "no host requirements\n";
  const HostFacts& h = outcome.host;
  return "host: CUDA " + h.cuda.value_or("none") + " (" + h.cuda_source + "), glibc " +
         h.glibc.value_or("none") + " (" + h.glibc_source + ")\n" + outcome.report.to_string();
}

Error host_mismatch(const HostCheckOutcome& outcome) {
  std::string failed;
  for (const auto& line : outcome.report.lines) {
    if (line.ok) continue;
    if (!failed.empty()) failed += "; ";
    failed += line.requirement.name + (line.requirement.spec.empty() ? "" : " ") +
              line.requirement.spec + " needed, host has " + line.found;
    if (!line.advice.empty()) failed += " (" + line.advice + ")";
  }
  return Error(Errc::HostMismatch, "this host cannot run the environment: " + failed)
      .with_hint("--no-check runs it anyway");
}

void print_error(const Error& error) {
  // stdio, not iostream: <iostream>'s static initializer (the C++ locales) is a cost on every
  // warm start of the launcher.
  std::fprintf(stderr, "envrun: error: %s\n", error.to_string().c_str());
  if (!error.hint().empty()) std::fprintf(stderr, "hint: %s\n", error.hint().c_str());
}

bool is_subcommand(std::string_view word) {
  for (std::string_view s : {"check", "unpack", "pull", "ls", "gc", "shell", "kernel", "help"})
    if (word == s) return true;
  return false;
}

std::optional<Store> parse_store(std::string_view text) {
  if (text == "tree") return Store::Tree;
  if (text == "squashfs") return Store::Squashfs;
  return std::nullopt;
}

std::optional<RunForm> parse_run_form(int argc, char** argv) {
  RunForm form;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--no-check") {
      form.check = HostCheck::Skip;
    } else if (flag.starts_with("--store=")) {
      if (!(form.store = parse_store(flag.substr(8)))) return std::nullopt;
    } else if (flag == "--store" && i + 1 < argc) {
      if (!(form.store = parse_store(argv[++i]))) return std::nullopt;
    } else {
      return std::nullopt;  // --help, --version, typos: CLI11 answers
    }
  }
  if (i >= argc || is_subcommand(argv[i])) return std::nullopt;
  form.image = argv[i++];
  if (i < argc && std::strcmp(argv[i], "--") == 0) ++i;
  form.command.assign(argv + i, argv + argc);
  return form;
}

namespace internal {

Result<void> enforce_host_check(const std::vector<std::string>& requirements,
                                const RunOptions& options, const std::filesystem::path& root) {
  if (options.check == HostCheck::Skip) return {};
  ENVB_ASSIGN_OR_RETURN(HostCheckOutcome outcome, check_host(requirements, root / "host"));
  if (outcome.detected && !outcome.report.ok()) return host_mismatch(outcome);
  return {};
}

RunFailure failure_of(Error e) {
  int code = exit_code_for(e.code());
  return RunFailure{std::move(e), code};
}

RunFailure launch_materialized(Materialized env, std::vector<std::string> command,
                               const RunOptions& options, const std::filesystem::path& root) {
  if (auto checked = enforce_host_check(env.info.requirements, options, root); !checked)
    return failure_of(std::move(checked).error());
  std::vector<std::string> host_env = current_environment();
  if (options.mode == RunOptions::Mode::Shell) command = shell_command(host_env);
  auto plan = plan_launch(env.info, std::move(command), host_env);
  if (!plan) {
    Error e = std::move(plan).error();
    int code = e.code() == Errc::NotFound ? 127 : exit_code_for(e.code());
    return RunFailure{std::move(e), code};
  }
  // env.in_use stays open across exec: the command holds the entry against gc until it exits
  // (and a SquashFS entry's mount, likewise).
  (void)env.in_use.release();
  (void)env.mount_in_use.release();
  Error e = exec_launch(*plan);
  return RunFailure{std::move(e), errno == ENOENT ? 127 : 126};
}

}  // namespace internal

std::optional<RunFailure> run_if_cached(const std::string& image, std::vector<std::string> command,
                                        const RunOptions& options) {
  auto ref = oci::ImageReference::parse(image);
  if (!ref) return std::nullopt;  // the full path reports it
  Cache cache(options.cache_root);
  auto env = cache.lookup(*ref);
  // An entry kept as a SquashFS file is mounted first: envrun-full does that.
  if (!env || !*env || !(*env)->info.squashfs.empty()) return std::nullopt;
  return internal::launch_materialized(std::move(**env), std::move(command), options, cache.root());
}

}  // namespace envbuild::runtime
