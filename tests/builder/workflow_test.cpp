// One workflow (issue 19): lock, build, install and run agree. The same solution gives the same
// records, layers and image digest whether it comes from environment.yml or from a lock made of
// it; a mirror keeps digests; and the whole path env.yml -> lock -> build --lock -> push ->
// envrun on another cache -> unpack -> move -> run.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/fs.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "tests/testing/channels.hpp"
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

class WorkflowTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    channel_ = testing::conda_forge_subset_channel(dir_);
    write_text(dir_ / "environment.yml", "name: wf\nchannels:\n  - " + channel_.string() +
                                             "\ndependencies:\n  - xz >=5\n  - ncurses\n"
                                             "variables:\n  MY_VAR: hello world\n  B_VAR: '2'\n");
  }
  // `envbuild ARGS` in dir_ with its own cache; stdout alone, stderr in the result on failure.
  testing::CommandResult envbuild(const std::string& args) {
    return run_command("cd " + q(dir_) + " && SOURCE_DATE_EPOCH=1700000000 " +
                       q(testing::binary_dir() / "envbuild") + " " + args + " --cache-dir " +
                       q(dir_ / "cache") + " 2>" + q(dir_ / "stderr") + " || { cat " +
                       q(dir_ / "stderr") + "; exit 1; }");
  }
  static std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  // Every file of a prefix's conda-meta/ and etc/conda/, path -> content.
  std::map<std::string, std::string> environment_records(const fs::path& prefix) {
    std::map<std::string, std::string> out;
    for (const char* dir : {"conda-meta", "etc/conda"}) {
      if (!fs::exists(prefix / dir)) continue;
      for (const auto& e : fs::recursive_directory_iterator(prefix / dir))
        if (e.is_regular_file()) out[fs::relative(e.path(), prefix).string()] = read_text(e.path());
    }
    return out;
  }
  struct Interrupted {
    bool signalled = false;
    int status = 0;
    std::string log;
  };
  // Runs `envbuild ARGS --cache-dir cache` in dir_ and sends `signal` as soon as a line of its
  // stderr contains `trigger` (the progress says where it is: no timing involved).
  // With signal 0, `on_trigger` runs instead (the test's part of a hand-over).
  Interrupted interrupt(const std::string& args, const std::string& trigger, int signal,
                        const std::function<void()>& on_trigger = nullptr) {
    Interrupted out;
    int fds[2];
    if (::pipe(fds) != 0) return out;
    const std::string command = "cd " + q(dir_) + " && SOURCE_DATE_EPOCH=1700000000 exec " +
                                q(testing::binary_dir() / "envbuild") + " " + args +
                                " --cache-dir " + q(dir_ / "cache") + " >/dev/null";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    std::FILE* in = ::fdopen(fds[0], "r");
    char line[4096];
    while (std::fgets(line, sizeof line, in)) {
      out.log += line;
      if (!out.signalled && std::strstr(line, trigger.c_str())) {
        if (signal != 0) ::kill(pid, signal);
        if (on_trigger) on_trigger();
        out.signalled = true;
      }
    }
    std::fclose(in);
    ::waitpid(pid, &out.status, 0);
    return out;
  }
  fs::path channel_;
};

