// The pip: section end to end, without pip: the host's python as a conda package (the
// host-python channel) plus the tests' own wheels served by a local index in PEP 691 and PEP 503
// form. `install` puts the wheels in as pypa/installer would (and as Debian's pip chooses them);
// `lock` writes manager: pip entries that `install --lock` and `build --lock` use; `build -f`
// and `build --lock` give the same digest; the SBOM lists the wheels; envrun runs their scripts
// from the image and from a moved prefix. Hostile wheels are refused before anything is written.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "conda/lockfile_conda_lock.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/pypi.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::write_text;
using testing::q;

std::string envbuild() {
  return q(testing::binary_dir() / "envbuild");
}
std::string envrun() {
  return q(testing::binary_dir() / "envrun");
}

// Every file below `root` (relative path -> content for what the wheels installed, "" for the
// conda files), with the prefix's own path in shebangs replaced by PREFIX so that two prefixes
// compare.
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string path = fs::relative(e.path(), root).string();
    const bool from_wheel = path.find(".dist-info/") != std::string::npos || path.starts_with("bin/tool");
    std::string text = from_wheel ? read_text(e.path()) : "";
    for (size_t at = 0; (at = text.find(root.string(), at)) != std::string::npos;)
      text.replace(at, root.string().size(), "PREFIX");
    // RECORD hashes the launchers, whose shebangs name the prefix: their rows differ.
    if (path.ends_with("/RECORD"))
      for (size_t at; (at = text.find("../../../bin/")) != std::string::npos;)
        text.erase(at, text.find('\n', at) + 1 - at);
    out[path] = std::move(text);
  }
  return out;
}

class PypiEnvironmentTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::string why;
    auto channel = testing::host_python_channel(why);
    ASSERT_TRUE(channel) << why;
    channel_ = *channel;
    ASSERT_FALSE(testing::pypi_test_wheels().empty());
  }

  // An environment.yml of the host's python with `pip` lines, in `dir`.
  fs::path environment(const fs::path& dir, const std::vector<std::string>& pip,
                       const std::string& name = "pipenv") {
    std::string text = "name: " + name + "\nchannels:\n  - " + channel_.string() +
                       "\n  - nodefaults\ndependencies:\n  - python 3.*\n  - pip:\n";
    for (const auto& line : pip) text += "    - " + line + "\n";
    write_text(dir / "environment.yml", text);
    return dir / "environment.yml";
  }

  testing::CommandResult install(const std::string& input, const fs::path& prefix) {
    return run_command(envbuild() + " install --json " + input + " -p " + q(prefix) +
                       " --cache-dir " + q(dir_ / "cache") + " 2>" + q(dir_ / "stderr.txt"));
  }

  fs::path channel_;
};

TEST_F(PypiEnvironmentTest, InstallsWheelsAsPipWouldChooseThemFromJsonAndHtmlIndexes) {
  const std::vector<std::string> requirements = {"tool", "epsilon[fast]", "app", "other"};
  for (std::string format : {"json", "html"}) {
    SCOPED_TRACE(format);
    testing::PypiServer server(testing::pypi_test_wheels(), dir_ / (format + ".log"),
                               "--format " + format);
    ASSERT_NE(server.port(), 0);
    std::vector<std::string> pip = {"--index-url " + server.simple_url()};
    pip.insert(pip.end(), requirements.begin(), requirements.end());
    const fs::path prefix = dir_ / ("env-" + format);
    auto r = install("-f " + q(environment(dir_, pip)), prefix);
    ASSERT_EQ(r.exit_code, 0) << r.output << read_text(dir_ / "stderr.txt");

    // The same distributions as Debian's pip on the same index.
    std::string pip_error;
    auto want = testing::pip_dry_run(server.simple_url(), requirements, "3.11",
                                     {"manylinux2014_x86_64"}, pip_error);
    ASSERT_FALSE(want.empty()) << pip_error;
    std::vector<std::string> want_names;
    for (const auto& c : want) want_names.push_back(c.name + "==" + c.version);
    auto summary = nlohmann::json::parse(r.output);
    EXPECT_EQ(summary["pip"].get<std::vector<std::string>>(), want_names);

    // PEP 427 as pypa/installer does it.
    const fs::path site = prefix / "lib/python3.11/site-packages";
    EXPECT_EQ(read_text(site / "tool-1.0.dist-info/INSTALLER"), "envbuild\n");
    EXPECT_TRUE(fs::exists(site / "tool-1.0.dist-info/REQUESTED"));
    EXPECT_TRUE(fs::exists(site / "epsilon-1.0.dist-info/REQUESTED"));
    EXPECT_FALSE(fs::exists(site / "alpha-2.0.dist-info/REQUESTED"));  // a dependency
    EXPECT_TRUE(fs::exists(site / "tool_native.py"));                  // .data/platlib
    EXPECT_EQ(read_text(prefix / "share/tool/readme.txt"), "tool data\n");  // .data/data
    EXPECT_TRUE(fs::exists(prefix / "include/python3.11/tool/tool.h"));      // .data/headers
    const std::string record = read_text(site / "tool-1.0.dist-info/RECORD");
    EXPECT_NE(record.find("../../../bin/tool,sha256="), std::string::npos) << record;
    EXPECT_NE(record.find("tool-1.0.dist-info/RECORD,,"), std::string::npos) << record;
    EXPECT_EQ(read_text(prefix / "bin/tool-script").rfind("#!" + prefix.string() + "/bin/python\n", 0), 0u);
    for (const auto& e : fs::recursive_directory_iterator(site))
      EXPECT_NE(e.path().extension(), ".pyc") << e.path();
    for (const char* script : {"tool", "tool-script"}) {
      auto run = run_command("env -i PATH=/usr/bin:/bin " + q(prefix / "bin" / script));
      EXPECT_EQ(run.exit_code, 0) << run.output;
      EXPECT_EQ(run.output, "tool says hello\n");
    }
  }
}

