#include "runtime/launch.hpp"

#include <cerrno>

#include "oci/reference.hpp"
#include "runtime/activate.hpp"
#include "runtime/cache.hpp"

namespace envbuild::runtime {

Result<HostCheckOutcome> check_host(const std::vector<std::string>& requirements,
                                    const std::filesystem::path& host_cache_dir) {
  HostCheckOutcome outcome;
  std::vector<Requirement> parsed;
  for (const auto& text : requirements) {
    ENVB_ASSIGN_OR_RETURN(Requirement r, parse_requirement(text));
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

RunFailure run_in_image(const std::string& image, std::vector<std::string> command,
                        const RunOptions& options) {
  auto failure = [](Error e) {
    int code = exit_code_for(e.code());
    return RunFailure{std::move(e), code};
  };
  auto ref = oci::ImageReference::parse(image);
  if (!ref) return failure(std::move(ref).error());
  Cache cache(options.cache_root);
  const auto host_cache = cache.root() / "host";
  auto enforce = [&](const std::vector<std::string>& requirements) -> Result<void> {
    if (options.check == HostCheck::Skip) return {};
    ENVB_ASSIGN_OR_RETURN(HostCheckOutcome outcome, check_host(requirements, host_cache));
    if (outcome.detected && !outcome.report.ok()) return host_mismatch(outcome);
    return {};
  };
  UnpackOptions unpack_options;
  unpack_options.precheck = enforce;  // before any layer is read
  auto env = cache.materialize(*ref, unpack_options);
  if (!env) return failure(std::move(env).error());
  if (auto checked = enforce(env->info.requirements); !checked)
    return failure(std::move(checked).error());

  std::vector<std::string> host_env = current_environment();
  if (options.mode == RunOptions::Mode::Shell) command = shell_command(host_env);
  auto plan = plan_launch(env->info, std::move(command), host_env);
  if (!plan) {
    Error e = std::move(plan).error();
    int code = e.code() == Errc::NotFound ? 127 : exit_code_for(e.code());
    return RunFailure{std::move(e), code};
  }
  // env->in_use stays open across exec: the command holds the entry against gc until it exits.
  (void)env->in_use.release();
  Error e = exec_launch(*plan);
  return RunFailure{std::move(e), errno == ENOENT ? 127 : 126};
}

}  // namespace envbuild::runtime