// Issue 19, point 1: lock keeps the name, the requested specs and the variables; records
// written from a lock are those of the solve (channel, size, md5 and all), so every input
// gives the same image digest and the same conda-meta.
TEST_F(WorkflowTest, SameSolutionSameRecordsSameImageWhicheverInput) {
  auto from_file = envbuild("build -f environment.yml -t wf:1 -o oci:img-file");
  ASSERT_EQ(from_file.exit_code, 0) << from_file.output;
  auto lock = envbuild("lock -f environment.yml --explicit locks");
  ASSERT_EQ(lock.exit_code, 0) << lock.output;
  auto from_lock = envbuild("build --lock conda-lock.yml -t wf:1 -o oci:img-lock");
  ASSERT_EQ(from_lock.exit_code, 0) << from_lock.output;
  auto from_explicit = envbuild("build --lock locks/conda-linux-64.lock -t wf:1 -o oci:img-x");
  ASSERT_EQ(from_explicit.exit_code, 0) << from_explicit.output;
  EXPECT_EQ(trimmed(from_lock.output), trimmed(from_file.output));
  EXPECT_EQ(trimmed(from_explicit.output), trimmed(from_file.output));

  // The config has the environment's name and variables (whichever input).
  auto index = nlohmann::json::parse(read_text(dir_ / "img-lock/index.json"));
  auto manifest_digest = index["manifests"][0]["digest"].get<std::string>().substr(7);
  auto manifest =
      nlohmann::json::parse(read_text(dir_ / "img-lock/blobs/sha256" / manifest_digest));
  auto config = nlohmann::json::parse(read_text(
      dir_ / "img-lock/blobs/sha256" / manifest["config"]["digest"].get<std::string>().substr(7)));
  const auto env = config["config"]["Env"].get<std::vector<std::string>>();
  auto has = [&](const std::string& e) {
    return std::find(env.begin(), env.end(), e) != env.end();
  };
  EXPECT_TRUE(has("MY_VAR=hello world")) << config.dump();
  EXPECT_TRUE(has("B_VAR=2")) << config.dump();
  EXPECT_TRUE(has("CONDA_DEFAULT_ENV=wf")) << config.dump();

  // install -f and install --lock (either format) write the same conda-meta, history (with the
  // requested specs), state (variables) and env_vars.
  std::vector<std::map<std::string, std::string>> installed;
  for (const char* input :
       {"-f environment.yml", "--lock conda-lock.yml", "--lock locks/conda-linux-64.lock"}) {
    SCOPED_TRACE(input);
    fs::remove_all(dir_ / "prefix");
    auto r = envbuild(std::string("install -q -p prefix ") + input);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    installed.push_back(environment_records(dir_ / "prefix"));
  }
  ASSERT_TRUE(installed[0].count("conda-meta/state"));
  EXPECT_NE(installed[0]["conda-meta/state"].find("hello world"), std::string::npos);
  EXPECT_NE(installed[0]["conda-meta/history"].find("# update specs: xz >=5"), std::string::npos)
      << installed[0]["conda-meta/history"];
  EXPECT_EQ(installed[1], installed[0]);
  EXPECT_EQ(installed[2], installed[0]);
  bool saw_xz = false;
  for (const auto& [path, text] : installed[0]) {
    if (!path.starts_with("conda-meta/xz-")) continue;
    saw_xz = true;
    auto record = nlohmann::json::parse(text);
    EXPECT_EQ(record["channel"], "file://" + channel_.string()) << text;
    EXPECT_EQ(record["size"], 418368) << text;
    EXPECT_EQ(record["md5"].get<std::string>().size(), 32u) << text;
  }
  EXPECT_TRUE(saw_xz);
}

// Issue 19, point 2: a package layer does not depend on where the package was downloaded
// from. A channel served from a mirror configured as such (--mirror) gives the same image
// digest, with a fresh cache, downloading nothing from the original.
TEST_F(WorkflowTest, AMirrorKeepsDigests) {
  const fs::path original_root = dir_ / "original";
  const fs::path mirror_root = dir_ / "mirror";
  fs::create_directories(original_root);
  fs::create_directories(mirror_root);
  fs::create_symlink(channel_, original_root / "cf");
  fs::create_symlink(channel_, mirror_root / "cf");
  std::string original_url;
  std::string first;
  {
    testing::RepoServer original(original_root, dir_ / "original-server");
    ASSERT_NE(original.port(), 0);
    original_url = original.url() + "/cf";
    auto a = envbuild("build -t m:1 -o oci:img-a -c " + original_url + " xz");
    ASSERT_EQ(a.exit_code, 0) << a.output;
    first = trimmed(a.output);
    auto lock = envbuild("lock -c " + original_url + " xz --explicit locks");
    ASSERT_EQ(lock.exit_code, 0) << lock.output;
  }  // the original is gone: everything below comes from the mirror

  testing::RepoServer mirror(mirror_root, dir_ / "mirror-server");
  ASSERT_NE(mirror.port(), 0);
  const std::string mirror_flag =
      " --mirror " + shell_quote(original_url + "=" + mirror.url() + "/cf");
  fs::remove_all(dir_ / "cache");
  auto b = envbuild("build -t m:1 -o oci:img-b -c " + original_url + " xz" + mirror_flag);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(trimmed(b.output), first);
  fs::remove_all(dir_ / "cache");
  auto c = envbuild("build -t m:1 -o oci:img-c --lock locks/conda-linux-64.lock" + mirror_flag);
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(trimmed(c.output), first);
  size_t packages = 0;
  for (const auto& line : mirror.log_lines())
    packages +=
        line.find(".conda") != std::string::npos || line.find(".tar.bz2") != std::string::npos;
  EXPECT_GE(packages, 2u) << "the packages came from the mirror";
  // A mirror that is not ORIGINAL=MIRROR is a usage error.
  auto bad = envbuild("build -t m:1 --plan -c " + original_url + " xz --mirror " + mirror.url());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(read_text(dir_ / "stderr").find("ORIGINAL=MIRROR"), std::string::npos);
}

