// .condarc and CONDA_* applied to solving and fetching (issue 20): flags over variables over
// files over defaults, in one place (builder/cli/settings.hpp); then each setting proven against
// real servers: channel_alias, custom_channels and default_channels against a local HTTP channel,
// offline with a cold and a warm cache, ssl_verify against an HTTPS channel whose CA openssl made,
// proxy_servers through a forward proxy. HOME and every CONDA* variable are the test's own.

#include <cstdlib>

#include "builder/cli/settings.hpp"
#include "common/http.hpp"
#include "tests/testing/python_server.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

extern char** environ;

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using conda::Sourced;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

// Flags > variables and files (conda::CondaConfig, merged already) > envbuild's defaults.
TEST(EffectiveSettings, FlagsWinThenConfigurationThenDefaults) {
  conda::CondaConfig config;
  config.channel_alias = Sourced<std::string>{"https://mirror.example", "/etc/conda/.condarc"};
  config.channel_priority = Sourced<std::string>{"disabled", "CONDA_CHANNEL_PRIORITY"};
  config.offline = Sourced<bool>{false, "~/.condarc"};
  config.custom_channels["internal"] = {"https://conda.corp", "~/.condarc"};
  config.proxy_servers["https"] = {"http://proxy:3128", "~/.condarc"};

  cli::SolveCliOptions none;
  auto from_config = cli::effective_settings(none, config);
  ASSERT_TRUE(from_config) << from_config.error().to_string();
  EXPECT_EQ(from_config->channel_options.alias, "https://mirror.example");
  EXPECT_EQ(from_config->shown.channel_alias->source, "/etc/conda/.condarc");
  EXPECT_FALSE(from_config->strict_channel_priority) << "disabled solves as flexible";
  EXPECT_FALSE(from_config->offline);
  EXPECT_EQ(from_config->http.proxies.at("https"), "http://proxy:3128");
  EXPECT_TRUE(from_config->http.tls.verify);
  EXPECT_EQ(from_config->shown.ssl_verify->source, cli::kDefaultSource);
  EXPECT_TRUE(from_config->channels.empty()) << "no channel nobody named";
  auto internal = resolve_channel("internal/label/dev", from_config->channel_options);
  ASSERT_TRUE(internal) << internal.error().to_string();
  EXPECT_EQ(internal->base_url, "https://conda.corp/internal/label/dev");
  auto other = resolve_channel("conda-forge", from_config->channel_options);
  ASSERT_TRUE(other) << other.error().to_string();
  EXPECT_EQ(other->base_url, "https://mirror.example/conda-forge");

  cli::SolveCliOptions flags;
  flags.channel_alias = "https://flag.example";
  flags.channel_priority = "strict";
  flags.offline = true;
  auto from_flags = cli::effective_settings(flags, config);
  ASSERT_TRUE(from_flags) << from_flags.error().to_string();
  EXPECT_EQ(from_flags->channel_options.alias, "https://flag.example");
  EXPECT_EQ(from_flags->shown.channel_alias->source, "--channel-alias");
  EXPECT_TRUE(from_flags->strict_channel_priority);
  EXPECT_TRUE(from_flags->offline);
  EXPECT_EQ(from_flags->shown.offline->source, "--offline");

  auto defaults = cli::effective_settings(none, conda::CondaConfig{});
  ASSERT_TRUE(defaults) << defaults.error().to_string();
  EXPECT_EQ(defaults->channel_options.alias, "https://conda.anaconda.org");
  EXPECT_TRUE(defaults->strict_channel_priority);
  EXPECT_EQ(defaults->shown.default_channels->value, ChannelOptions{}.default_channels);

  // default_channels set: `defaults` is what a command without channels solves from, as conda.
  conda::CondaConfig air_gapped;
  air_gapped.default_channels =
      Sourced<std::vector<std::string>>{{"https://mirror.corp/main"}, "/etc/conda/.condarc"};
  auto gapped = cli::effective_settings(none, air_gapped);
  ASSERT_TRUE(gapped) << gapped.error().to_string();
  EXPECT_EQ(gapped->channels, std::vector<std::string>{"defaults"});
  auto resolved = resolve_channels(gapped->channels, gapped->channel_options);
  ASSERT_TRUE(resolved) << resolved.error().to_string();
  ASSERT_EQ(resolved->size(), 1u);
  EXPECT_EQ(resolved->front().base_url, "https://mirror.corp/main");
}

