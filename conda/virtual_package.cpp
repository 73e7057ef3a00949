#include "conda/virtual_package.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

#include "conda/host_probe.hpp"
#include "conda/platform.hpp"

namespace envbuild::conda {

namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string archspec_for(std::string_view platform) {
  if (platform == "linux-64" || platform == "osx-64" || platform == "win-64") return "x86_64";
  if (platform == "linux-aarch64") return "aarch64";
  if (platform == "osx-arm64") return "m1";
  if (platform == "linux-ppc64le") return "ppc64le";
  if (platform == "linux-s390x") return "s390x";
  return "0";
}

void upsert(std::map<std::string, VirtualPackage>& out, VirtualPackage vp) {
  out[vp.name] = std::move(vp);
}

}  // namespace

Result<VirtualPackage> parse_virtual_package(std::string_view text) {
  std::string t(text);
  auto bad = [&](const std::string& why) {
    return fail(Errc::InvalidInput, "virtual package '" + t + "': " + why)
        .with_hint("write it as __name=version[=build], e.g. __cuda=12.4 or __glibc=2.28");
  };
  if (!t.starts_with("__") || t.size() < 3) return bad("names of virtual packages start with __");
  VirtualPackage vp;
  size_t eq = t.find('=');
  vp.name = t.substr(0, eq);
  if (eq == std::string::npos) {
    vp.version = "0";
  } else {
    std::string rest = t.substr(eq + 1);
    size_t eq2 = rest.find('=');
    vp.version = rest.substr(0, eq2);
    if (eq2 != std::string::npos) vp.build = rest.substr(eq2 + 1);
    if (vp.version.empty() || vp.build.empty()) return bad("empty version or build");
  }
  for (char c : vp.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
      return bad("bad character in the name");
  for (char c : vp.version + vp.build)
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '<' || c == '>' || c == '*')
      return bad("version and build must be exact values");
  return vp;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::vector<VirtualPackage> virtual_packages_for(
    std::string_view platform, const std::vector<VirtualPackage>& explicit_packages,
    const EnvLookup& env_in, const std::filesystem::path& probe_cache_dir) {
  EnvLookup env = env_in ? env_in : process_env();
  std::map<std::string, VirtualPackage> out;
  const bool linux = platform.starts_with("linux-");
  const bool osx = platform.starts_with("osx-");
  const bool win = platform.starts_with("win-");
  const bool host = platform == host_subdir();
  if (linux || osx) upsert(out, {"__unix", "0", "0"});
  if (win) upsert(out, {"__win", "0", "0"});
  if (linux) {
    std::string kernel = host ? kernel_release() : "5.10";
    upsert(out, {"__linux", kernel.empty() ? "0" : kernel, "0"});
    upsert(out, {"__glibc", host ? glibc_major_minor() : "2.17", "0"});
  }
  if (osx) upsert(out, {"__osx", platform == "osx-arm64" ? "11.0" : "10.15", "0"});
  if (platform != "noarch") upsert(out, {"__archspec", "1", archspec_for(platform)});
  // The driver is asked only when no override or given __cuda will replace the answer: the
  // probe forks a child that loads libcuda, with a timeout (once per boot where its answer is
  // kept in `probe_cache_dir`).
  const bool cuda_given =
      std::any_of(explicit_packages.begin(), explicit_packages.end(),
                  [](const VirtualPackage& vp) { return vp.name == "__cuda"; });
  if (host && !cuda_given && !env("CONDA_OVERRIDE_CUDA")) {
    DetectOptions options;
    options.honour_overrides = false;  // applied below, from `env`
    options.cache_dir = probe_cache_dir;
    if (auto cuda = detect_host(options).cuda) upsert(out, {"__cuda", *cuda, "0"});
  }
  // CONDA_OVERRIDE_<NAME>: a value replaces, empty removes (__linux becomes 0).
  for (const char* name : {"__cuda", "__glibc", "__linux", "__osx", "__win", "__archspec"}) {
    std::string var = "CONDA_OVERRIDE_" + upper(std::string(name + 2));
    auto value = env(var);
    if (!value) continue;
    std::string v = *value;
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t") + 1);
    const bool applies =
        (std::string_view(name) != "__glibc" && std::string_view(name) != "__linux") || linux;
    if (!applies) continue;
    if (std::string_view(name) == "__archspec") {
      if (v.empty())
        out.erase(name);
      else
        upsert(out, {name, "1", v});
    } else if (v.empty()) {
      if (std::string_view(name) == "__linux")
        upsert(out, {name, "0", "0"});
      else
        out.erase(name);
    } else {
      upsert(out, {name, v, "0"});
    }
  }
  for (const VirtualPackage& vp : explicit_packages) upsert(out, vp);
  std::vector<VirtualPackage> result;
  for (auto& [_, vp] : out) result.push_back(vp);
  return result;
}

}  // namespace envbuild::conda