// What an interrupted envbuild left, once the next run is done: temp files and dirs anywhere in
// the cache (atomic writes' ".<name>.tmp.*", tmp/), an install's staging dir and mark.
std::vector<std::string> leftovers(const fs::path& cache, const fs::path& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(cache, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if ((name.starts_with(".") && name.find(".tmp.") != std::string::npos) ||
        it->path().parent_path().filename() == "tmp")
      out.push_back(it->path().string());
  }
  for (const char* mark : {".envbuild-staging", ".envbuild-unfinished"})
    if (fs::exists(prefix / mark)) out.push_back((prefix / mark).string());
  return out;
}

// Issue 19, point 5: SIGINT or SIGTERM at any moment leaves nothing that blocks or wastes.
// Given a channel whose xz download stalls (half sent, then nothing until the client goes away),
// an install or build is interrupted while downloading with everything else fetched (and, for
// an install, planned: patched copies staged in the prefix), or a moment after planning or the
// first layer (best effort: it may finish first). Then the next run succeeds with the same
// result, and no temp file or dir is left anywhere.
TEST_F(WorkflowTest, InterruptedInstallAndBuildResume) {
  testing::conda_forge_subset_channel(dir_ / "served");
  struct Case {
    std::string command;
    std::string trigger;  // the stderr line that starts the signal
    int signal;
  };
  // xz, ncurses and their 5 dependencies: "fetched 6/7" leaves the stalled xz downloading.
  const Case cases[] = {
      {"install -p prefix", "fetched 6/7", SIGINT},
      {"install -p prefix", "planned ", SIGTERM},
      {"build -t r:1 -o oci:img", "fetched 6/7", SIGTERM},
      {"build -t r:1 -o oci:img", "wrote layer", SIGINT},
  };
  for (size_t n = 0; n < std::size(cases); ++n) {
    const Case& c = cases[n];
    SCOPED_TRACE(c.command + " / " + c.trigger);
    // Only the cases that interrupt a download need it to stall (a stall lasts until the
    // client's read deadline otherwise).
    const bool stall = c.trigger.starts_with("fetched");
    testing::RepoServer server(dir_ / "served", dir_ / ("server-" + std::to_string(n)), 0, "",
                               stall ? "--stall-once xz-5" : "");
    ASSERT_NE(server.port(), 0);
    const std::string args = c.command + " -c " + server.url() + "/conda-forge-subset xz ncurses";
    fs::remove_all(dir_ / "cache");
    fs::remove_all(dir_ / "prefix");
    fs::remove_all(dir_ / "img");
    auto first = interrupt(args, c.trigger, c.signal);
    ASSERT_TRUE(first.signalled) << first.log;
    // Stalled: the signal certainly came while it was downloading.
    if (stall) {
      EXPECT_TRUE(WIFSIGNALED(first.status)) << first.log;
    }
    auto again = envbuild(args);
    ASSERT_EQ(again.exit_code, 0) << again.output << "\n" << first.log;
    EXPECT_EQ(leftovers(dir_ / "cache", dir_ / "prefix"), std::vector<std::string>{});
    if (c.command.starts_with("install")) {
      EXPECT_EQ(run_command(q(dir_ / "prefix/bin/xz") + " --version").exit_code, 0);
    } else {
      // The same image as a build that was never interrupted (from the same server: the
      // package URLs are in the records).
      fs::rename(dir_ / "cache", dir_ / ("cache-resumed-" + std::to_string(n)));
      auto clean =
          envbuild(c.command + "-clean -c " + server.url() + "/conda-forge-subset xz ncurses");
      ASSERT_EQ(clean.exit_code, 0) << clean.output;
      EXPECT_EQ(trimmed(again.output), trimmed(clean.output));
    }
  }
}

