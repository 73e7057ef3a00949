#include "conda/noarch_python.hpp"

#include <charconv>

namespace envbuild::conda {

namespace {

Result<int> parse_number(std::string_view text, std::string_view version) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data())
    return fail(Errc::InvalidInput,
                "python version '" + std::string(version) + "': expected MAJOR.MINOR[.PATCH]");
  return value;
}

}  // namespace

Result<PythonInfo> PythonInfo::from_version(std::string_view version,
                                            std::string site_packages_path) {
  auto dot = version.find('.');
  if (dot == std::string_view::npos)
    return fail(Errc::InvalidInput,
                "python version '" + std::string(version) + "': expected MAJOR.MINOR[.PATCH]");
  std::string_view minor_text = version.substr(dot + 1);
  size_t digits = 0;
  while (digits < minor_text.size() && minor_text[digits] >= '0' && minor_text[digits] <= '9')
    ++digits;
  PythonInfo info;
  ENVB_ASSIGN_OR_RETURN(info.major, parse_number(version.substr(0, dot), version));
  ENVB_ASSIGN_OR_RETURN(info.minor, parse_number(minor_text.substr(0, digits), version));
  info.site_packages_path = std::move(site_packages_path);
  return info;
}

std::string PythonInfo::site_packages(TargetOs target) const {
  if (!site_packages_path.empty()) return site_packages_path;
  if (target == TargetOs::Windows) return "Lib/site-packages";
  return "lib/python" + std::to_string(major) + "." + std::to_string(minor) + "/site-packages";
}

std::string noarch_python_target_path(std::string_view package_path, const PythonInfo& python,
                                      TargetOs target) {
  constexpr std::string_view kSitePackages = "site-packages/";
  constexpr std::string_view kScripts = "python-scripts/";
  if (package_path.starts_with(kSitePackages))
    return python.site_packages(target) + "/" +
           std::string(package_path.substr(kSitePackages.size()));
  if (package_path.starts_with(kScripts))
    return std::string(target == TargetOs::Windows ? "Scripts/" : "bin/") +
           std::string(package_path.substr(kScripts.size()));
  return std::string(package_path);
}

std::optional<std::string> pyc_path(std::string_view py_path, const PythonInfo& python) {
  if (!py_path.ends_with(".py")) return std::nullopt;
  auto slash = py_path.rfind('/');
  std::string_view dir =
      slash == std::string_view::npos ? std::string_view() : py_path.substr(0, slash + 1);
  std::string_view file = slash == std::string_view::npos ? py_path : py_path.substr(slash + 1);
  std::string_view stem = file.substr(0, file.size() - 3);
  return std::string(dir) + "__pycache__/" + std::string(stem) + ".cpython-" +
         std::to_string(python.major) + std::to_string(python.minor) + ".pyc";
}

std::string python_shebang(std::string_view prefix, TargetOs target) {
  std::string python = std::string(prefix) + "/bin/python";
  std::string direct = "#!" + python;
  if (direct.size() <= max_shebang_length(target) && python.find(' ') == std::string::npos)
    return direct + "\n";
  // The shell runs line 2 (`'''exec' ...` is the word `exec` after quote removal); python sees
  // a string literal and goes on. The trick distlib uses for long or spaced interpreter paths.
  std::string quoted = "\"" + python + "\"";
  return "#!/bin/sh\n'''exec' " + quoted + " \"$0\" \"$@\" #'''\n";
}

Result<GeneratedFile> entry_point_script(const EntryPoint& entry_point, std::string_view prefix,
                                         TargetOs target) {
  if (target == TargetOs::Windows)
    return fail(Errc::Unsupported, "entry point '" + entry_point.command +
                                       "': Windows launchers (.exe + -script.py) are not "
                                       "implemented");
  // "Class.method" imports Class and calls Class.method().
  std::string_view function = entry_point.function;
  std::string_view imported = function.substr(0, function.find('.'));
  GeneratedFile file;
  file.path = "bin/" + entry_point.command;
  file.mode = 0755;
  file.content = python_shebang(prefix, target) +
                 "# -*- coding: utf-8 -*-\n"
                 "import re\n"
                 "import sys\n"
                 "\n"
                 "from " +
                 entry_point.module + " import " + std::string(imported) +
                 "\n"
                 "\n"
                 "if __name__ == '__main__':\n"
                 "    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n"
                 "    sys.exit(" +
                 std::string(function) + "())\n";
  return file;
}

}  // namespace envbuild::conda