TEST(EffectiveSettings, UnusableValuesNameTheirSource) {
  struct Case {
    std::string priority_flag;
    std::optional<Sourced<std::string>> ssl_verify;
    std::string says;
  };
  const Case cases[] = {
      {"sometimes", std::nullopt, "--channel-priority: channel priority must be strict"},
      {"", Sourced<std::string>{"/no/such/ca.pem", "/home/u/.condarc"},
       "/home/u/.condarc: ssl_verify '/no/such/ca.pem'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    cli::SolveCliOptions flags;
    flags.channel_priority = c.priority_flag;
    conda::CondaConfig config;
    config.ssl_verify = c.ssl_verify;
    auto got = cli::effective_settings(flags, config);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::InvalidInput);
    EXPECT_NE(got.error().to_string().find(c.says), std::string::npos) << got.error().to_string();
  }
}

// requests' order, which conda uses: scheme://host, scheme, all://host, all.
TEST(ProxyFor, RequestsOrder) {
  const std::map<std::string, std::string> proxies = {{"http", "http://p1"},
                                                      {"https://conda.corp", "http://p2"},
                                                      {"all://files.corp", "http://p3"},
                                                      {"all", "http://p4"}};
  struct Case {
    std::string url, proxy;
  };
  const Case cases[] = {
      {"http://x.org/a", "http://p1"},
      {"https://conda.corp/c", "http://p2"},
      {"https://conda.corp:8443/c", "http://p2"},
      {"https://files.corp/f", "http://p3"},
      {"https://x.org/a", "http://p4"},
      {"not a url", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(common::proxy_for(c.url, proxies), c.proxy) << c.url;
  EXPECT_EQ(common::proxy_for("http://x.org/", {}), "");
}

std::string envbuild() {
  return shell_quote((testing::binary_dir() / "envbuild").string());
}

// Every CONDA* variable, HOME and XDG_CONFIG_HOME are the test's: no .condarc of the machine's
// user, and no CONDA_* of the shell that runs the tests, reaches the commands.
class CondarcTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    home_ = dir_ / "home";
    fs::create_directories(home_);
    // CONDARC, CONDA_PREFIX, CONDA_CHANNELS, ...
    for (char** e = environ; e && *e; ++e) {
      std::string entry = *e;
      if (entry.starts_with("CONDA")) unset_.push_back(entry.substr(0, entry.find('=')));
    }
    // ScopedEnv keeps the name's pointer: unset_ no longer grows.
    for (const auto& name : unset_)
      env_.push_back(std::make_unique<testing::ScopedEnv>(name.c_str(), std::nullopt));
    env_.push_back(std::make_unique<testing::ScopedEnv>("HOME", home_.string()));
    env_.push_back(std::make_unique<testing::ScopedEnv>("XDG_CONFIG_HOME", std::nullopt));
    // A refused connection fails at once rather than after the retries' backoff.
    env_.push_back(
        std::make_unique<testing::ScopedEnv>(common::kHttpOverridesEnv, "retries=0,backoff_ms=1"));
    channel_ = dir_ / "srv" / "conda-forge-subset";
    fs::create_directories(channel_ / "noarch");
    fs::create_symlink(testing::data_dir() / "packages/channels/conda-forge-subset/linux-64",
                       channel_ / "linux-64");
    write_text(channel_ / "noarch/repodata.json",
               R"({"info":{"subdir":"noarch"},"packages":{},"packages.conda":{}})");
  }
  void TearDown() override {
    env_.clear();
    TempDirTest::TearDown();
  }
  void condarc(const std::string& text) { write_text(home_ / ".condarc", text); }
  // `envbuild ARGS` in dir_, stdout and stderr together.
  testing::CommandResult run(const std::string& args, const std::string& env = "") {
    return run_command("cd " + shell_quote(dir_.string()) + " && " + env + " " + envbuild() + " " +
                       args + " 2>&1");
  }
  std::string solve(const std::string& cache, const std::string& more = "xz") {
    return "solve -p linux-64 --cache-dir " + shell_quote((dir_ / cache).string()) + " " + more;
  }
  static size_t requests_for(const testing::PythonServer& server, const std::string& needle) {
    size_t n = 0;
    for (const auto& line : server.log_lines()) n += line.find(needle) != std::string::npos;
    return n;
  }

  fs::path home_;
  fs::path channel_;
  std::vector<std::string> unset_;
  std::vector<std::unique_ptr<testing::ScopedEnv>> env_;
};