// Issue 19, point 5: what a killed build leaves in the cache (its staging dir under tmp/, temp
// files of atomic writes) goes at the next command that finds the cache free; not while another
// envbuild holds it (its temp files may be in use).
TEST_F(WorkflowTest, LeftoversOfKilledProcessesAreSwept) {
  auto first = envbuild("solve -c " + shell_quote(channel_.string()) + " xz");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path cache = dir_ / "cache";
  write_text(cache / "tmp/build-abc123/0/files/bin/big", std::string(1 << 20, 'x'));
  write_text(cache / "layers/.0123.json.tmp.99999.0.1", "{");
  write_text(cache / "oci/blobs/sha256/.incoming.tmp.99999.1.2", "partial layer");
  write_text(cache / "pkgs/abc/.x-1-0.conda.part", "resumable");
  ASSERT_EQ(leftovers(cache, dir_ / "none").size(), 3u);

  {
    // Another envbuild holds the cache: nothing of its may go.
    auto held = common::FileLock::acquire(cache / "locks/cache.lock", common::LockMode::Shared);
    ASSERT_TRUE(held);
    auto busy = envbuild("solve --offline -c " + shell_quote(channel_.string()) + " xz");
    ASSERT_EQ(busy.exit_code, 0) << busy.output;
    EXPECT_EQ(leftovers(cache, dir_ / "none").size(), 3u);
  }
  auto next = envbuild("solve --offline -c " + shell_quote(channel_.string()) + " xz");
  ASSERT_EQ(next.exit_code, 0) << next.output;
  EXPECT_EQ(leftovers(cache, dir_ / "none"), std::vector<std::string>{});
  EXPECT_TRUE(fs::exists(cache / "pkgs/abc/.x-1-0.conda.part")) << "a download resumes";
}

// Issue 19, point 12: `envbuild cache` lists what the cache holds with sizes and last use;
// `cache prune --older-than` removes only what was not used for that long, `--all` everything,
// and neither while another envbuild uses the cache (prune waits for it, or fails with
// --no-wait).
TEST_F(WorkflowTest, CacheListsAndPrunesSafely) {
  testing::RepoServer server(channel_.parent_path(), dir_ / "server");
  ASSERT_NE(server.port(), 0);
  const std::string channel = " -c " + server.url() + "/conda-forge-subset ";
  auto built = envbuild("build -t c:1 -o oci:img" + channel + "xz");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  auto listed = envbuild("cache --json");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  auto by_name = [](const nlohmann::json& list) {
    std::map<std::string, nlohmann::json> out;
    for (const auto& c : list["categories"]) out[c["name"]] = c;
    return out;
  };
  auto before = by_name(nlohmann::json::parse(listed.output));
  for (const char* kind : {"packages", "repodata", "layers", "plans", "blobs"}) {
    SCOPED_TRACE(kind);
    EXPECT_GT(before[kind]["entries"].get<size_t>(), 0u);
    EXPECT_GT(before[kind]["bytes"].get<uint64_t>(), 0u);
    EXPECT_TRUE(before[kind]["last_use"].is_string());
  }
  auto table = envbuild("cache");
  EXPECT_NE(table.output.find("packages"), std::string::npos) << table.output;

  // Entries last used 40 days ago: only they go with --older-than 30d.
  const fs::path cache = dir_ / "cache";
  std::vector<fs::path> aged;
  for (const auto& e : fs::directory_iterator(cache / "plans")) aged.push_back(e.path());
  ASSERT_FALSE(aged.empty());
  const auto forty_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(24 * 40);
  for (const auto& p : aged) fs::last_write_time(p, forty_days_ago);
  auto dry = envbuild("cache prune --older-than 30d --dry-run --json");
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_EQ(nlohmann::json::parse(dry.output)["entries"], aged.size());
  EXPECT_TRUE(fs::exists(aged.front()));
  auto pruned = envbuild("cache prune --older-than 30d");
  ASSERT_EQ(pruned.exit_code, 0) << pruned.output;
  for (const auto& p : aged) EXPECT_FALSE(fs::exists(p)) << p;
  auto after = by_name(nlohmann::json::parse(envbuild("cache --json").output));
  EXPECT_EQ(after["packages"]["entries"], before["packages"]["entries"]);
  EXPECT_EQ(after["layers"]["entries"], before["layers"]["entries"]);
  EXPECT_EQ(after["plans"]["entries"], 0);
  auto rebuilt = envbuild("build -t c:1 -o oci:img2" + channel + "xz");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.output;
  EXPECT_EQ(trimmed(rebuilt.output), trimmed(built.output));

  // While another envbuild holds the cache, --all waits for it (or fails with --no-wait).
  auto lock = common::FileLock::acquire(cache / "locks/cache.lock", common::LockMode::Shared);
  ASSERT_TRUE(lock) << lock.error().to_string();
  std::optional<common::FileLock> held(std::move(*lock));
  auto refused = envbuild("cache prune --all --no-wait");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(read_text(dir_ / "stderr").find("in use"), std::string::npos);
  EXPECT_GT(by_name(nlohmann::json::parse(envbuild("cache --json").output))["packages"]["entries"],
            0);
  auto waited =
      interrupt("cache prune --all", "waiting for the other envbuild", 0, [&] { held.reset(); });
  EXPECT_TRUE(waited.signalled) << waited.log;
  ASSERT_TRUE(WIFEXITED(waited.status) && WEXITSTATUS(waited.status) == 0) << waited.log;
  auto empty = by_name(nlohmann::json::parse(envbuild("cache --json").output));
  for (const char* kind : {"packages", "repodata", "layers", "plans", "blobs", "tmp"})
    EXPECT_EQ(empty[kind]["entries"], 0) << kind;
}

