// Security defaults, end to end through the CLIs: credentials of a channel behind basic auth
// (user:password@ URL), of a registry behind htpasswd (docker config, --creds) and a wrong
// password appear in no output (progress included), no lock file, cache, prefix, OCI layout or
// pushed image (layers decompressed); a credentialed channel's packages download (records hold
// redacted URLs, the credentials go back in for the request); and what envbuild and envrun
// create is never group- or world-writable under umask 022 and keeps others out under 077.

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "builder/solve/channel.hpp"
#include "oci/registry/auth.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

using testing::q;

// A channel with one tiny linux-64 package (a text file and a post-link script), indexed.
std::string make_channel(const fs::path& channel) {
  fs::path src = channel / "src";
  write_text(src / "share/probe/probe.txt", "probe\n");
  write_text(src / "bin/.probe-post-link.sh", "echo linked >> \"$PREFIX/share/probe/linked\"\n");
  write_text(src / "info/index.json", nlohmann::json{{"name", "probe"},
                                                     {"version", "1.0"},
                                                     {"build", "0"},
                                                     {"build_number", 0},
                                                     {"depends", nlohmann::json::array()},
                                                     {"license", "MIT"},
                                                     {"subdir", "linux-64"},
                                                     {"timestamp", 1700000000000}}
                                          .dump());
  write_text(src / "info/paths.json",
             nlohmann::json{{"paths_version", 1},
                            {"paths",
                             {{{"_path", "share/probe/probe.txt"}, {"path_type", "hardlink"}},
                              {{"_path", "bin/.probe-post-link.sh"}, {"path_type", "hardlink"}}}}}
                 .dump());
  write_text(src / "info/files", "share/probe/probe.txt\nbin/.probe-post-link.sh\n");
  fs::create_directories(channel / "linux-64");
  fs::create_directories(channel / "noarch");
  auto r = run_command("cd " + q(src) +
                       " && python3 -c \"import tarfile,sys\n"
                       "with tarfile.open(sys.argv[1],'w:bz2') as t:\n"
                       "  [t.add(p) for p in ['info','share','bin']]\" " +
                       q(channel / "linux-64/probe-1.0-0.tar.bz2") + " && rm -rf " + q(src) +
                       " && " + q(testing::binary_dir() / "envbuild") + " index " + q(channel));
  return r.exit_code == 0 ? "" : r.output;
}

// The secrets found in `file`: its bytes, and for a gzip or zstd file (an image layer) its
// decompressed bytes too.
std::vector<std::string> secrets_in(const fs::path& file, const std::vector<std::string>& secrets) {
  std::vector<std::string> found;
  std::string bytes = read_text(file);
  std::string unpacked;
  if (bytes.size() > 4 && bytes.compare(0, 2, "\x1f\x8b") == 0)
    unpacked = run_command("gzip -dc < " + q(file)).output;
  else if (bytes.size() > 4 && bytes.compare(0, 4, "\x28\xb5\x2f\xfd") == 0)
    unpacked = run_command("zstd -dc < " + q(file)).output;
  for (const auto& s : secrets)
    if (bytes.find(s) != std::string::npos || unpacked.find(s) != std::string::npos)
      found.push_back(s);
  return found;
}

TEST(WithCredentials, PutsAChannelsCredentialsBackIntoItsRedactedUrls) {
  const std::vector<std::string> bases = {"https://u:pw@host/chan", "https://h2/t/tok123/c"};
  EXPECT_EQ(with_credentials("https://u:***@host/chan/linux-64/a.conda", bases),
            "https://u:pw@host/chan/linux-64/a.conda");
  EXPECT_EQ(with_credentials("https://h2/t/***/c/noarch/b.conda", bases),
            "https://h2/t/tok123/c/noarch/b.conda");
  // Only at a path boundary, and only the channel's own host and path.
  EXPECT_EQ(with_credentials("https://u:***@host/channel2/x.conda", bases),
            "https://host/channel2/x.conda");
  EXPECT_EQ(with_credentials("https://other/chan/x.conda", bases), "https://other/chan/x.conda");
  // A redacted password no channel supplies is dropped, so that ~/.netrc can.
  EXPECT_EQ(with_credentials("https://u:***@elsewhere/x.conda", {}), "https://elsewhere/x.conda");
  EXPECT_EQ(credentialed_base_urls(std::vector<std::string>{"https://a:b@h/c", "https://h/d",
                                                            "conda-forge", "nodefaults"}),
            (std::vector<std::string>{"https://a:b@h/c"}));
}

class SecurityTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ENVB_REQUIRE_TOOL("python3");
    auto made = make_channel(dir_ / "channel");
    ASSERT_EQ(made, "");
  }
  // Runs a command in dir_ (lock files land there), output captured; the environment's
  // DOCKER_CONFIG and ENVRUN_CACHE point into dir_.
  testing::CommandResult run(const std::string& command, const std::string& umask = "022") {
    auto r = run_command("cd " + q(dir_) + " && umask " + umask + " && export DOCKER_CONFIG=" +
                         q(dir_ / "dockercfg") + " ENVRUN_CACHE=" + q(dir_ / "envrun-cache") +
                         " ENVBUILD_CACHE=" + q(dir_ / "cache") + " && { " + command + " ; } 2>&1");
    outputs_ += r.output;  // not the command: it holds the secrets on purpose
    return r;
  }
  std::string envbuild() const { return q(testing::binary_dir() / "envbuild"); }
  std::string envrun() const { return q(testing::binary_dir() / "envrun"); }
  std::string outputs_;
};

TEST_F(SecurityTest, CredentialsNeverInOutputLocksCachesPrefixesOrImages) {
  ENVB_REQUIRE_TOOL("docker-registry");
  ENVB_REQUIRE_TOOL("htpasswd");
  const std::string channel_pw = "chan-Pw-4417";
  const std::string registry_pw = "reg-Pw-9093";
  const std::string wrong_pw = "wrong-Pw-5151";
  testing::RepoServer repo(dir_ / "channel", dir_, 0, "alice:" + channel_pw);
  ASSERT_NE(repo.port(), 0);
  const std::string channel =
      "http://alice:" + channel_pw + "@127.0.0.1:" + std::to_string(repo.port()) + "/";

  auto made =
      run_command("htpasswd -Bbn bob " + shell_quote(registry_pw) + " > " + q(dir_ / "htpasswd"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  testing::RegistryServer registry(dir_ / "registry", "  htpasswd: {realm: test-realm, path: " +
                                                          (dir_ / "htpasswd").string() + "}\n");
  ASSERT_TRUE(registry.start()) << registry.log();
  write_text(dir_ / "dockercfg/config.json",
             R"({"auths":{")" + registry.host() + R"(":{"auth":")" +
                 oci::registry::base64_encode("bob:" + registry_pw) + R"("}}})");
  write_text(dir_ / "env.yml", "name: t\nchannels: [nodefaults]\ndependencies: [probe]\n");
  const std::string docker = "docker://" + registry.host() + "/private/app";

  auto lock = run(envbuild() + " lock -f env.yml -c " + shell_quote(channel) +
                  " -p linux-64 --explicit locks");
  ASSERT_EQ(lock.exit_code, 0) << lock.output;
  auto install = run(envbuild() + " install -f env.yml -c " + shell_quote(channel) + " -p " +
                     q(dir_ / "prefix"));
  ASSERT_EQ(install.exit_code, 0) << install.output;
  // The lock holds redacted URLs: -c supplies the credentials.
  auto from_lock =
      run(envbuild() + " install --lock locks/conda-linux-64.lock -c " + shell_quote(channel) +
          " --cache-dir " + q(dir_ / "cache2") + " -p " + q(dir_ / "prefix2"));
  ASSERT_EQ(from_lock.exit_code, 0) << from_lock.output;
  auto build = run(envbuild() + " build -f env.yml -c " + shell_quote(channel) +
                   " -t app:1 --tls-verify=false --sbom sbom.json --output " +
                   shell_quote(docker + ":1") + " --output oci:" + q(dir_ / "layout") + ":1");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  // build --creds comes before the stored login: a wrong password is refused, the right one
  // pushes.
  const std::string build_cmd = envbuild() + " build -f env.yml -c " + shell_quote(channel) +
                                " -t app:1 --tls-verify=false --no-sbom-artifact --creds ";
  auto build_refused =
      run(build_cmd + shell_quote("bob:" + wrong_pw) + " --output " + shell_quote(docker + ":5"));
  EXPECT_NE(build_refused.exit_code, 0);
  EXPECT_NE(build_refused.output.find("401"), std::string::npos) << build_refused.output;
  auto build_creds = run(build_cmd + shell_quote("bob:" + registry_pw) + " --output " +
                         shell_quote(docker + ":4"));
  ASSERT_EQ(build_creds.exit_code, 0) << build_creds.output;
  auto push =
      run(envbuild() + " push --tls-verify=false --creds " + shell_quote("bob:" + registry_pw) +
          " oci:" + q(dir_ / "layout") + ":1 " + shell_quote(docker + ":2"));
  ASSERT_EQ(push.exit_code, 0) << push.output;
  auto refused =
      run(envbuild() + " push --tls-verify=false --creds " + shell_quote("bob:" + wrong_pw) +
          " oci:" + q(dir_ / "layout") + ":1 " + shell_quote(docker + ":3"));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("401"), std::string::npos) << refused.output;
  auto pulled =
      run(envrun() + " pull --creds " + shell_quote("bob:" + registry_pw) + " " + docker + ":2");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  // A first run of a docker:// image pulls it, with the docker config's login.
  auto ran = run(envrun() + " " + shell_quote(docker + ":1") + " -- true");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;

  const std::vector<std::string> secrets = {channel_pw, registry_pw, wrong_pw,
                                            oci::registry::base64_encode("bob:" + registry_pw),
                                            oci::registry::base64_encode("alice:" + channel_pw)};
  for (const auto& s : secrets)
    EXPECT_EQ(outputs_.find(s), std::string::npos) << "'" << s << "' in:\n" << outputs_;
  // Every file written: lock files, SBOM, caches, prefixes, layout, envrun's cache and the
  // registry's storage (the pushed image). Not the files holding the secrets on purpose.
  const std::vector<fs::path> given = {dir_ / "dockercfg/config.json", dir_ / "htpasswd",
                                       dir_ / "registry/config.yml"};
  size_t checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    if (!e.is_regular_file() || e.is_symlink()) continue;
    if (std::find(given.begin(), given.end(), e.path()) != given.end()) continue;
    ++checked;
    auto found = secrets_in(e.path(), secrets);
    EXPECT_TRUE(found.empty()) << e.path() << " holds '" << found.front() << "'";
  }
  EXPECT_GT(checked, 50u);
  EXPECT_NE(read_text(dir_ / "conda-lock.yml").find("alice:***@"), std::string::npos);
}