// `envbuild export -p` lists the wheels a pip: section installed under `- pip:` as conda env
// export does (name==version), and with --from-history only the requested ones (REQUESTED).
TEST_F(PypiEnvironmentTest, ExportListsInstalledWheelsUnderPip) {
  testing::PypiServer server(testing::pypi_test_wheels(), dir_ / "index.log", "--format json");
  ASSERT_NE(server.port(), 0);
  const fs::path prefix = dir_ / "env";
  auto r = install("-f " + q(environment(dir_, {"--index-url " + server.simple_url(), "app"})),
                   prefix);
  ASSERT_EQ(r.exit_code, 0) << r.output << read_text(dir_ / "stderr.txt");
  auto installed = nlohmann::json::parse(r.output)["pip"].get<std::vector<std::string>>();
  ASSERT_GT(installed.size(), 1u);  // app and what it requires

  auto all = run_command(envbuild() + " export -p " + q(prefix));
  ASSERT_EQ(all.exit_code, 0) << all.output;
  const std::string pip_list = all.output.substr(all.output.find("  - pip:\n"));
  for (const auto& wheel : installed)
    EXPECT_NE(pip_list.find("      - " + wheel + "\n"), std::string::npos) << all.output;

  auto history = run_command(envbuild() + " export -p " + q(prefix) + " --from-history");
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_NE(history.output.find("      - app=="), std::string::npos) << history.output;
  for (const auto& wheel : installed)
    if (!wheel.starts_with("app==")) {
      EXPECT_EQ(history.output.find(wheel), std::string::npos) << history.output;
    }
}

TEST_F(PypiEnvironmentTest, ExportOfALockKeepsItsWheels) {
  // Given a conda-lock.yml with pip entries, expect export to list them in environment.yml
  // (only the requested ones with --from-history), to write them back unchanged in a
  // conda-lock.yml, and to warn that @EXPLICIT leaves them out.
  testing::PypiServer server(testing::pypi_test_wheels(), dir_ / "index.log");
  ASSERT_NE(server.port(), 0);
  environment(dir_, {"--index-url " + server.simple_url(), "tool", "epsilon[fast]"});
  const std::string cd = "cd " + q(dir_) + " && ";
  auto locked = run_command(cd + envbuild() + " lock -f environment.yml -p linux-64 --cache-dir cache 2>&1");
  ASSERT_EQ(locked.exit_code, 0) << locked.output;

  auto yml = run_command(cd + envbuild() + " export --lock conda-lock.yml");
  ASSERT_EQ(yml.exit_code, 0) << yml.output;
  for (const char* wheel : {"tool==1.0", "alpha==2.0", "beta==2.0", "epsilon==1.0", "zeta==0.9"})
    EXPECT_NE(yml.output.find("      - " + std::string(wheel) + "\n"), std::string::npos) << yml.output;
  auto history = run_command(cd + envbuild() + " export --lock conda-lock.yml --from-history");
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_NE(history.output.find("  - pip:\n      - epsilon==1.0\n      - tool==1.0\n"), std::string::npos)
      << history.output;

  auto again = run_command(cd + envbuild() + " export --lock conda-lock.yml --format conda-lock -o again.yml");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  auto original = conda::parse_conda_lock(read_text(dir_ / "conda-lock.yml"), "conda-lock.yml");
  auto exported = conda::parse_conda_lock(read_text(dir_ / "again.yml"), "again.yml");
  ASSERT_TRUE(original && exported);
  EXPECT_EQ(exported->packages_for("linux-64", conda::CondaLockPackage::Manager::Pip).size(), 5u);
  EXPECT_EQ(exported->packages, original->packages);

  auto explicit_file = run_command(cd + envbuild() + " export --lock conda-lock.yml --format explicit 2>&1");
  ASSERT_EQ(explicit_file.exit_code, 0) << explicit_file.output;
  EXPECT_NE(explicit_file.output.find("wheels are left out"), std::string::npos) << explicit_file.output;
}