// Issue 19, point 7: --base takes layouts whose index.json gives no platform (umoci writes them,
// skopeo's oci-archive too); a docker-archive output without --base gets a warning that says
// why docker run would fail, and which flag helps.
TEST_F(WorkflowTest, BaseWithoutPlatformInItsIndexAndTheDockerWarning) {
  const std::string channel = " -c " + q(channel_) + " ";
  auto base = envbuild("build -t base:1 -o oci:base --no-sbom-artifact" + channel + "xz");
  ASSERT_EQ(base.exit_code, 0) << base.output;
  auto index = nlohmann::json::parse(read_text(dir_ / "base/index.json"));
  for (auto& d : index["manifests"]) d.erase("platform");
  write_text(dir_ / "base/index.json", index.dump());
  ASSERT_EQ(
      run_command("tar -C " + q(dir_ / "base") + " -cf " + q(dir_ / "base.tar") + " .").exit_code,
      0);

  auto from_layout = envbuild("build -t top:1 --base oci:base -o oci:top1" + channel + "ncurses");
  ASSERT_EQ(from_layout.exit_code, 0) << from_layout.output;
  auto from_archive =
      envbuild("build -t top:1 --base oci-archive:base.tar -o oci:top2" + channel + "ncurses");
  ASSERT_EQ(from_archive.exit_code, 0) << from_archive.output;
  EXPECT_EQ(trimmed(from_archive.output), trimmed(from_layout.output));

  auto docker = envbuild("build -t d:1 -o docker-archive:d.tar" + channel + "ncurses");
  ASSERT_EQ(docker.exit_code, 0) << docker.output;
  const std::string warned = read_text(dir_ / "stderr");
  EXPECT_NE(warned.find("has no base image"), std::string::npos) << warned;
  EXPECT_NE(warned.find("--base"), std::string::npos) << warned;
  auto with_base =
      envbuild("build -t d:1 --base oci:base -o docker-archive:d2.tar" + channel + "ncurses");
  ASSERT_EQ(with_base.exit_code, 0) << with_base.output;
  EXPECT_EQ(read_text(dir_ / "stderr").find("has no base image"), std::string::npos);
}