TEST_F(CondarcTest, ChannelAliasCustomChannelsAndDefaultChannels) {
  testing::RepoServer server(dir_ / "srv", dir_ / "logs");
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";

  // channel_alias and channels: `envbuild solve xz` names no channel at all.
  condarc("channel_alias: " + server.url() + "\nchannels: [conda-forge-subset]\n");
  auto aliased = run(solve("c1"));
  ASSERT_EQ(aliased.exit_code, 0) << aliased.output;
  EXPECT_NE(aliased.output.find("h166bdaf_0"), std::string::npos) << aliased.output;
  EXPECT_GT(requests_for(server, "/conda-forge-subset/linux-64/repodata.json"), 0u);
  auto shown = run("config --show");
  EXPECT_NE(
      shown.output.find("channel_alias: " + server.url() + "  # " + (home_ / ".condarc").string()),
      std::string::npos)
      << shown.output;
  // The flag wins: nothing listens on port 1.
  auto flag = run(solve("c2", "--channel-alias http://127.0.0.1:1 xz"));
  EXPECT_NE(flag.exit_code, 0) << flag.output;
  EXPECT_NE(flag.output.find("127.0.0.1:1/conda-forge-subset"), std::string::npos) << flag.output;

  // custom_channels beat the alias for their names.
  condarc("channel_alias: http://127.0.0.1:1\ncustom_channels:\n  conda-forge-subset: " +
          server.url() + "\n");
  auto custom = run(solve("c3", "-c conda-forge-subset xz"));
  EXPECT_EQ(custom.exit_code, 0) << custom.output;

  // default_channels: what `defaults` means, in a file and when nothing names a channel.
  condarc("default_channels:\n  - " + server.url() + "/conda-forge-subset\n");
  write_text(dir_ / "environment.yml", "channels: [defaults]\ndependencies: [xz]\n");
  auto file = run("solve -p linux-64 --cache-dir " + shell_quote((dir_ / "c4").string()));
  EXPECT_EQ(file.exit_code, 0) << file.output;
  auto bare = run(solve("c5"));
  EXPECT_EQ(bare.exit_code, 0) << bare.output;

  // Without any configuration, no channel is made up.
  fs::remove(home_ / ".condarc");
  auto none = run(solve("c6"));
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("set channels in .condarc"), std::string::npos) << none.output;
}