// Modes of what the tools create: under umask 022 nothing is world-writable, setuid or setgid
// (nor group-writable here: the probe package has no such file); under 077 the roots they create
// (caches, stores, prefixes, layouts) let no one else in (blobs are 0644 on purpose, so that a
// cache shared by a group works; the umask guards the directories). Symlinks are skipped (their
// mode means nothing).
TEST_F(SecurityTest, CreatedFilesAndDirsRespectTheUmask) {
  testing::RepoServer repo(dir_ / "channel", dir_);
  ASSERT_NE(repo.port(), 0);
  write_text(dir_ / "env.yml", "name: t\nchannels: [nodefaults]\ndependencies: [probe]\n");
  for (std::string umask : {"022", "077"}) {
    SCOPED_TRACE("umask " + umask);
    fs::path w = dir_ / ("u" + umask);
    auto install = run(envbuild() + " install -f env.yml -c " + repo.url() + " --cache-dir " +
                           q(w / "cache") + " -p " + q(w / "prefix"),
                       umask);
    ASSERT_EQ(install.exit_code, 0) << install.output;
    auto build = run(envbuild() + " build -f env.yml -c " + repo.url() + " --cache-dir " +
                         q(w / "cache") + " -t app:1 --output oci:" + q(w / "layout") + ":1",
                     umask);
    ASSERT_EQ(build.exit_code, 0) << build.output;
    auto unpack = run("ENVRUN_CACHE=" + q(w / "rc") + " " + envrun() + " oci:" + q(w / "layout") +
                          ":1 -- true && " + envrun() +
                          " unpack --no-check oci:" + q(w / "layout") + ":1 " + q(w / "unpacked"),
                      umask);
    ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
    size_t checked = 0;
    for (const auto& e : fs::recursive_directory_iterator(w)) {
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
      ++checked;
      EXPECT_EQ(st.st_mode & 0022, 0u)
          << e.path() << " has mode " << std::oct << (st.st_mode & 07777);
      EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << e.path();
    }
    EXPECT_GT(checked, 20u);
    if (umask == "077") {
      for (const char* root : {"cache", "cache/pkgs", "cache/oci", "rc", "prefix", "layout"}) {
        struct stat st {};
        ASSERT_EQ(::stat((w / root).c_str(), &st), 0) << root;
        EXPECT_EQ(st.st_mode & 0077, 0u) << root << " has mode " << std::oct << (st.st_mode & 0777);
      }
    }
    // The package's post-link script ran (host platform), and not with --no-link-scripts.
    EXPECT_TRUE(fs::exists(w / "prefix/share/probe/linked"));
  }
  auto skip = run(envbuild() + " install --no-link-scripts -f env.yml -c " + repo.url() +
                  " --cache-dir " + q(dir_ / "u022/cache") + " -p " + q(dir_ / "noscripts"));
  ASSERT_EQ(skip.exit_code, 0) << skip.output;
  EXPECT_FALSE(fs::exists(dir_ / "noscripts/share/probe/linked"));
  EXPECT_NE(skip.output.find("--no-link-scripts"), std::string::npos) << skip.output;
}

}  // namespace
}  // namespace envbuild::builder
