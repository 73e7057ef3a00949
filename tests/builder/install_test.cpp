// envbuild install end to end: real conda-forge packages plus the host's python (a local channel
// made by examples/demo/make_channel.py) give a prefix whose programs run in place, and again
// after the prefix is moved and relocated; the installed tree equals `cph x` + the placeholder
// replaced; and the planning rules (hostile paths, noarch without python, clobbers, order).

#include "builder/install/install.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "conda/relocate_prefix.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/packages.hpp"
#include "tests/testing/sentinel.hpp"
#include "tests/testing/shared_fixture.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::symlink_entry;
using testing::TarEntry;
using testing::TempDirTest;
using testing::write_text;

fs::path envbuild_bin() {
  return testing::binary_dir() / "envbuild";
}

// One environment installed once per test run (shared_fixture.hpp) and shared by the tests,
// which only read it: one that changes it works on a copy in its own scratch directory (dir_).
class RealEnvironmentTest : public TempDirTest {
 protected:
  static void SetUpTestSuite() {
    auto channel = testing::host_python_channel(*error_);
    if (!channel) return;
    const std::string dependencies =
        "dependencies:\n  - python 3.*\n  - openssl\n  - xz\n  - ncurses\n  - readline\n"
        "  - libzlib\n  - pip\nvariables:\n  ENVB_TEST_VAR: hello\n";
    const std::string inputs = "envbuild install --json\n" + channel->string() + "\n" +
                               dependencies + testing::file_identity(envbuild_bin());
    auto made = testing::shared_fixture("real-environment", inputs, [&](const fs::path& root) {
      write_text(root / "environment.yml", "name: real\nchannels:\n  - " + channel->string() +
                                               "\n  - " +
                                               testing::conda_forge_subset_channel(root).string() +
                                               "\n  - nodefaults\n" + dependencies);
      auto r = run_command(shell_quote(envbuild_bin().string()) + " install --json --prefix " +
                           shell_quote((root / "env").string()) + " -f " +
                           shell_quote((root / "environment.yml").string()) + " --cache-dir " +
                           shell_quote((root / "cache").string()) + " 2>" +
                           shell_quote((root / "stderr.txt").string()) + " >" +
                           shell_quote((root / "install.json").string()));
      if (r.exit_code != 0)
        return Result<void>(fail(Errc::Internal, "envbuild install failed:\n" + r.output +
                                                     read_text(root / "stderr.txt")));
      return ok();
    });
    if (!made) {
      *error_ = made.error().to_string();
      return;
    }
    root_ = new fs::path(*made);
    *output_ = read_text(*root_ / "install.json");
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_TRUE(error_->empty()) << *error_;
  }
  static fs::path env() { return *root_ / "env"; }

  static fs::path* root_;
  static std::string* output_;
  static std::string* error_;
};
fs::path* RealEnvironmentTest::root_ = nullptr;
std::string* RealEnvironmentTest::output_ = new std::string;
std::string* RealEnvironmentTest::error_ = new std::string;

// The programs the issue names, run from `prefix` with a clean environment.
void expect_programs_work(const fs::path& prefix) {
  SCOPED_TRACE(prefix.string());
  // The shared prefix is only read: Python must not rewrite a stale .pyc in it while another test
  // copies the tree (cp saw python's temporary .pyc vanish under `ctest -j2`).
  std::string run = "env -i HOME=/nonexistent PATH=/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 ";
  auto openssl = run_command(run + shell_quote((prefix / "bin/openssl").string()) + " version -d");
  EXPECT_EQ(openssl.exit_code, 0) << openssl.output;
  EXPECT_NE(openssl.output.find(prefix.string() + "/ssl"), std::string::npos) << openssl.output;
  auto xz = run_command(run + shell_quote((prefix / "bin/xz").string()) + " --version");
  EXPECT_EQ(xz.exit_code, 0) << xz.output;
  EXPECT_NE(xz.output.find("5.2.6"), std::string::npos) << xz.output;
  // infocmp finds xterm through the TERMINFO path compiled into libtinfo (a binary placeholder).
  auto infocmp = run_command(run + shell_quote((prefix / "bin/infocmp").string()) + " xterm");
  EXPECT_EQ(infocmp.exit_code, 0) << infocmp.output;
  EXPECT_NE(infocmp.output.find(prefix.string() + "/share/terminfo"), std::string::npos)
      << infocmp.output;
  auto pip = run_command(run + shell_quote((prefix / "bin/python").string()) + " -m pip --version");
  EXPECT_EQ(pip.exit_code, 0) << pip.output;
  EXPECT_NE(pip.output.find("pip 25.3 from " + prefix.string() + "/lib/python"), std::string::npos)
      << pip.output;
}

