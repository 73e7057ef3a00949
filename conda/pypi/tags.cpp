#include "conda/pypi/tags.hpp"

#include <charconv>
#include <cstdlib>

#include "common/ascii.hpp"
#include "conda/internal/text.hpp"
#include "conda/pypi/name.hpp"

namespace envbuild::conda::pypi {

namespace {

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = text.find(sep, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

bool is_tag_part(std::string_view part) {
  if (part.empty()) return false;
  for (char c : part)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.'))
      return false;
  return true;
}

std::optional<int> to_int(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// conda platform -> (os, machine as PEP 508 and wheel platforms spell it).
struct SubdirInfo {
  std::string os;       // linux, osx, win
  std::string machine;  // x86_64, aarch64, arm64, AMD64 ...
  std::string arch;     // wheel platform arch: x86_64, aarch64, i686 ...
};

SubdirInfo subdir_info(std::string_view subdir) {
  std::string os(subdir.substr(0, subdir.find('-')));
  std::string rest(subdir.find('-') == std::string_view::npos
                       ? std::string_view()
                       : subdir.substr(subdir.find('-') + 1));
  if (os == "linux") {
    if (rest == "64") return {os, "x86_64", "x86_64"};
    if (rest == "32") return {os, "i686", "i686"};
    return {os, rest, rest};  // aarch64, ppc64le, s390x, armv7l
  }
  if (os == "osx") return {os, rest == "arm64" ? "arm64" : "x86_64", rest == "arm64" ? "arm64" : "x86_64"};
  if (os == "win") {
    if (rest == "64") return {os, "AMD64", "amd64"};
    if (rest == "arm64") return {os, "ARM64", "arm64"};
    return {os, "x86", "win32"};
  }
  return {os, rest, rest};
}

}  // namespace

Result<WheelFilename> WheelFilename::parse(std::string_view filename) {
  auto bad = [&](std::string_view why) {
    return fail(Errc::InvalidInput,
                "'" + std::string(filename) + "' is not a wheel file name: " + std::string(why))
        .with_hint("wheels are named {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl");
  };
  if (filename.size() > 512) return bad("too long");
  if (!filename.ends_with(".whl")) return bad("it does not end in .whl");
  std::vector<std::string> parts = split(filename.substr(0, filename.size() - 4), '-');
  if (parts.size() != 5 && parts.size() != 6) return bad("expected 5 or 6 '-'-separated parts");
  WheelFilename w;
  w.name = parts[0];
  if (!is_valid_name(w.name)) return bad("invalid distribution name '" + w.name + "'");
  w.version_text = parts[1];
  // Some tools write the local version's '-' as '_' (pip reads it back).
  std::string version = parts[1];
  for (char& c : version)
    if (c == '_') c = '-';
  auto parsed = Version::parse(version);
  if (!parsed) return bad("invalid version '" + parts[1] + "'");
  w.version = std::move(*parsed);
  size_t tag_start = 2;
  if (parts.size() == 6) {
    const std::string& build = parts[2];
    size_t digits = 0;
    while (digits < build.size() && build[digits] >= '0' && build[digits] <= '9') ++digits;
    if (digits == 0) return bad("the build tag '" + build + "' does not start with a digit");
    uint64_t number = 0;
    auto [end, ec] = std::from_chars(build.data(), build.data() + digits, number);
    if (ec != std::errc()) return bad("the build tag '" + build + "' is too large");
    (void)end;
    w.build = std::pair<uint64_t, std::string>{number, build.substr(digits)};
    tag_start = 3;
  }
  const std::vector<std::string> pythons = split(parts[tag_start], '.');
  const std::vector<std::string> abis = split(parts[tag_start + 1], '.');
  const std::vector<std::string> platforms = split(parts[tag_start + 2], '.');
  if (pythons.size() * abis.size() * platforms.size() > 4096) return bad("too many tags");
  for (const auto& py : pythons)
    for (const auto& abi : abis)
      for (const auto& platform : platforms) {
        if (!is_tag_part(py) || !is_tag_part(abi) || !is_tag_part(platform))
          return bad("invalid tag '" + py + "-" + abi + "-" + platform + "'");
        w.tags.push_back({common::ascii_lower(py), common::ascii_lower(abi),
                          common::ascii_lower(platform)});
      }
  return w;
}

std::optional<Version> sdist_version(std::string_view filename, std::string_view project) {
  std::string_view stem;
  for (std::string_view ext : {".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar"}) {
    if (filename.size() > ext.size() && common::ascii_lower(filename.substr(
                                            filename.size() - ext.size())) == ext) {
      stem = filename.substr(0, filename.size() - ext.size());
      break;
    }
  }
  if (stem.empty()) return std::nullopt;
  for (size_t dash = stem.find('-'); dash != std::string_view::npos;
       dash = stem.find('-', dash + 1)) {
    if (normalize_name(stem.substr(0, dash)) != project) continue;
    if (auto v = Version::parse(stem.substr(dash + 1))) return *v;
  }
  return std::nullopt;
}

Result<PythonTarget> PythonTarget::make(std::string_view python_version,
                                        std::string_view python_build, std::string_view subdir,
                                        std::string_view glibc_version) {
  PythonTarget t;
  auto v = Version::parse(python_version);
  if (!v || v->release().size() < 2)
    return fail(Errc::InvalidInput, "python version '" + std::string(python_version) +
                                        "' has no MAJOR.MINOR: cannot choose wheels for it");
  t.python = std::move(*v);
  if (python_build.find("pypy") != std::string_view::npos) t.implementation = "pypy";
  t.subdir = std::string(subdir);
  if (subdir.starts_with("linux") && !glibc_version.empty()) {
    auto dot = glibc_version.find('.');
    auto major = to_int(glibc_version.substr(0, dot));
    std::string_view minor_text =
        dot == std::string_view::npos ? std::string_view("0") : glibc_version.substr(dot + 1);
    minor_text = minor_text.substr(0, minor_text.find('.'));
    auto minor = to_int(minor_text);
    if (major && minor) t.glibc = std::pair<int, int>{*major, *minor};
  }
  return t;
}

MarkerEnvironment marker_environment(const PythonTarget& target) {
  MarkerEnvironment env;
  const auto& release = target.python.release();
  env.python_version = std::to_string(release.at(0)) + "." + std::to_string(release.at(1));
  env.python_full_version = target.python.to_string();
  env.implementation_version = env.python_full_version;
  const bool pypy = target.implementation == "pypy";
  env.implementation_name = pypy ? "pypy" : "cpython";
  env.platform_python_implementation = pypy ? "PyPy" : "CPython";
  SubdirInfo info = subdir_info(target.subdir);
  env.platform_machine = info.machine;
  if (info.os == "win") {
    env.os_name = "nt";
    env.sys_platform = "win32";
    env.platform_system = "Windows";
  } else if (info.os == "osx") {
    env.os_name = "posix";
    env.sys_platform = "darwin";
    env.platform_system = "Darwin";
  } else {
    env.os_name = "posix";
    env.sys_platform = "linux";
    env.platform_system = "Linux";
  }
  return env;
}

std::vector<std::string> platform_tags(const PythonTarget& target) {
  SubdirInfo info = subdir_info(target.subdir);
  std::vector<std::string> out;
  if (info.os == "linux") {
    if (target.glibc && target.glibc->first == 2) {
      // packaging.tags: x86_64 and i686 wheels go back to manylinux1 (glibc 2.5), the others
      // start at manylinux2014 (2.17).
      const int oldest = (info.arch == "x86_64" || info.arch == "i686") ? 5 : 17;
      for (int minor = target.glibc->second; minor >= oldest; --minor) {
        out.push_back("manylinux_2_" + std::to_string(minor) + "_" + info.arch);
        if (minor == 17) out.push_back("manylinux2014_" + info.arch);
        if (minor == 12) out.push_back("manylinux2010_" + info.arch);
        if (minor == 5) out.push_back("manylinux1_" + info.arch);
      }
    }
    out.push_back("linux_" + info.arch);
  } else if (info.os == "win") {
    out.push_back(info.arch == "amd64" ? "win_amd64" : info.arch == "arm64" ? "win_arm64" : "win32");
  }
  // TODO(#18): macosx_* platform tags need the target's macOS version (__osx); until then an
  // osx environment takes pure wheels only.
  return out;
}

SupportedTags::SupportedTags(const PythonTarget& target) {
  const auto& release = target.python.release();
  const uint64_t major = release.at(0), minor = release.at(1);
  const std::string xy = std::to_string(major) + std::to_string(minor);
  const std::vector<std::string> platforms = platform_tags(target);
  const bool cpython = target.implementation == "cpython";
  const std::string interpreter = (cpython ? "cp" : "pp") + xy;
  auto add = [&](std::string py, std::string abi, const std::string& platform) {
    tags_.push_back({std::move(py), std::move(abi), platform});
  };
  if (cpython) {
    // packaging.tags.cpython_tags
    for (const auto& p : platforms) add(interpreter, interpreter, p);
    const bool abi3 = major == 3 && minor >= 2;
    if (abi3)
      for (const auto& p : platforms) add(interpreter, "abi3", p);
    for (const auto& p : platforms) add(interpreter, "none", p);
    if (abi3)
      for (uint64_t m = minor - 1; m >= 2; --m)
        for (const auto& p : platforms) add("cp3" + std::to_string(m), "abi3", p);
  } else {
    for (const auto& p : platforms) add(interpreter, "none", p);
  }
  // packaging.tags.compatible_tags
  std::vector<std::string> pythons = {"py" + xy, "py" + std::to_string(major)};
  for (uint64_t m = minor; m-- > 0;) pythons.push_back("py" + std::to_string(major) + std::to_string(m));
  for (const auto& py : pythons)
    for (const auto& p : platforms) add(py, "none", p);
  add(interpreter, "none", "any");
  for (const auto& py : pythons) add(py, "none", "any");
  for (size_t i = 0; i < tags_.size(); ++i) ranks_.emplace(tags_[i].to_string(), i);
}

std::optional<size_t> SupportedTags::rank(const WheelFilename& wheel) const {
  std::optional<size_t> best;
  for (const auto& tag : wheel.tags)
    if (auto it = ranks_.find(tag.to_string()); it != ranks_.end())
      if (!best || it->second < *best) best = it->second;
  return best;
}

std::optional<std::pair<int, int>> manylinux_glibc(std::string_view platform_tag) {
  if (platform_tag.starts_with("manylinux1_")) return std::pair{2, 5};
  if (platform_tag.starts_with("manylinux2010_")) return std::pair{2, 12};
  if (platform_tag.starts_with("manylinux2014_")) return std::pair{2, 17};
  if (!platform_tag.starts_with("manylinux_")) return std::nullopt;
  std::vector<std::string> parts = split(platform_tag.substr(10), '_');
  if (parts.size() < 3) return std::nullopt;
  auto major = to_int(parts[0]);
  auto minor = to_int(parts[1]);
  if (!major || !minor) return std::nullopt;
  return std::pair{*major, *minor};
}

}  // namespace envbuild::conda::pypi
