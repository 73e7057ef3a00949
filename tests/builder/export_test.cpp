// `envbuild export` (issue 20): an installed prefix, a lock or an image written back as
// environment.yml, @EXPLICIT or conda-lock.yml, and each of those read back by our own commands
// gives the same packages: environment.yml solves (`envbuild lock -f`) to them, @EXPLICIT
// installs them, conda-lock.yml round trips through `export --lock`; an image (local or in a
// registry) exports what the prefix it was built from does, and a hostile one makes export read
// nothing outside the image. The channel is served over HTTP by tests/testing/repo_server.py.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "common/fs.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using envbuild::testing::write_text;
using ExportTest = envbuild::testing::TempDirTest;

std::string envbuild_bin() {
  return shell_quote((envbuild::testing::binary_dir() / "envbuild").string());
}

// The conda-meta record names of a prefix: <name>-<version>-<build>.json.
std::set<std::string> records_of(const fs::path& prefix) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(prefix / "conda-meta"))
    if (e.path().extension() == ".json" && !e.path().filename().string().starts_with("envbuild-"))
      out.insert(e.path().stem().string());
  return out;
}

std::set<std::string> records_of(const conda::CondaLockFile& lock) {
  std::set<std::string> out;
  for (const auto* p : lock.packages_for("linux-64", conda::CondaLockPackage::Manager::Conda)) {
    std::string file = p->url.substr(p->url.rfind('/') + 1);
    out.insert(file.substr(
        0, file.find(".conda") != std::string::npos ? file.find(".conda") : file.find(".tar.bz2")));
  }
  return out;
}

// Installs xz and openssl >=3 into dir/prefix from the real conda-forge subset served over HTTP
// (so the records carry http:// URLs, as from a real channel), with a variable.
void install_prefix(const fs::path& dir, const std::string& channel_url) {
  write_text(dir / "environment.yml", "name: t\nchannels:\n  - " + channel_url +
                                          "\ndependencies:\n  - xz\n  - openssl >=3\n"
                                          "variables:\n  GREETING: hello world\n");
  auto r = run_command("cd " + shell_quote(dir.string()) + " && " + envbuild_bin() +
                       " install -q -p prefix -f environment.yml --cache-dir cache");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(ExportTest, PrefixRoundTripsThroughEveryFormat) {
  envbuild::testing::RepoServer server(envbuild::testing::conda_forge_subset_channel(dir_), dir_);
  ASSERT_NE(server.port(), 0);
  ASSERT_NO_FATAL_FAILURE(install_prefix(dir_, server.url()));
  const std::string cd = "cd " + shell_quote(dir_.string()) + " && ";
  const std::set<std::string> installed = records_of(dir_ / "prefix");
  ASSERT_GE(installed.size(), 3u);

  // environment.yml solves back to the same packages.
  auto yml = run_command(cd + envbuild_bin() + " export -p prefix -o exported.yml");
  ASSERT_EQ(yml.exit_code, 0) << yml.output;
  auto text = common::read_file(dir_ / "exported.yml");
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("GREETING: hello world"), std::string::npos) << *text;
  auto lock =
      run_command(cd + envbuild_bin() + " lock -f exported.yml -o relock.yml --cache-dir cache");
  ASSERT_EQ(lock.exit_code, 0) << lock.output;
  auto relock_text = common::read_file(dir_ / "relock.yml");
  ASSERT_TRUE(relock_text);
  auto relock = conda::parse_conda_lock(*relock_text, "relock.yml");
  ASSERT_TRUE(relock) << relock.error().to_string();
  EXPECT_EQ(records_of(*relock), installed);

  // @EXPLICIT installs the same records.
  auto explicit_export =
      run_command(cd + envbuild_bin() + " export -p prefix --format explicit -o explicit.txt");
  ASSERT_EQ(explicit_export.exit_code, 0) << explicit_export.output;
  auto explicit_text = common::read_file(dir_ / "explicit.txt");
  ASSERT_TRUE(explicit_text);
  EXPECT_NE(explicit_text->find("#sha256:"), std::string::npos) << *explicit_text;
  auto install = run_command(cd + envbuild_bin() +
                             " install -q -p prefix2 --lock explicit.txt --cache-dir cache");
  ASSERT_EQ(install.exit_code, 0) << install.output;
  EXPECT_EQ(records_of(dir_ / "prefix2"), installed);

  // conda-lock.yml round trips through --lock.
  auto cl = run_command(cd + envbuild_bin() + " export -p prefix --format conda-lock -o a.yml && " +
                        envbuild_bin() + " export --lock a.yml --format conda-lock -o b.yml");
  ASSERT_EQ(cl.exit_code, 0) << cl.output;
  auto a = conda::parse_conda_lock(*common::read_file(dir_ / "a.yml"), "a.yml");
  auto b = conda::parse_conda_lock(*common::read_file(dir_ / "b.yml"), "b.yml");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(records_of(*a), installed);
}