TEST_F(RealEnvironmentTest, ProgramsRunFromThePrefix) {
  expect_programs_work(env());
  auto summary = nlohmann::json::parse(*output_);
  EXPECT_EQ(summary["prefix"], env().string());
  EXPECT_GT(summary["hardlinked"].get<int>(), 100);
  EXPECT_GT(summary["patched"].get<int>(), 5);
  std::vector<std::string> names;
  for (const auto& p : summary["packages"]) names.push_back(p["name"]);
  for (const char* want : {"python", "openssl", "xz", "ncurses", "readline", "pip", "libzlib"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  // Link order is topological: every package after its dependencies.
  auto pos = [&](const std::string& n) { return std::find(names.begin(), names.end(), n); };
  EXPECT_LT(pos("ncurses"), pos("readline"));
  EXPECT_LT(pos("python"), pos("pip"));
}

TEST_F(RealEnvironmentTest, CondaMetaHistoryAndVariables) {
  EXPECT_TRUE(fs::exists(env() / "conda-meta/history"));
  auto pip_meta = env() / "conda-meta/pip-25.3-pyh8b19718_0.json";
  ASSERT_TRUE(fs::exists(pip_meta));
  auto j = nlohmann::json::parse(read_text(pip_meta));
  EXPECT_EQ(j["requested_spec"], "pip");
  EXPECT_EQ(j["noarch"], "python");
  bool has_site_packages = false;
  for (const auto& f : j["files"])
    if (f.get<std::string>().rfind("lib/python3.", 0) == 0) has_site_packages = true;
  EXPECT_TRUE(has_site_packages) << "noarch python files must be remapped into site-packages";
  // Its .py files were compiled by the env's python, and the .pyc files recorded (as conda does).
  size_t pyc = 0;
  for (const auto& f : j["files"]) {
    std::string path = f.get<std::string>();
    if (path.find("/__pycache__/") != std::string::npos && path.ends_with(".pyc")) {
      ++pyc;
      EXPECT_TRUE(fs::exists(env() / path)) << path;
    }
  }
  EXPECT_GT(pyc, 100u);
  bool pyc_typed = false;
  for (const auto& p : j["paths_data"]["paths"])
    if (p["path_type"] == "pyc_file") pyc_typed = true;
  EXPECT_TRUE(pyc_typed);
  auto state = nlohmann::json::parse(read_text(env() / "conda-meta/state"));
  EXPECT_EQ(state["env_vars"]["ENVB_TEST_VAR"], "hello");
  EXPECT_FALSE(fs::exists(env() / ".envbuild-staging"));
  auto index = conda::read_relocation_index(env());
  ASSERT_TRUE(index && *index) << (index ? "no index" : index.error().to_string());
  EXPECT_EQ((*index)->prefix, env().string());
}

// Given the installed prefix copied elsewhere (a move, keeping the original for the other tests)
// and relocate_prefix() run on the copy, expect the same programs to work there and to know
// their new place, and nothing in the copy to still name the old prefix where a record was.
TEST_F(RealEnvironmentTest, WorksAfterMoveAndRelocate) {
  fs::path moved = dir_ / "moved-elsewhere";
  auto cp = run_command("cp -a " + shell_quote(env().string()) + " " + shell_quote(moved.string()));
  ASSERT_EQ(cp.exit_code, 0) << cp.output;
  auto stats = conda::relocate_prefix(moved, "", moved.string());
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_GT(stats->binary_files, 0u);
  EXPECT_GT(stats->text_files, 0u);
  expect_programs_work(moved);
  auto index = conda::read_relocation_index(moved);
  ASSERT_TRUE(index && *index);
  EXPECT_EQ((*index)->prefix, moved.string());
  for (const auto& record : (*index)->files) {
    std::string content = read_text(moved / record.path);
    EXPECT_EQ(content.find(env().string() + "/"), std::string::npos) << record.path;
  }
  // Moving again (B -> C) also works, and a too-long prefix is refused without changes.
  fs::path again = dir_ / "m2";
  fs::rename(moved, again);
  ASSERT_TRUE(conda::relocate_prefix(again, moved.string(), again.string()));
  expect_programs_work(again);
  auto too_long = conda::relocate_prefix(again, "", "/" + std::string(400, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), Errc::InvalidInput);
  expect_programs_work(again);
}

// Replaces the placeholder the way conda does (independent of conda/prefix_replace): text files
// everywhere; binary files per C string, padded with NULs to keep the length.
std::string conda_replace(std::string data, const std::string& placeholder,
                          const std::string& prefix, const std::string& mode) {
  if (mode == "text") {
    for (size_t at = data.find(placeholder); at != std::string::npos;
         at = data.find(placeholder, at + prefix.size()))
      data.replace(at, placeholder.size(), prefix);
    return data;
  }
  std::string out;
  size_t i = 0;
  while (i < data.size()) {
    size_t at = data.find(placeholder, i);
    if (at == std::string::npos) break;
    size_t end = data.find('\0', at);
    if (end == std::string::npos) end = data.size();
    std::string s = data.substr(at, end - at);
    size_t count = 0;
    for (size_t p = s.find(placeholder); p != std::string::npos;
         p = s.find(placeholder, p + prefix.size())) {
      s.replace(p, placeholder.size(), prefix);
      ++count;
    }
    out += data.substr(i, at - i) + s +
           std::string(count * (placeholder.size() - prefix.size()), '\0');
    i = end;
  }
  return out + data.substr(std::min(i, data.size()));
}

TEST_F(RealEnvironmentTest, TreeMatchesCphExtractWithPlaceholderReplaced) {
  ENVB_REQUIRE_TOOL("cph");
  fs::path pkgs = testing::data_dir() / "packages/channels/conda-forge-subset/linux-64";
  for (std::string fn : {"ncurses-6.5-h59595ed_0.conda", "openssl-3.3.1-h4ab18f5_1.conda",
                         "readline-8.2-h8c095d6_2.conda", "xz-5.2.6-h166bdaf_0.tar.bz2"}) {
    SCOPED_TRACE(fn);
    fs::path out = dir_ / "cph" / fn;
    fs::create_directories(out);
    auto x = run_command("cph x --dest " + shell_quote(out.string()) + " " +
                         shell_quote((pkgs / fn).string()));
    ASSERT_EQ(x.exit_code, 0) << x.output;
    // cph x puts the package in DEST/<stem>.
    fs::path tree = out;
    if (!fs::exists(tree / "info"))
      tree = out /
             fn.substr(0, fn.find(".conda") != std::string::npos ? fn.size() - 6 : fn.size() - 8);
    ASSERT_TRUE(fs::exists(tree / "info/paths.json")) << tree;
    auto paths = nlohmann::json::parse(read_text(tree / "info/paths.json"))["paths"];
    size_t compared = 0, patched = 0;
    for (const auto& p : paths) {
      std::string path = p.at("_path");
      fs::path installed = env() / path;
      fs::path extracted = tree / path;
      if (p["path_type"] == "softlink") {
        ASSERT_TRUE(fs::is_symlink(installed)) << path;
        EXPECT_EQ(fs::read_symlink(installed), fs::read_symlink(extracted)) << path;
        continue;
      }
      ASSERT_TRUE(fs::is_regular_file(installed)) << path;
      std::string want = read_text(extracted);
      if (p.contains("prefix_placeholder")) {
        want = conda_replace(want, p["prefix_placeholder"], env().string(),
                             p.value("file_mode", "text"));
        ++patched;
      }
      EXPECT_TRUE(read_text(installed) == want) << path << " differs";
      EXPECT_EQ(fs::status(installed).permissions(), fs::status(extracted).permissions()) << path;
      ++compared;
    }
    EXPECT_GT(compared, 0u);
    // The conda-meta record lists exactly the package's paths.
    std::string stem =
        fn.substr(0, fn.find(".conda") != std::string::npos ? fn.size() - 6 : fn.size() - 8);
    auto meta = nlohmann::json::parse(read_text(env() / "conda-meta" / (stem + ".json")));
    EXPECT_EQ(meta["files"].size(), paths.size());
    if (fn.rfind("ncurses", 0) == 0) {
      EXPECT_GT(patched, 0u);
    }
  }
}

// ---- planning rules, on small hand-made packages -------------------------------------------

class PlanTest : public TempDirTest {
 protected:
  // An extracted package: info/index.json + info/paths.json + files.
  fs::path make_package(const std::string& name, const std::vector<std::string>& files,
                        const std::string& noarch = "") {
    fs::path root = dir_ / "pkgs" / name;
    nlohmann::json paths = nlohmann::json::array();
    for (const auto& f : files) {
      if (common::is_safe_relative_path(f)) write_text(root / f, name + ":" + f + "\n");
      paths.push_back({{"_path", f}, {"path_type", "hardlink"}});
    }
    nlohmann::json index = {{"name", name}, {"version", "1.0"}, {"build", "0"}, {"depends", {}}};
    if (!noarch.empty()) index["noarch"] = noarch;
    write_text(root / "info/index.json", index.dump());
    write_text(root / "info/paths.json",
               nlohmann::json{{"paths", paths}, {"paths_version", 1}}.dump());
    return root;
  }
  conda::PackageRecord record(const std::string& name, std::vector<std::string> depends = {}) {
    conda::PackageRecord r;
    r.name = name;
    r.version = *conda::Version::parse("1.0");
    r.build = "0";
    r.depends = std::move(depends);
    return r;
  }
  InstallTarget target() {
    InstallTarget t;
    t.prefix = (dir_ / "prefix").string();
    t.subdir = "linux-64";
    t.staging = dir_ / "staging";
    return t;
  }
  // An extracted package holding `entries` (symlinks included) and the info/ that lists them.
  fs::path make_tree_package(const std::string& name, const std::vector<TarEntry>& entries) {
    fs::path root = dir_ / "pkgs" / name;
    testing::write_tree(root, testing::package_info(name, entries));
    testing::write_tree(root, entries);
    return root;
  }
  // Plans packages p0, p1, ... holding `packages`, in that order.
  std::vector<PackagePlan> plan_all(const std::vector<std::vector<TarEntry>>& packages) {
    std::vector<PackagePlan> plans;
    for (size_t i = 0; i < packages.size(); ++i) {
      const std::string name = "p" + std::to_string(i);
      auto plan = plan_package(record(name), make_tree_package(name, packages[i]), name, target());
      EXPECT_TRUE(plan) << plan.error().to_string();
      if (plan) plans.push_back(std::move(*plan));
    }
    return plans;
  }
  // A sentinel tree beside the prefix, where hostile packages aim; its snapshot.
  testing::TreeSnapshot make_victim() {
    return testing::snapshot_tree(testing::make_sentinel_tree(dir_ / "victim"));
  }
  // What changed in the victim since `before` ("" when nothing did).
  std::string victim_changes(const testing::TreeSnapshot& before) {
    return testing::diff_snapshots(before, testing::snapshot_tree(dir_ / "victim"));
  }
};

TEST_F(PlanTest, HostilePathInPathsJsonIsRejected) {
  for (std::string bad : {"../escape", "/etc/passwd", "lib/../../x"}) {
    SCOPED_TRACE(bad);
    fs::path pkg = make_package("evil", {"ok.txt", bad});
    auto plan = plan_package(record("evil"), pkg, "", target());
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().code(), Errc::Integrity);
    EXPECT_NE(plan.error().to_string().find(bad), std::string::npos) << plan.error().to_string();
    fs::remove_all(dir_ / "pkgs");
  }
  EXPECT_FALSE(fs::exists(dir_ / "escape"));
}

TEST_F(PlanTest, NoarchPythonWithoutPythonIsAClearError) {
  fs::path pkg = make_package("lib", {"site-packages/lib.py"}, "python");
  auto r = record("lib");
  r.noarch = conda::NoArchType::Python;
  auto plan = plan_package(r, pkg, "", target());
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code(), Errc::InvalidInput);
  EXPECT_NE(plan.error().hint().find("add python"), std::string::npos);
}