TEST_F(PypiEnvironmentTest, LockInstallBuildAndEnvrunAgree) {
  testing::PypiServer server(testing::pypi_test_wheels(), dir_ / "index.log");
  ASSERT_NE(server.port(), 0);
  const fs::path file =
      environment(dir_, {"--index-url " + server.simple_url(), "tool", "epsilon[fast]"});
  auto locked = run_command("cd " + q(dir_) + " && " + envbuild() +
                            " lock -f environment.yml -p linux-64 --cache-dir cache 2>&1");
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  const std::string lock = read_text(dir_ / "conda-lock.yml");
  for (const char* name : {"tool", "alpha", "beta", "epsilon", "zeta"})
    EXPECT_NE(lock.find("- name: " + std::string(name) + "\n    version:"), std::string::npos) << lock;
  EXPECT_NE(lock.find("manager: pip"), std::string::npos) << lock;
  EXPECT_NE(lock.find("envbuild.pip.requested: epsilon tool"), std::string::npos) << lock;

  // install --lock resolves nothing and installs what install -f does.
  ASSERT_EQ(install("-f " + q(file), dir_ / "from-file").exit_code, 0) << read_text(dir_ / "stderr.txt");
  ASSERT_EQ(install("--lock " + q(dir_ / "conda-lock.yml"), dir_ / "from-lock").exit_code, 0)
      << read_text(dir_ / "stderr.txt");
  EXPECT_EQ(tree(dir_ / "from-file"), tree(dir_ / "from-lock"));

  // build -f and build --lock: one digest; the SBOM lists the wheels.
  auto build = [&](const std::string& input, const std::string& out) {
    return run_command("SOURCE_DATE_EPOCH=1700000000 " + envbuild() + " build " + input +
                       " -t pip:1 --cache-dir " + q(dir_ / "cache") + " -o " +
                       q("oci:" + (dir_ / out).string() + ":1") + " --sbom " +
                       q(dir_ / (out + ".spdx.json")) + " 2>" + q(dir_ / "build.txt"));
  };
  auto from_file = build("-f " + q(file), "img-file");
  ASSERT_EQ(from_file.exit_code, 0) << read_text(dir_ / "build.txt");
  auto from_lock = build("--lock " + q(dir_ / "conda-lock.yml"), "img-lock");
  ASSERT_EQ(from_lock.exit_code, 0) << read_text(dir_ / "build.txt");
  EXPECT_EQ(from_file.output, from_lock.output);
  const std::string sbom = read_text(dir_ / "img-file.spdx.json");
  for (const char* purl : {"pkg:pypi/tool@1.0", "pkg:pypi/alpha@2.0", "pkg:pypi/zeta@0.9"})
    EXPECT_NE(sbom.find(purl), std::string::npos) << purl;
  // inspect names each wheel layer's wheel, as it names a package layer's packages.
  auto inspected = run_command(envbuild() + " inspect --json " +
                               q("oci:" + (dir_ / "img-file").string() + ":1"));
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  std::set<std::string> layered;
  const auto view = nlohmann::json::parse(inspected.output);
  for (const auto& layer : view["layers"])
    for (const auto& member : layer["packages"]) layered.insert(member.get<std::string>());
  EXPECT_TRUE(layered.count("tool-1.0 (wheel)")) << inspected.output;
  EXPECT_TRUE(layered.count("alpha-2.0 (wheel)")) << inspected.output;

  // The scripts run from the image and from a moved prefix (relocated shebangs).
  const std::string cache = "ENVRUN_CACHE=" + q(dir_ / "envrun-cache") + " ";
  auto image = run_command(cache + envrun() + " " + q("oci:" + (dir_ / "img-file").string() + ":1") +
                           " -- tool 2>/dev/null");
  EXPECT_EQ(image.exit_code, 0) << image.output;
  EXPECT_EQ(image.output, "tool says hello\n");
  fs::rename(dir_ / "from-lock", dir_ / "moved");
  auto moved = run_command(cache + envrun() + " " + q(dir_ / "moved") + " -- tool-script 2>/dev/null");
  EXPECT_EQ(moved.exit_code, 0) << moved.output;
  EXPECT_EQ(moved.output, "tool says hello\n");

  // A SquashFS image holds the wheels too, with their relocation records in the index.
  ASSERT_TRUE(testing::have_tool("unsquashfs")) << "run scripts/bootstrap";
  auto sqfs = run_command("SOURCE_DATE_EPOCH=1700000000 " + envbuild() + " build -q --lock " +
                          q(dir_ / "conda-lock.yml") + " -t pip:1 --cache-dir " + q(dir_ / "cache") +
                          " -o " + q("squashfs:" + (dir_ / "env.sqfs").string()) + " 2>&1");
  ASSERT_EQ(sqfs.exit_code, 0) << sqfs.output;
  auto listing = run_command("unsquashfs -l -d '' " + q(dir_ / "env.sqfs"));
  ASSERT_EQ(listing.exit_code, 0) << listing.output;
  for (std::string want : {"/lib/python3.11/site-packages/tool-1.0.dist-info/RECORD\n",
                           "/lib/python3.11/site-packages/zeta-0.9.dist-info/METADATA\n",
                           "/bin/tool-script\n"})
    EXPECT_NE(listing.output.find(want), std::string::npos) << want << listing.output;
  auto index = run_command("unsquashfs -cat " + q(dir_ / "env.sqfs") +
                           " conda-meta/envbuild-relocations.json");
  EXPECT_NE(index.output.find("tool-script"), std::string::npos) << index.output;
}

