#include "runtime/host_check.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "conda/version.hpp"
#include "conda/version_spec.hpp"

namespace envbuild::runtime {

bool CheckReport::ok() const {
  return std::all_of(lines.begin(), lines.end(), [](const CheckLine& l) { return l.ok; });
}

std::string CheckReport::to_string() const {
  std::string out;
  for (const auto& line : lines) {
    out += line.ok ? "  ok    " : "  FAIL  ";
    out += line.requirement.name;
    if (!line.requirement.spec.empty()) out += " " + line.requirement.spec;
    out += "  (host: " + line.found + ")\n";
    if (!line.ok && !line.advice.empty()) out += "        " + line.advice + "\n";
  }
  if (lines.empty()) out += "  (the environment has no host requirements)\n";
  return out;
}

namespace {

Result<bool> version_satisfies(const std::string& version, const std::string& spec) {
  if (spec.empty()) return true;
  ENVB_ASSIGN_OR_RETURN(auto parsed_spec, conda::VersionSpec::parse(spec));
  ENVB_ASSIGN_OR_RETURN(auto parsed_version, conda::Version::parse(version));
  return parsed_spec.matches(parsed_version);
}

}  // namespace

Result<CheckReport> check_requirements(const std::vector<Requirement>& requirements,
                                       const HostFacts& host) {
  CheckReport report;
  for (const auto& requirement : requirements) {
    CheckLine line{requirement, "none", false, ""};
    const std::string& name = requirement.name;
    const std::string wanted = requirement.spec.empty() ? "" : " " + requirement.spec;
    if (name == "__cuda") {
      if (host.cuda) {
        line.found = "CUDA " + *host.cuda +
                     (host.driver_version ? " (driver " + *host.driver_version + ")" : "") + ", " +
                     host.cuda_source;
        ENVB_ASSIGN_OR_RETURN(line.ok, version_satisfies(*host.cuda, requirement.spec));
        if (!line.ok) {
          std::string driver = host.driver_version ? "driver " + *host.driver_version : "driver";
          line.advice = "this environment needs a CUDA driver for CUDA" + wanted +
                        "; this host's " + driver + " supports CUDA " + *host.cuda +
                        ": update the driver or rebuild with cuda-version<=" + *host.cuda;
        }
      } else {
        line.found = "no CUDA driver";
        line.advice = "this environment needs a CUDA driver for CUDA" + wanted +
                      " but none was found: run on a GPU node, or set CONDA_OVERRIDE_CUDA if the "
                      "detection is wrong";
      }
    } else if (name == "__cuda_arch") {
      if (host.cuda_arch) {
        line.found = "compute capability " + *host.cuda_arch;
        ENVB_ASSIGN_OR_RETURN(line.ok, version_satisfies(*host.cuda_arch, requirement.spec));
        if (!line.ok)
          line.advice = "this environment's GPU code needs compute capability" + wanted +
                        "; this host's GPUs have " + *host.cuda_arch +
                        ": run on newer GPUs or rebuild for this architecture";
      } else {
        line.advice = "this environment needs a GPU with compute capability" + wanted +
                      " but no GPU was found";
      }
    } else if (name == "__glibc") {
      if (host.glibc) {
        line.found = "glibc " + *host.glibc + " (" + host.glibc_source + ")";
        ENVB_ASSIGN_OR_RETURN(line.ok, version_satisfies(*host.glibc, requirement.spec));
        if (!line.ok)
          line.advice = "this environment needs glibc" + wanted + "; this host has glibc " +
                        *host.glibc +
                        ": run on a newer OS (or a container), or rebuild against an older "
                        "__glibc (e.g. --virtual-package __glibc=" +
                        *host.glibc + ")";
      } else {
        line.advice = "this environment needs glibc" + wanted + " but this host has none";
      }
    } else if (name == "__linux") {
      std::string release = conda::kernel_release();
      line.found = "Linux " + release;
      ENVB_ASSIGN_OR_RETURN(line.ok,
                            version_satisfies(release.empty() ? "0" : release, requirement.spec));
      if (!line.ok) line.advice = "this environment needs Linux" + wanted;
    } else if (name == "__unix") {
      line.found = "unix";
      line.ok = true;
    } else if (name == "__archspec") {
      // Microarchitecture levels are checked by the packages' own loaders; report only.
      line.found = "not checked";
      line.ok = true;
    } else {
      line.found = "not available on Linux";
      line.advice = "this environment was built for another operating system (" + name + ")";
    }
    report.lines.push_back(std::move(line));
  }
  return report;
}

}  // namespace envbuild::runtime