// Given two packages that both ship bin/tool, expect a warning, the later package's file, and
// the clobber recorded.
TEST_F(PlanTest, ClobberWarnsLastWinsAndIsRecorded) {
  std::vector<PackagePlan> plans;
  for (std::string name : {"alpha", "beta"}) {
    auto plan = plan_package(record(name), make_package(name, {"bin/tool", "share/" + name}), name,
                             target());
    ASSERT_TRUE(plan) << plan.error().to_string();
    plans.push_back(std::move(*plan));
  }
  std::vector<std::string> warnings;
  PrefixInstallOptions options;
  options.warn = [&](const std::string& m) { warnings.push_back(m); };
  auto report = install_to_prefix(plans, dir_ / "prefix", "linux-64", options);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(report->clobbered.size(), 1u);
  EXPECT_NE(report->clobbered[0].find("bin/tool"), std::string::npos);
  EXPECT_EQ(read_text(dir_ / "prefix/bin/tool"), "beta:bin/tool\n");
  EXPECT_NE(read_text(dir_ / "prefix/conda-meta/envbuild-clobbers").find("bin/tool"),
            std::string::npos);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("clobber"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "prefix/conda-meta/alpha-1.0-0.json"));
  EXPECT_TRUE(fs::exists(dir_ / "prefix/conda-meta/beta-1.0-0.json"));
}

