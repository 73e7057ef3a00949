#include "conda/noarch_python.hpp"

#include <unistd.h>

#include "conda/package_metadata.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

TEST(PythonInfo, FromVersion) {
  auto p = PythonInfo::from_version("3.11.9");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->major, 3);
  EXPECT_EQ(p->minor, 11);
  EXPECT_EQ(PythonInfo::from_version("3.13.0rc1")->minor, 13);
  EXPECT_EQ(PythonInfo::from_version("3.9")->site_packages(TargetOs::Linux),
            "lib/python3.9/site-packages");
  EXPECT_FALSE(PythonInfo::from_version("three"));
  EXPECT_FALSE(PythonInfo::from_version("3"));
}

TEST(NoarchPythonTargetPath, Table) {
  PythonInfo py311 = *PythonInfo::from_version("3.11.4");
  PythonInfo free_threaded = *PythonInfo::from_version("3.13.1", "lib/python3.13t/site-packages");
  struct Case {
    std::string_view in;
    const PythonInfo* python;
    TargetOs target;
    std::string_view want;
  };
  const Case cases[] = {
      {"site-packages/flask/__init__.py", &py311, TargetOs::Linux,
       "lib/python3.11/site-packages/flask/__init__.py"},
      {"python-scripts/flask", &py311, TargetOs::Linux, "bin/flask"},
      {"info/index.json", &py311, TargetOs::Linux, "info/index.json"},
      {"share/doc/x", &py311, TargetOs::Linux, "share/doc/x"},
      {"site-packages-extra/x", &py311, TargetOs::Linux, "site-packages-extra/x"},
      {"site-packages/a.py", &free_threaded, TargetOs::Linux, "lib/python3.13t/site-packages/a.py"},
      {"site-packages/a.py", &py311, TargetOs::Windows, "Lib/site-packages/a.py"},
      {"python-scripts/a", &py311, TargetOs::Windows, "Scripts/a"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(noarch_python_target_path(c.in, *c.python, c.target), c.want);
  }
}

TEST(PycPath, Table) {
  PythonInfo py = *PythonInfo::from_version("3.11.4");
  EXPECT_EQ(pyc_path("lib/python3.11/site-packages/a/b.py", py),
            "lib/python3.11/site-packages/a/__pycache__/b.cpython-311.pyc");
  EXPECT_EQ(pyc_path("b.py", py), "__pycache__/b.cpython-311.pyc");
  EXPECT_FALSE(pyc_path("a/b.pyc", py));
  EXPECT_FALSE(pyc_path("a/data.json", py));
}

TEST(EntryPointParse, Table) {
  struct Case {
    std::string_view in;
    EntryPoint want;
  };
  const Case cases[] = {
      {"flask = flask.cli:main", {"flask", "flask.cli", "main"}},
      {"pip=pip._internal.cli.main:main", {"pip", "pip._internal.cli.main", "main"}},
      {"tool = pkg.mod:Class.run", {"tool", "pkg.mod", "Class.run"}},
      {"x = m:f [extra]", {"x", "m", "f"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto got = EntryPoint::parse(c.in);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, c.want);
  }
  for (std::string_view bad : {"flask", "flask = flask.cli", "= m:f", "../x = m:f", "a/b = m:f"}) {
    SCOPED_TRACE(bad);
    auto got = EntryPoint::parse(bad);
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().message().find(std::string(bad)), std::string::npos);
  }
}

TEST(PythonShebang, ShortLongAndSpaced) {
  EXPECT_EQ(python_shebang("/opt/env"), "#!/opt/env/bin/python\n");
  std::string long_prefix = "/" + std::string(120, 'p');
  std::string polyglot = python_shebang(long_prefix);
  EXPECT_EQ(polyglot,
            "#!/bin/sh\n'''exec' \"" + long_prefix + "/bin/python\" \"$0\" \"$@\" #'''\n");
  EXPECT_EQ(python_shebang("/my env"),
            "#!/bin/sh\n'''exec' \"/my env/bin/python\" \"$0\" \"$@\" #'''\n");
  // macOS honours 512 bytes.
  EXPECT_EQ(python_shebang(long_prefix, TargetOs::MacOs), "#!" + long_prefix + "/bin/python\n");
}

TEST(EntryPointScript, Content) {
  auto file = entry_point_script({"flask", "flask.cli", "main"}, "/opt/env");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->path, "bin/flask");
  EXPECT_EQ(file->mode, 0755u);
  EXPECT_EQ(file->content,
            "#!/opt/env/bin/python\n"
            "# -*- coding: utf-8 -*-\n"
            "import re\n"
            "import sys\n"
            "\n"
            "from flask.cli import main\n"
            "\n"
            "if __name__ == '__main__':\n"
            "    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n"
            "    sys.exit(main())\n");
  auto method = entry_point_script({"t", "pkg.mod", "Class.run"}, "/e");
  ASSERT_TRUE(method);
  EXPECT_NE(method->content.find("from pkg.mod import Class\n"), std::string::npos);
  EXPECT_NE(method->content.find("sys.exit(Class.run())"), std::string::npos);
  EXPECT_FALSE(entry_point_script({"t", "m", "f"}, "C:/e", TargetOs::Windows));
}

// The generated launchers run: a real python, a fake module, both shebang forms.
TEST(EntryPointScript, RunsWithRealPython) {
  ENVB_REQUIRE_TOOL("python3");
  namespace fs = std::filesystem;
  const std::string kSubs[] = {"short", "with space/" + std::string(120, 'x')};
  for (const std::string& sub : kSubs) {
    SCOPED_TRACE(sub);
    fs::path prefix = fs::temp_directory_path() / ("envb-ep-" + std::to_string(::getpid())) / sub;
    fs::create_directories(prefix / "bin");
    auto python = testing::run_command("command -v python3").output;
    python.erase(python.find_last_not_of("\n") + 1);
    fs::create_symlink(python, prefix / "bin/python");
    testing::write_text(prefix / "lib/mymod.py",
                        "def main():\n    print('hello from main')\n    return 3\n");
    auto file = entry_point_script({"hello", "mymod", "main"}, prefix.string());
    ASSERT_TRUE(file);
    testing::write_text(prefix / file->path, file->content);
    fs::permissions(prefix / file->path, fs::perms(file->mode));
    auto run =
        testing::run_command("PYTHONPATH=" + testing::shell_quote((prefix / "lib").string()) + " " +
                             testing::shell_quote((prefix / "bin/hello").string()));
    EXPECT_EQ(run.exit_code, 3) << run.output;
    EXPECT_EQ(run.output, "hello from main\n");
    fs::remove_all(fs::temp_directory_path() / ("envb-ep-" + std::to_string(::getpid())));
  }
}

}  // namespace
}  // namespace envbuild::conda