TEST_F(CondarcTest, OfflineColdThenWarmCache) {
  testing::RepoServer server(dir_ / "srv", dir_ / "logs");
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  condarc("offline: true\nchannels: [" + server.url() + "/conda-forge-subset]\n");
  auto cold = run(solve("c"));
  EXPECT_NE(cold.exit_code, 0) << cold.output;
  EXPECT_NE(cold.output.find("offline"), std::string::npos) << cold.output;
  EXPECT_NE(cold.output.find("conda-forge-subset"), std::string::npos) << cold.output;
  EXPECT_TRUE(server.log_lines().empty()) << "offline sends nothing";

  // CONDA_OFFLINE beats the file: this run fills the cache.
  auto online = run(solve("c"), "CONDA_OFFLINE=false");
  ASSERT_EQ(online.exit_code, 0) << online.output;
  server.clear_log();
  auto warm = run(solve("c"));
  EXPECT_EQ(warm.exit_code, 0) << warm.output;
  // The packages are not cached: the install names the one it misses, by its URL.
  auto install = run("install -q -p " + shell_quote((dir_ / "p").string()) + " --cache-dir " +
                     shell_quote((dir_ / "c").string()) + " xz");
  EXPECT_NE(install.exit_code, 0) << install.output;
  EXPECT_NE(install.output.find("not in the package cache and offline mode"), std::string::npos)
      << install.output;
  EXPECT_NE(install.output.find(server.url() + "/conda-forge-subset/linux-64/"), std::string::npos)
      << install.output;
  EXPECT_TRUE(server.log_lines().empty()) << "offline sends nothing";
}

// A CA made by openssl signs the HTTPS channel's certificate: unknown to the system store.
std::string make_ca_and_server_certificate(const fs::path& dir) {
  const std::string d = shell_quote(dir.string());
  auto made = run_command(
      "cd " + d +
      " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=envbuild-test-ca "
      "-keyout ca.key -out ca.pem"
      " && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out "
      "server.csr"
      " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile ext -out cert.pem 2>&1");
  return made.exit_code == 0 ? "" : made.output;
}