// Pre-link scripts run before their package's files are linked (from the package's copy),
// post-link scripts after every package is; both with PREFIX, PKG_NAME, PKG_VERSION and
// PKG_BUILDNUM. --no-link-scripts (or another platform) records both as pending.
TEST_F(PlanTest, PreLinkRunsBeforeTheFilesAndPostLinkAfter) {
  const std::string check =
      "echo \"$PKG_NAME $PKG_VERSION $PKG_BUILDNUM %s $(test -e \"$PREFIX/lib/a.txt\" && echo "
      "linked || echo absent)\" >> \"$PREFIX/scripts.log\"\n";
  auto script = [&](const char* kind) {
    char buf[512];
    std::snprintf(buf, sizeof buf, check.c_str(), kind);
    return std::string(buf);
  };
  fs::path pkg = make_package("a", {"bin/.a-pre-link.sh", "bin/.a-post-link.sh", "lib/a.txt"});
  write_text(pkg / "bin/.a-pre-link.sh", script("pre-link"));
  write_text(pkg / "bin/.a-post-link.sh", script("post-link"));
  for (bool run : {true, false}) {
    SCOPED_TRACE(run ? "run" : "skip");
    fs::remove_all(dir_ / "prefix");
    fs::remove_all(dir_ / "staging");
    auto plan = plan_package(record("a"), pkg, "a", target());
    ASSERT_TRUE(plan) << plan.error().to_string();
    std::vector<PackagePlan> plans;
    plans.push_back(std::move(*plan));
    PrefixInstallOptions options;
    options.link_scripts = run ? LinkScripts::Run : LinkScripts::Skip;
    options.warn = [](const std::string&) {};
    auto report = install_to_prefix(plans, dir_ / "prefix", host_subdir(), options);
    ASSERT_TRUE(report) << report.error().to_string();
    if (run) {
      EXPECT_EQ(read_text(dir_ / "prefix/scripts.log"),
                "a 1.0 0 pre-link absent\na 1.0 0 post-link linked\n");
      EXPECT_EQ(report->scripts_run, (std::vector<std::string>{"a: pre-link", "a: post-link"}));
      EXPECT_TRUE(report->scripts_pending.empty());
    } else {
      EXPECT_FALSE(fs::exists(dir_ / "prefix/scripts.log"));
      ASSERT_EQ(report->scripts_pending.size(), 2u);
      EXPECT_NE(report->scripts_pending[0].find("pre-link"), std::string::npos);
      EXPECT_NE(read_text(dir_ / "prefix/conda-meta/envbuild-pending-scripts").find("pre-link"),
                std::string::npos);
    }
  }
}