// Issue 19, the whole workflow: env.yml -> lock -> build --lock -> push -> inspect (remote and
// local) -> envrun on another cache -> unpack -> move -> run. One image digest throughout, the
// same program output everywhere, the environment's variables in every form.
TEST_F(WorkflowTest, TheWholeWorkflowAgrees) {
  ENVB_REQUIRE_TOOL("docker-registry");
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const std::string remote = "docker://" + registry.host() + "/team/wf:1";

  auto locked = envbuild("lock -p linux-64 -o conda-lock.yml");
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  auto from_file = envbuild("build -t wf:1 -o oci:img-f");
  ASSERT_EQ(from_file.exit_code, 0) << from_file.output;
  auto built = envbuild(
      "build --lock conda-lock.yml -t wf:1 --json --tls-verify=false -o oci:img -o " + q(remote));
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const auto image = nlohmann::json::parse(built.output);
  const std::string digest = image["digest"];
  EXPECT_EQ(digest, trimmed(from_file.output)) << "a lock gives the image its file gives";

  // inspect reads the pushed image from the registry alone (a fresh cache), as the local one.
  fs::rename(dir_ / "cache", dir_ / "cache-build");
  auto inspected = envbuild("inspect --json --tls-verify=false " + q(remote));
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  const auto remote_view = nlohmann::json::parse(inspected.output);
  auto local = envbuild("inspect --json oci:img");
  ASSERT_EQ(local.exit_code, 0) << local.output;
  EXPECT_EQ(nlohmann::json::parse(local.output), remote_view);
  EXPECT_EQ(remote_view["digest"], digest);
  EXPECT_EQ(remote_view["prefix"], "/opt/conda");
  size_t in_layers = 0;
  for (const auto& layer : remote_view["layers"]) in_layers += layer["packages"].size();
  EXPECT_EQ(in_layers, remote_view["packages"].size());
  EXPECT_EQ(remote_view["packages"].size(), image["packages"]);
  for (const auto& p : remote_view["packages"])
    EXPECT_NE(p["channel"].get<std::string>().find("conda-forge-subset"), std::string::npos) << p;
  auto table = envbuild("inspect oci:img");
  EXPECT_NE(table.output.find("xz-5"), std::string::npos) << table.output;

  // envrun on another machine's cache: pulls the image and runs it.
  const std::string envrun = "cd " + q(dir_) + " && ENVRUN_CACHE=" + q(dir_ / "envrun-other") +
                             " " + q(testing::binary_dir() / "envrun") + " ";
  auto run = run_command(envrun + q(remote) + " -- xz --version 2>&1");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("xz (XZ Utils) 5."), std::string::npos) << run.output;
  auto unpack = run_command(envrun + "unpack " + q(remote) + " " + q(dir_ / "unpacked") + " 2>&1");
  ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
  fs::create_directories(dir_ / "elsewhere");
  fs::rename(dir_ / "unpacked", dir_ / "elsewhere/env");
  auto moved = run_command(envrun + q(dir_ / "elsewhere/env") + " -- xz --version 2>/dev/null");
  ASSERT_EQ(moved.exit_code, 0) << moved.output;
  auto direct = run_command(q(dir_ / "elsewhere/env/bin/xz") + " --version");
  EXPECT_EQ(moved.output, direct.output);
  EXPECT_NE(run.output.find(direct.output), std::string::npos) << run.output;
  auto activated = run_command("sh -c " + q(". " + (dir_ / "elsewhere/env/bin/activate").string() +
                                            " && echo \"$MY_VAR|$B_VAR|$CONDA_DEFAULT_ENV\""));
  ASSERT_EQ(activated.exit_code, 0) << activated.output;
  EXPECT_EQ(activated.output, "hello world|2|wf\n");
}