TEST_F(ExportTest, NoBuildsAndFromHistoryContent) {
  envbuild::testing::RepoServer server(envbuild::testing::conda_forge_subset_channel(dir_), dir_);
  ASSERT_NE(server.port(), 0);
  ASSERT_NO_FATAL_FAILURE(install_prefix(dir_, server.url()));
  const std::string cd = "cd " + shell_quote(dir_.string()) + " && ";
  auto history = run_command(cd + envbuild_bin() + " export -p prefix --from-history");
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_NE(history.output.find("- xz\n"), std::string::npos) << history.output;
  EXPECT_NE(history.output.find("- openssl"), std::string::npos) << history.output;
  EXPECT_EQ(history.output.find("ca-certificates"), std::string::npos) << history.output;

  auto no_builds = run_command(cd + envbuild_bin() +
                               " export -p prefix --no-builds --override-channels -c conda-forge");
  ASSERT_EQ(no_builds.exit_code, 0) << no_builds.output;
  EXPECT_NE(no_builds.output.find("- conda-forge\n"), std::string::npos) << no_builds.output;
  EXPECT_EQ(no_builds.output.find(server.url()), std::string::npos) << no_builds.output;
  size_t xz = no_builds.output.find("- xz=");
  ASSERT_NE(xz, std::string::npos) << no_builds.output;
  std::string line = no_builds.output.substr(xz, no_builds.output.find('\n', xz) - xz);
  EXPECT_EQ(std::count(line.begin(), line.end(), '='), 1) << line;
}

TEST_F(ExportTest, AnImageExportsWhatThePrefixItWasBuiltFromDoes) {
  envbuild::testing::RepoServer server(envbuild::testing::conda_forge_subset_channel(dir_), dir_);
  ASSERT_NE(server.port(), 0);
  ASSERT_NO_FATAL_FAILURE(install_prefix(dir_, server.url()));
  const std::string cd = "cd " + shell_quote(dir_.string()) + " && ";
  auto built = run_command(cd + envbuild_bin() +
                           " build -q -f environment.yml -t t:1 --output oci:image:1 "
                           "--output docker-archive:image.tar:t:1 --cache-dir cache 2>&1");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  envbuild::testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const std::string pushed = "docker://" + registry.host() + "/t:1";
  auto push = run_command(cd + envbuild_bin() + " push --tls-verify=false oci:image:1 " + pushed +
                          " 2>&1");
  ASSERT_EQ(push.exit_code, 0) << push.output;

  for (const std::string format : {"explicit", "environment --from-history"}) {
    auto from_prefix = run_command(cd + envbuild_bin() + " export -p prefix --format " + format);
    ASSERT_EQ(from_prefix.exit_code, 0) << from_prefix.output;
    for (const std::string& image : std::vector<std::string>{
             "oci:image:1", "docker-archive:image.tar", pushed + " --tls-verify=false"}) {
      SCOPED_TRACE(format + " from " + image);
      auto from_image = run_command(cd + envbuild_bin() + " export --image " + image +
                                    " --cache-dir export-cache --format " + format);
      ASSERT_EQ(from_image.exit_code, 0) << from_image.output;
      // The prefix is named after its folder, the image after its environment.
      std::string want = from_prefix.output;
      for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
               {"name: prefix\n", "name: t\n"}, {"envbuild-name: \"prefix\"", "envbuild-name: \"t\""}})
        if (size_t at = want.find(from); at != std::string::npos) want.replace(at, from.size(), to);
      EXPECT_EQ(from_image.output, want);
    }
  }
  auto yml = run_command(cd + envbuild_bin() + " export --image oci:image:1 --cache-dir cache");
  EXPECT_NE(yml.output.find("GREETING: hello world"), std::string::npos) << yml.output;
  EXPECT_NE(yml.output.find("- xz="), std::string::npos) << yml.output;
  // Nothing of the layers is left behind.
  EXPECT_TRUE(fs::is_empty(dir_ / "export-cache/tmp"));
}