// The target platform being the host's is not enough: a package built for another platform
// (named by a lock file) keeps its scripts pending, a noarch one beside it runs them.
TEST_F(PlanTest, LinkScriptsOfAnotherPlatformsPackageAreNotRun) {
  fs::path foreign = make_package("osxpkg", {"bin/.osxpkg-post-link.sh"});
  write_text(foreign / "bin/.osxpkg-post-link.sh", "echo ran >> \"$PREFIX/foreign.log\"\n");
  fs::path portable = make_package("nopkg", {"bin/.nopkg-post-link.sh"});
  write_text(portable / "bin/.nopkg-post-link.sh", "echo ran >> \"$PREFIX/noarch.log\"\n");
  auto foreign_record = record("osxpkg");
  foreign_record.subdir = host_subdir() == "osx-arm64" ? "linux-64" : "osx-arm64";
  auto portable_record = record("nopkg");
  portable_record.subdir = "noarch";
  std::vector<PackagePlan> plans;
  for (auto [rec, dir] :
       {std::pair{foreign_record, foreign}, std::pair{portable_record, portable}}) {
    auto plan = plan_package(rec, dir, rec.name, target());
    ASSERT_TRUE(plan) << plan.error().to_string();
    plans.push_back(std::move(*plan));
  }
  std::vector<std::string> warnings;
  PrefixInstallOptions options;
  options.link_scripts = LinkScripts::Run;
  options.warn = [&](const std::string& m) { warnings.push_back(m); };
  auto report = install_to_prefix(plans, dir_ / "prefix", host_subdir(), options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_FALSE(fs::exists(dir_ / "prefix/foreign.log"));
  EXPECT_TRUE(fs::exists(dir_ / "prefix/noarch.log"));
  ASSERT_EQ(report->scripts_pending.size(), 1u);
  EXPECT_NE(report->scripts_pending[0].find("osxpkg"), std::string::npos);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings.back().find("not for this host's platform"), std::string::npos)
      << warnings.back();
}