// Issue 20: a pixi.lock's pypi packages install as the wheels they name: the same prefix as the
// conda-lock.yml of the same environment (what was requested is inferred: no other wheel needs
// it). A source distribution is refused by name.
TEST_F(PypiEnvironmentTest, PixiLockPypiPackagesInstallLikeTheCondaLock) {
  testing::PypiServer server(testing::pypi_test_wheels(), dir_ / "index.log");
  ASSERT_NE(server.port(), 0);
  environment(dir_, {"--index-url " + server.simple_url(), "tool", "epsilon[fast]"});
  auto locked = run_command("cd " + q(dir_) + " && " + envbuild() +
                            " lock -f environment.yml -p linux-64 --cache-dir cache 2>&1");
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  auto lock = conda::parse_conda_lock(read_text(dir_ / "conda-lock.yml"), "conda-lock.yml");
  ASSERT_TRUE(lock) << lock.error().to_string();
  std::string refs, packages;
  for (const auto* p : lock->packages_for("linux-64", conda::CondaLockPackage::Manager::Conda)) {
    refs += "      - conda: " + p->url + "\n";
    packages += "- conda: " + p->url + "\n  sha256: " + p->sha256 + "\n";
  }
  size_t wheels = 0;
  for (const auto* p : lock->packages_for("linux-64", conda::CondaLockPackage::Manager::Pip)) {
    refs += "      - pypi: " + p->url + "\n";
    packages += "- pypi: " + p->url + "\n  name: " + p->name + "\n  version: " + p->version +
                "\n  sha256: " + p->sha256 + "\n";
    if (!p->dependencies.empty()) packages += "  requires_dist:\n";
    for (const auto& [name, spec] : p->dependencies) {
      EXPECT_FALSE(spec.empty()) << name << ": conda-lock writes '*' for no constraint";
      packages += "  - " + name + (spec == "*" ? "" : spec) + "\n";
    }
    ++wheels;
  }
  EXPECT_EQ(wheels, 5u);
  EXPECT_NE(read_text(dir_ / "conda-lock.yml").find("alpha: '*'"), std::string::npos);  // tool's
  const std::string head = "version: 6\nenvironments:\n  default:\n    channels:\n    - url: file://" +
                           channel_.string() + "/\n    packages:\n      linux-64:\n";
  write_text(dir_ / "pixi.lock", head + refs + "packages:\n" + packages);
  ASSERT_EQ(install("--lock " + q(dir_ / "conda-lock.yml"), dir_ / "from-conda-lock").exit_code, 0)
      << read_text(dir_ / "stderr.txt");
  ASSERT_EQ(install("--lock " + q(dir_ / "pixi.lock"), dir_ / "from-pixi-lock").exit_code, 0)
      << read_text(dir_ / "stderr.txt");
  EXPECT_EQ(tree(dir_ / "from-conda-lock"), tree(dir_ / "from-pixi-lock"));

  // A source distribution: named, nothing installed.
  write_text(dir_ / "sdist.lock",
             head + refs + "      - pypi: https://example.invalid/tool-1.0.tar.gz\npackages:\n" +
                 packages + "- pypi: https://example.invalid/tool-1.0.tar.gz\n  name: tool\n"
                 "  version: '1.0'\n  sha256: " + std::string(64, 'a') + "\n");
  auto sdist = install("--lock " + q(dir_ / "sdist.lock"), dir_ / "sdist");
  EXPECT_NE(sdist.exit_code, 0);
  const std::string why = read_text(dir_ / "stderr.txt");
  EXPECT_NE(why.find("pypi package tool 1.0 is not a wheel"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(dir_ / "sdist"));
}

TEST_F(PypiEnvironmentTest, PipFindLinksReplacesTheSectionsFindLinksInEveryCommand) {
  // Given a file whose --find-links folder is not there (a build system keeps the wheels
  // elsewhere, as Bazel's envbuild_image does), expect every command to name the missing folder,
  // and to use the wheels with --pip-find-links DIR, as -c replaces the file's channels.
  testing::make_wheels(R"([{"name": "solo", "version": "1.0"}])", dir_ / "elsewhere");
  const fs::path file = environment(dir_, {"--no-index", "--find-links ./wheels", "solo"});
  const std::string cache = " --cache-dir " + q(dir_ / "cache");
  const std::vector<std::string> commands = {
      "solve --json -f " + q(file),
      "lock -f " + q(file) + " -o " + q(dir_ / "conda-lock.yml"),
      "install -p " + q(dir_ / "prefix") + " -f " + q(file),
      "build -f " + q(file) + " -t solo:1 --output oci:" + (dir_ / "image").string() + ":1",
  };
  for (const std::string& command : commands) {
    SCOPED_TRACE(command);
    auto missing = run_command(envbuild() + " " + command + cache + " 2>&1");
    EXPECT_NE(missing.exit_code, 0) << missing.output;
    EXPECT_NE(missing.output.find("--find-links " + (dir_ / "wheels").string() + ": not a directory"),
              std::string::npos)
        << missing.output;
    auto given = run_command(envbuild() + " " + command + cache + " --pip-find-links " +
                             q(dir_ / "elsewhere") + " 2>&1");
    EXPECT_EQ(given.exit_code, 0) << given.output;
  }
  EXPECT_TRUE(fs::exists(dir_ / "prefix/lib/python3.11/site-packages/solo-1.0.dist-info/METADATA"));
  EXPECT_NE(read_text(dir_ / "conda-lock.yml").find("solo-1.0-py3-none-any.whl"), std::string::npos);
}

TEST_F(PypiEnvironmentTest, HostileWheelsAreRefusedBeforeAnythingIsWritten) {
  // Given wheels that would overwrite the conda python, use a scheme PEP 427 does not have, or
  // name a path outside the prefix, expect an error naming the wheel and no prefix.
  testing::make_wheels(R"([
    {"name": "clobber", "version": "1.0", "data": {"data/bin/python3.11": "#!/bin/sh\n"}},
    {"name": "scheme", "version": "1.0", "data": {"elsewhere/x.txt": "x"}},
    {"name": "escape", "version": "1.0", "files": {"../../../../escaped.txt": "x"}}
  ])",
                       dir_ / "wheels");
  struct Case {
    std::string requirement;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"clobber", "the wheel clobber-1.0 (wheel) would overwrite 'bin/python3.11' of python-3.11"},
      {"scheme", "unknown .data scheme 'elsewhere'"},
      {"escape", "escape"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.requirement);
    const fs::path file =
        environment(dir_, {"--no-index", "--find-links " + (dir_ / "wheels").string(), c.requirement});
    auto r = run_command(envbuild() + " install -p " + q(dir_ / "p") + " -f " + q(file) +
                         " --cache-dir " + q(dir_ / "cache") + " 2>&1");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "p/conda-meta/history"));
  }
  EXPECT_FALSE(fs::exists(dir_ / "escaped.txt"));
  EXPECT_FALSE(fs::exists(dir_.parent_path() / "escaped.txt"));
}

}  // namespace
}  // namespace envbuild::builder