TEST_F(CondarcTest, SslVerifyCaBundleOrOff) {
  const fs::path certs = dir_ / "certs";
  fs::create_directories(certs);
  if (auto why = make_ca_and_server_certificate(certs); !why.empty()) GTEST_SKIP() << why;
  testing::RepoServer server(dir_ / "srv", dir_ / "logs", 0, "",
                             "--tls " + shell_quote((certs / "cert.pem").string()) + " " +
                                 shell_quote((certs / "key.pem").string()));
  if (!server.port()) GTEST_SKIP() << "python3 test server did not start";
  const std::string channel =
      "channels: [https://127.0.0.1:" + std::to_string(server.port()) + "/conda-forge-subset]\n";

  condarc(channel);
  auto unknown = run(solve("c1"));
  EXPECT_EQ(unknown.exit_code, 6) << unknown.output;
  EXPECT_NE(unknown.output.find("certificate"), std::string::npos) << unknown.output;

  condarc(channel + "ssl_verify: " + (certs / "ca.pem").string() + "\n");
  auto bundle = run(solve("c2"));
  EXPECT_EQ(bundle.exit_code, 0) << bundle.output;

  condarc(channel + "ssl_verify: false\n");
  auto off = run(solve("c3"));
  EXPECT_EQ(off.exit_code, 0) << off.output;

  condarc(channel + "ssl_verify: " + (certs / "missing.pem").string() + "\n");
  auto missing = run(solve("c4"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find((home_ / ".condarc").string()), std::string::npos)
      << missing.output;
}

TEST_F(CondarcTest, ProxyServersRouteRequestsAndKeepTheirCredentials) {
  testing::RepoServer upstream(dir_ / "srv", dir_ / "logs");
  if (!upstream.port()) GTEST_SKIP() << "python3 test server did not start";
  testing::PythonServer proxy("fault_proxy.py",
                              "--upstream 127.0.0.1:" + std::to_string(upstream.port()) +
                                  " --proxy-auth proxyuser:proxysecret",
                              dir_ / "logs", "proxy");
  if (!proxy.port()) GTEST_SKIP() << "python3 proxy did not start";
  // conda.invalid resolves nowhere: only the proxy can answer for it.
  condarc(
      "channels: [http://conda.invalid/conda-forge-subset]\nproxy_servers:\n  http: "
      "http://proxyuser:proxysecret@127.0.0.1:" +
      std::to_string(proxy.port()) + "\n");
  auto solved = run(solve("c"));
  ASSERT_EQ(solved.exit_code, 0) << solved.output;
  EXPECT_GT(requests_for(proxy, "http://conda.invalid/conda-forge-subset/linux-64/repodata.json"),
            0u);
  // The proxy's credentials went to the proxy, as Proxy-Authorization only.
  EXPECT_GT(requests_for(proxy, "\"proxy_authorization\": \"Basic "), 0u);
  EXPECT_EQ(requests_for(proxy, "\"authorization\": \"Basic "), 0u);
  EXPECT_FALSE(upstream.log_lines().empty());
  auto shown = run("config --show");
  EXPECT_EQ(shown.output.find("proxysecret"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("proxy_servers:"), std::string::npos) << shown.output;
}

// An https channel through the proxy: a CONNECT tunnel, the TLS still the channel's own.
TEST_F(CondarcTest, HttpsProxyTunnelsToTheChannel) {
  const fs::path certs = dir_ / "certs";
  fs::create_directories(certs);
  if (auto why = make_ca_and_server_certificate(certs); !why.empty()) GTEST_SKIP() << why;
  testing::RepoServer upstream(dir_ / "srv", dir_ / "logs", 0, "",
                               "--tls " + shell_quote((certs / "cert.pem").string()) + " " +
                                   shell_quote((certs / "key.pem").string()));
  if (!upstream.port()) GTEST_SKIP() << "python3 test server did not start";
  const std::string origin = "127.0.0.1:" + std::to_string(upstream.port());
  testing::PythonServer proxy("fault_proxy.py", "--upstream " + origin + " --proxy-auth u:p",
                              dir_ / "logs", "proxy");
  if (!proxy.port()) GTEST_SKIP() << "python3 proxy did not start";
  condarc("channels: [https://" + origin +
          "/conda-forge-subset]\nssl_verify: " + (certs / "ca.pem").string() +
          "\nproxy_servers:\n  https: http://u:p@127.0.0.1:" + std::to_string(proxy.port()) + "\n");
  auto solved = run(solve("c"));
  ASSERT_EQ(solved.exit_code, 0) << solved.output;
  EXPECT_GT(requests_for(proxy, "\"method\": \"CONNECT\", \"path\": \"" + origin), 0u);
  EXPECT_GT(requests_for(upstream, "/conda-forge-subset/linux-64/repodata.json"), 0u);
}

// envs_dirs applies where a command takes an environment's name: `install -n NAME`.
TEST_F(CondarcTest, InstallNameGoesUnderEnvsDirs) {
  condarc("envs_dirs: [" + (dir_ / "envs").string() + "]\n");
  const std::string args = "--dry-run --json --cache-dir " + shell_quote((dir_ / "c").string()) +
                           " -c " + shell_quote(channel_.string()) + " xz";
  auto named = run("install -n myenv " + args);
  ASSERT_EQ(named.exit_code, 0) << named.output;
  EXPECT_NE(named.output.find("\"prefix\": \"" + (dir_ / "envs/myenv").string() + "\""),
            std::string::npos)
      << named.output;
  auto outside = run("install -n ../escape " + args);
  EXPECT_EQ(outside.exit_code, 2) << outside.output;
  EXPECT_NE(outside.output.find("one path segment"), std::string::npos) << outside.output;
  auto both = run("install -n myenv -p " + shell_quote((dir_ / "p").string()) + " " + args);
  EXPECT_EQ(both.exit_code, 2) << both.output;
}

TEST_F(CondarcTest, BadCondarcNamesFileAndLine) {
  condarc("channels: [a]\noffline: sometimes\n");
  auto r = run(solve("c"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find((home_ / ".condarc").string() + ":2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace envbuild::builder