// Issue 16, class 6: package symlinks were checked as text and then followed: with
// a/b/c/l3 -> ../../.. from one package and share/esc -> ../a/b/c/l3/../victim from another, a
// third package's share/esc/pwned.txt was written beside the prefix. A path below another
// package's symlink (or file) is refused before anything is placed, naming both packages,
// whichever comes first.
TEST_F(PlanTest, PathsBelowAnotherPackagesSymlinkOrFileAreRefusedNamingBoth) {
  const auto victim = make_victim();
  struct Case {
    std::string name;
    std::vector<std::vector<TarEntry>> packages;
    std::string want;
  };
  const Case cases[] = {
      {"chain",
       {{symlink_entry("a/b/c/l3", "../../..")},
        {symlink_entry("share/esc", "../a/b/c/l3/../victim")},
        {{"share/esc/pwned.txt", "pwned"}}},
       "p2-1.0-0 installs share/esc/pwned.txt below share/esc, which p1-1.0-0 installs as a "
       "symlink (-> ../a/b/c/l3/../victim)"},
      {"absolute target",
       {{symlink_entry("share/esc", (dir_ / "victim").string())}, {{"share/esc/pwned.txt", "x"}}},
       "p1-1.0-0 installs share/esc/pwned.txt below share/esc, which p0-1.0-0 installs as a "
       "symlink"},
      {"symlink replacing a directory",
       {{{"share/d/x", "x"}}, {symlink_entry("share/d", "../../victim")}, {{"share/d/y", "y"}}},
       "p0-1.0-0 installs share/d/x below share/d, which p1-1.0-0 installs as a symlink"},
      {"below a file",
       {{{"share/f", "f"}}, {{"share/f/pwned.txt", "x"}}},
       "p1-1.0-0 installs share/f/pwned.txt below share/f, which p0-1.0-0 installs as a file"},
      {"envbuild's own files",
       {{symlink_entry("conda-meta", "../victim")}},
       "installs conda-meta/p0-1.0-0.json below conda-meta, which p0-1.0-0 installs as a symlink"},
      {"environment variables",
       {{symlink_entry("etc/conda", "../../victim")}},
       "envbuild installs etc/conda/env_vars.d/envbuild-variables.json below etc/conda, which "
       "p0-1.0-0 installs as a symlink"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(dir_ / "pkgs");
    fs::remove_all(dir_ / "staging");
    auto plans = plan_all(c.packages);
    ASSERT_EQ(plans.size(), c.packages.size());
    PrefixInstallOptions options;
    options.variables = {{"ENVB_VAR", "1"}};
    options.warn = [](const std::string&) {};
    auto report = install_to_prefix(plans, dir_ / "prefix", "linux-64", options);
    ASSERT_FALSE(report) << "installed";
    EXPECT_EQ(report.error().code(), Errc::Integrity);
    EXPECT_NE(report.error().message().find(c.want), std::string::npos)
        << report.error().to_string();
    EXPECT_FALSE(fs::exists(dir_ / "prefix")) << "something was placed before the refusal";
    EXPECT_EQ(victim_changes(victim), "");
  }
}

// The extracted package is read and linked from beneath its directory: a symlink in it (in
// info/, on a path of paths.json, or put into the cache after planning) is an error, never a
// way to read or hard link the user's files.
TEST_F(PlanTest, SymlinksInTheExtractedTreeAreNeverFollowed) {
  const auto victim = make_victim();
  // info/paths.json as a symlink to a file of the package.
  fs::path pkg = make_tree_package("info-link", {{"share/real.json", "{}"}});
  fs::rename(pkg / "info/paths.json", pkg / "share/paths.json");
  fs::create_symlink("../share/paths.json", pkg / "info/paths.json");
  auto plan = plan_package(record("info-link"), pkg, "", target());
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().to_string().find("info/paths.json: is a symlink"), std::string::npos)
      << plan.error().to_string();
  // A path of paths.json through a symlink of the tree.
  pkg = make_tree_package("through", {{"lib/x", "x"}});
  fs::remove_all(pkg / "lib");
  fs::create_directory_symlink(dir_ / "victim", pkg / "lib");
  plan = plan_package(record("through"), pkg, "", target());
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code(), Errc::Integrity);
  EXPECT_NE(plan.error().to_string().find("lib: is a symlink"), std::string::npos)
      << plan.error().to_string();
  // The same swap after planning, before linking: nothing is linked from the victim.
  pkg = make_tree_package("swapped", {{"lib/file", "x"}, {"share/y", "y"}});
  plan = plan_package(record("swapped"), pkg, "", target());
  ASSERT_TRUE(plan) << plan.error().to_string();
  fs::remove_all(pkg / "lib");
  fs::create_directory_symlink(dir_ / "victim/host/precious", pkg / "lib");
  std::vector<PackagePlan> plans;
  plans.push_back(std::move(*plan));
  auto report = install_to_prefix(plans, dir_ / "prefix", "linux-64", PrefixInstallOptions{});
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("is a symlink"), std::string::npos)
      << report.error().to_string();
  EXPECT_FALSE(fs::exists(dir_ / "prefix/lib/file"));
  EXPECT_EQ(victim_changes(victim), "");
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "victim/host/precious/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u) << "the user's file was hard linked";
}