TEST_F(ExportTest, AHostileImageMakesExportReadNothingOutsideIt) {
  // Given layers whose conda-meta is a symlink to a folder of this host, whose records link to
  // host files, whose history is a FIFO, and whose last layer whites a record out, expect export
  // to list only the records the image holds, to finish, and to change nothing on the host.
  fs::create_directories(dir_ / "host/conda-meta");
  write_text(dir_ / "host/conda-meta/hostpkg-1.0-0.json",
             R"({"name": "hostpkg", "version": "1.0", "build": "0", "build_number": 0})");
  const std::string record = R"({"name": "%s", "version": "1.0", "build": "0", "build_number": 0,
    "subdir": "linux-64", "channel": "https://conda.example/c", "url":
    "https://conda.example/c/linux-64/%s-1.0-0.conda", "depends": []})";
  auto record_of = [&](const std::string& name) {
    std::string text = record;
    for (size_t at; (at = text.find("%s")) != std::string::npos;) text.replace(at, 2, name);
    return text;
  };
  const nlohmann::json spec = {
      {"layout", (dir_ / "hostile").string()},
      {"labels", {{"org.envbuild.prefix", "/opt/conda"}}},
      {"layers",
       {{{{"path", "opt/conda/conda-meta/kept-1.0-0.json"}, {"content", record_of("kept")}},
         {{"path", "opt/conda/conda-meta/gone-1.0-0.json"}, {"content", record_of("gone")}},
         {{"path", "opt/conda/conda-meta/host-1.0-0.json"},
          {"type", "symlink"},
          {"target", (dir_ / "host/conda-meta/hostpkg-1.0-0.json").string()}},
         {{"path", "opt/conda/conda-meta/history"}, {"type", "fifo"}},
         {{"path", "opt/other/conda-meta"},
          {"type", "symlink"},
          {"target", (dir_ / "host/conda-meta").string()}}},
        {{{"path", "opt/conda/conda-meta/.wh.gone-1.0-0.json"}, {"content", ""}}}}}};
  write_text(dir_ / "spec.json", spec.dump());
  auto made = run_command(
      "python3 " +
      shell_quote((envbuild::testing::source_dir() / "tests/testing/hostile_image.py").string()) +
      " < " + shell_quote((dir_ / "spec.json").string()) + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto before = envbuild::testing::read_text(dir_ / "host/conda-meta/hostpkg-1.0-0.json");
  auto r = run_command("timeout 60 " + envbuild_bin() + " export --cache-dir " +
                       shell_quote((dir_ / "cache").string()) + " --format explicit --image oci:" +
                       (dir_ / "hostile").string() + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("kept-1.0-0.conda"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("gone"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("host"), std::string::npos) << r.output;
  auto other = run_command("timeout 60 " + envbuild_bin() + " export --cache-dir " +
                           shell_quote((dir_ / "cache").string()) + " --image oci:" +
                           (dir_ / "hostile").string() + " --image-prefix /opt/other 2>&1");
  EXPECT_EQ(other.exit_code, 3) << other.output;
  EXPECT_NE(other.output.find("no conda environment at /opt/other"), std::string::npos)
      << other.output;
  EXPECT_EQ(envbuild::testing::read_text(dir_ / "host/conda-meta/hostpkg-1.0-0.json"), before);
}

TEST_F(ExportTest, BadInputIsNamedWithItsExitCode) {
  fs::create_directories(dir_ / "corrupt/conda-meta");
  write_text(dir_ / "corrupt/conda-meta/zlib-1.3-0.json", "{\"name\": ");
  const fs::path pixi =
      envbuild::testing::data_dir() / "locks/pixi-lock/conda-lockfiles__single_package__pixi.lock";
  struct Case {
    std::string args;
    int exit_code;
    std::string names;
  };
  const std::vector<Case> cases = {
      {"-p missing", 3, "missing is not a conda environment"},
      {"-p corrupt", 2, "zlib-1.3-0.json"},
      {"--lock " + shell_quote(pixi.string()) + " --environment nope", 3, "nope"},
      {"", 2, "-p PREFIX"},
      {"--lock nothing.yml", 3, "nothing.yml"},
  };
  for (const auto& c : cases) {
    auto r = run_command("cd " + shell_quote(dir_.string()) + " && " + envbuild_bin() + " export " +
                         c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace envbuild::builder