// Issue 19, point 4 and examples/ci.md: after one online run with a cache, every command of the
// CI example works offline from that cache, with the same image digest.
TEST_F(WorkflowTest, TheCiExampleWorksOfflineAfterOneOnlineRun) {
  std::string online_digest;
  std::string channel;
  {
    testing::RepoServer server(channel_.parent_path(), dir_ / "server");
    ASSERT_NE(server.port(), 0);
    channel = " -c " + server.url() + "/conda-forge-subset ";
    auto locked = envbuild("lock -p linux-64 --explicit locks --no-conda-lock" + channel + "xz");
    ASSERT_EQ(locked.exit_code, 0) << locked.output;
    auto built = envbuild("build --lock locks/conda-linux-64.lock -t app:1 -o oci:online");
    ASSERT_EQ(built.exit_code, 0) << built.output;
    online_digest = trimmed(built.output);
  }  // the channel is gone from here on
  for (const std::string& args : std::vector<std::string>{
           "solve --offline" + channel + "xz",
           "lock --offline -p linux-64 --explicit locks2 --no-conda-lock" + channel + "xz",
           std::string("install --offline --lock locks/conda-linux-64.lock -p prefix"),
           "build --offline -t app:1 -o oci:offline-solved" + channel + "xz"}) {
    SCOPED_TRACE(args);
    auto r = envbuild(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
  // The same packages locked offline (the header names the time and version: not compared).
  auto entries = [&](const char* dir) {
    const std::string text = read_text(dir_ / dir / "conda-linux-64.lock");
    return text.substr(text.find("@EXPLICIT"));
  };
  EXPECT_EQ(entries("locks2"), entries("locks"));
  auto offline =
      envbuild("build --offline --lock locks/conda-linux-64.lock -t app:1 -o oci:offline");
  ASSERT_EQ(offline.exit_code, 0) << offline.output;
  EXPECT_EQ(trimmed(offline.output), online_digest);
}

// Issue 19, point 11: a push shows bytes and rate on a terminal (a status line redrawn in place)
// and only its result line otherwise.
TEST_F(WorkflowTest, PushShowsProgressOnATerminal) {
  ENVB_REQUIRE_TOOL("docker-registry");
  ENVB_REQUIRE_TOOL("script");
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  auto built = envbuild("build -t p:1 -o oci:img -c " + q(channel_) + " xz");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const std::string push = q(testing::binary_dir() / "envbuild") +
                           " push --tls-verify=false oci:img docker://" + registry.host() + "/p/";
  auto plain = run_command("cd " + q(dir_) + " && " + push + "plain:1 2>&1");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(plain.output.find('\r'), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("pushed "), std::string::npos) << plain.output;
  auto tty = run_command("cd " + q(dir_) + " && TERM=xterm script -qec " + q(push + "tty:1") +
                         " /dev/null");
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("\r\033[Kpushing docker://"), std::string::npos) << tty.output;
}

// Issue 19, point 10: --json on lock, build, envrun check and envrun ls; install --dry-run
// changes nothing; build --plan downloads no package when the repodata gives sizes.
TEST_F(WorkflowTest, JsonOutputsAndDryRuns) {
  testing::RepoServer server(channel_.parent_path(), dir_ / "server");
  ASSERT_NE(server.port(), 0);
  const std::string channel = " -c " + server.url() + "/conda-forge-subset ";
  auto count_packages = [&] {
    size_t n = 0;
    for (const auto& line : server.log_lines())
      n += line.find(".conda") != std::string::npos || line.find(".tar.bz2") != std::string::npos;
    return n;
  };

  auto locked = envbuild("lock --json -o lock.yml -p linux-64");
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  auto lock = nlohmann::json::parse(locked.output);
  EXPECT_EQ(lock["files"][0]["path"], "lock.yml");
  EXPECT_EQ(lock["name"], "wf");
  const size_t locked_packages = lock["platforms"]["linux-64"].size();
  EXPECT_GE(locked_packages, 2u);

  auto dry = envbuild("install --dry-run --json -p prefix" + channel + "xz ncurses");
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  auto plan = nlohmann::json::parse(dry.output);
  EXPECT_TRUE(plan["dry_run"].get<bool>());
  EXPECT_EQ(plan["to_download"], plan["packages"].size());
  EXPECT_GT(plan["download_bytes"].get<uint64_t>(), 0u);
  EXPECT_FALSE(fs::exists(dir_ / "prefix"));

  auto layers = envbuild("build -t j:1 --plan --json" + channel + "xz ncurses");
  ASSERT_EQ(layers.exit_code, 0) << layers.output;
  auto estimate = nlohmann::json::parse(layers.output);
  EXPECT_EQ(estimate["sizes"], "download");
  EXPECT_TRUE(estimate["digest"].is_null());
  EXPECT_EQ(estimate["packages"], plan["packages"].size());
  EXPECT_EQ(count_packages(), 0u) << "neither the dry run nor the plan downloads a package";

  auto built = envbuild("build -t j:1 --json -o oci:img" + channel + "xz ncurses");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  auto image = nlohmann::json::parse(built.output);
  EXPECT_TRUE(image["digest"].get<std::string>().starts_with("sha256:"));
  EXPECT_EQ(image["outputs"], nlohmann::json::array({"oci:img"}));
  EXPECT_EQ(image["layers"].size(), estimate["layers"].size());
  for (const auto& layer : image["layers"])
    EXPECT_TRUE(layer["digest"].get<std::string>().starts_with("sha256:")) << layer.dump();
  auto plain = envbuild("build -t j:1 -o oci:img2" + channel + "xz ncurses");
  EXPECT_EQ(trimmed(plain.output), image["digest"].get<std::string>());

  const std::string envrun = "cd " + q(dir_) + " && ENVRUN_CACHE=" + q(dir_ / "envrun-cache") +
                             " " + q(testing::binary_dir() / "envrun");
  auto check = run_command(envrun + " check --json oci:img 2>/dev/null");
  auto verdict = nlohmann::json::parse(check.output, nullptr, false);
  ASSERT_TRUE(verdict.is_object()) << check.output;
  EXPECT_EQ(verdict["image"], image["digest"]);
  EXPECT_TRUE(verdict["requirements"].is_array());
  EXPECT_EQ(check.exit_code, verdict["ok"].get<bool>() ? 0 : 8) << check.output;
  auto ran = run_command(envrun + " oci:img xz --version");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  auto listed = run_command(envrun + " ls --json 2>/dev/null");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  auto entries = nlohmann::json::parse(listed.output);
  ASSERT_EQ(entries.size(), 1u) << listed.output;
  EXPECT_EQ(entries[0]["manifest_digest"], image["digest"]);
}

// Issue 20: a pixi.lock (version 6, as pixi writes it) is a lock for install and build: its
// environment's packages install with the same records as a solve, --environment picks the
// environment, and an unknown one names those the lock has.
TEST_F(WorkflowTest, PixiLockInstallsTheSameRecordsAsASolve) {
  auto lock = envbuild("lock -f environment.yml");
  ASSERT_EQ(lock.exit_code, 0) << lock.output;
  auto parsed = conda::parse_conda_lock(read_text(dir_ / "conda-lock.yml"), "conda-lock.yml");
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  std::string refs, packages;
  for (const auto* p : parsed->packages_for("linux-64", conda::CondaLockPackage::Manager::Conda)) {
    refs += "      - conda: " + p->url + "\n";
    packages += "- conda: " + p->url + "\n  sha256: " + p->sha256 + "\n  md5: " + p->md5 + "\n";
  }
  write_text(dir_ / "pixi.lock", "version: 6\nenvironments:\n  default:\n    channels:\n"
                                 "    - url: file://" + channel_.string() + "/\n    packages:\n"
                                 "      linux-64:\n" + refs + "  prod:\n    channels: []\n"
                                 "    packages:\n      linux-64:\n" + refs +
                                 "packages:\n" + packages);
  auto packages_of = [&](const fs::path& prefix) {
    std::map<std::string, std::string> out;
    for (const auto& [path, text] : environment_records(prefix))
      if (path.starts_with("conda-meta/") && path.ends_with(".json") &&
          path != "conda-meta/envbuild-relocations.json")  // it names the prefix
        out[path] = text;
    return out;
  };
  // One prefix path for both: patched files' sha256 in the records depend on it.
  auto solved = envbuild("install -q -p prefix -f environment.yml");
  ASSERT_EQ(solved.exit_code, 0) << solved.output;
  const auto want = packages_of(dir_ / "prefix");
  EXPECT_GE(want.size(), 2u);
  fs::remove_all(dir_ / "prefix");
  auto locked = envbuild("install -q -p prefix --lock pixi.lock --environment prod");
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  const auto got = packages_of(dir_ / "prefix");
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [path, text] : want) {
    auto it = got.find(path);
    ASSERT_NE(it, got.end()) << path;
    auto a = nlohmann::json::parse(it->second), b = nlohmann::json::parse(text);
    a.erase("requested_spec");  // a pixi.lock keeps no specs
    b.erase("requested_spec");
    EXPECT_EQ(a, b) << path;
  }
  auto built = envbuild("build --lock pixi.lock -t px:1 -o oci:img-pixi");
  EXPECT_EQ(built.exit_code, 0) << built.output;
  auto unknown = envbuild("install -q -p other --lock pixi.lock --environment staging");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("no environment 'staging'"), std::string::npos) << unknown.output;
  EXPECT_NE(unknown.output.find("default, prod"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace envbuild::builder