// What link scripts leave in the prefix is not followed either: a pre-link script's symlink
// where a package puts files is an error, a post-link script's .messages.txt symlink is
// neither read nor followed when removed.
TEST_F(PlanTest, SymlinksLinkScriptsLeaveAreNotFollowed) {
  const auto victim = make_victim();
  const std::string victim_dir = testing::shell_quote((dir_ / "victim").string());
  struct Case {
    std::string name;
    std::string script;  // bin/.s-pre-link.sh or bin/.s-post-link.sh
    std::string body;
    std::string want_error;    // "" when the install succeeds
    std::string want_warning;  // with the install
  };
  const Case cases[] = {
      {"pre-link symlink", "bin/.s-pre-link.sh", "ln -s " + victim_dir + " \"$PREFIX/share\"\n",
       "share: is a symlink", ""},
      {"messages symlink", "bin/.s-post-link.sh",
       "ln -s " + victim_dir + "/home/secret.json \"$PREFIX/.messages.txt\"\n", "",
       "ignoring .messages.txt"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(dir_ / "prefix");
    fs::remove_all(dir_ / "pkgs");
    fs::remove_all(dir_ / "staging");
    fs::path pkg = make_tree_package("s", {{c.script, c.body, 0755}, {"share/x", "x"}});
    auto plan = plan_package(record("s"), pkg, "s", target());
    ASSERT_TRUE(plan) << plan.error().to_string();
    std::vector<PackagePlan> plans;
    plans.push_back(std::move(*plan));
    std::vector<std::string> warnings;
    PrefixInstallOptions options;
    options.warn = [&](const std::string& m) { warnings.push_back(m); };
    auto report = install_to_prefix(plans, dir_ / "prefix", host_subdir(), options);
    if (c.want_error.empty()) {
      ASSERT_TRUE(report) << report.error().to_string();
      std::string all;
      for (const auto& w : warnings) all += w + "\n";
      EXPECT_NE(all.find(c.want_warning), std::string::npos) << all;
      EXPECT_EQ(all.find("sentinel-secret"), std::string::npos) << all;
      EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "prefix/.messages.txt")));
    } else {
      ASSERT_FALSE(report);
      EXPECT_NE(report.error().to_string().find(c.want_error), std::string::npos)
          << report.error().to_string();
    }
    EXPECT_EQ(victim_changes(victim), "");
  }
}

TEST(TopologicalOrder, DependenciesFirstTiesByNameCyclesBroken) {
  auto rec = [](std::string n, std::vector<std::string> d) {
    conda::PackageRecord r;
    r.name = std::move(n);
    r.depends = std::move(d);
    return r;
  };
  std::vector<conda::PackageRecord> records = {rec("zlib", {}),
                                               rec("python", {"zlib >=1", "openssl 3.*"}),
                                               rec("openssl", {"ca"}),
                                               rec("ca", {}),
                                               rec("pip", {"python >=3.8"}),
                                               rec("a", {"b"}),
                                               rec("b", {"a"})};
  std::vector<std::string> names;
  for (size_t i : topological_order(records)) names.push_back(records[i].name);
  EXPECT_EQ(names, (std::vector<std::string>{"ca", "openssl", "zlib", "python", "pip", "a", "b"}));
}

}  // namespace
}  // namespace envbuild::builder
