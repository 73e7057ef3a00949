// envrun on SquashFS images built by `envbuild build --output squashfs:FILE` from the demo channel
// (a binary and a text placeholder, a noarch entry point, an activate.d script): run in place
// from the file (the kernel mount as root, squashfuse, a user namespace), many ranks sharing one
// mount, the fallback to an unpacked, relocated copy when this host cannot mount (mounting turned
// off, an unprivileged user without /dev/fuse, a missing prefix), `envrun unpack` and `check`,
// the host check before anything is mounted, and hostile files.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "conda/image_contract.hpp"
#include "conda/relocate_prefix.hpp"
#include "runtime/mount.hpp"
#include "squashfs/writer.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/process.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;
using testing::EnvChanges;
using testing::Finished;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

constexpr uid_t kNobody = 65534;

using testing::q;

size_t count_of(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; pos += needle.size())
    ++n;
  return n;
}

/// Every file, directory and link below `dir`: what a run created on the host.
size_t entries_below(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    // A mount point is one entry: what is inside it is the image's, not the host's.
    if (it->is_directory() && is_mount_point(it->path())) it.disable_recursion_pending();
    ++n;
  }
  return n;
}

// Whether a user other than the owner may reach `path` (every directory on the way searchable by
// others): under `bazel test` the temporary directory and the binaries live beneath /root.
bool others_can_reach(const fs::path& path) {
  for (fs::path p = fs::absolute(path); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH) == 0))
      return false;
    if (p == p.root_path()) break;
  }
  return true;
}

// The demo image, built once for the suite, for a prefix that exists (and one that does not).
class SquashfsRunTest : public testing::TempDirTest {
 protected:
  static void SetUpTestSuite() {
    // Beneath a directory the unprivileged user of the fallback test can reach.
    const fs::path tmp =
        others_can_reach(fs::temp_directory_path()) ? fs::temp_directory_path() : "/tmp";
    root_ = new fs::path(tmp / ("envb-sqfs-" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "env");
    // Readable by the unprivileged user of the fallback test.
    fs::permissions(*root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
    auto channel = testing::demo_channel(*error_);
    if (!channel) return;
    write_text(*root_ / "environment.yml",
               "name: demo\nchannels:\n  - " + channel->string() +
                   "\n  - nodefaults\ndependencies:\n  - python\n  - demo-hello\n  - demo-tools\n"
                   "  - demo-trainer\nvariables:\n  DEMO_MODE: squashfs\n");
    for (auto [file, prefix] : {std::pair{"demo.sqfs", *root_ / "env"},
                                std::pair{"absent.sqfs", *root_ / "absent/env"}}) {
      auto b = run_command("SOURCE_DATE_EPOCH=1700000000 " + q(testing::binary_dir() / "envbuild") +
                           " build -q -f " + q(*root_ / "environment.yml") +
                           " -t demo:1 --cache-dir " + q(*root_ / "build-cache") + " --prefix " +
                           q(prefix) + " -o " + q("squashfs:" + (*root_ / file).string()));
      if (b.exit_code != 0) *error_ += "envbuild build failed: " + b.output;
    }
    // The same environment as an OCI image, for --store squashfs.
    auto oci = run_command(q(testing::binary_dir() / "envbuild") + " build -q -f " +
                           q(*root_ / "environment.yml") + " -t demo:1 --cache-dir " +
                           q(*root_ / "build-cache") + " -o " +
                           q("oci:" + (*root_ / "layout").string() + ":1"));
    if (oci.exit_code != 0) *error_ += "envbuild build failed: " + oci.output;
  }
  static void TearDownTestSuite() {
    if (root_) fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_TRUE(error_->empty()) << *error_;
    cache_ = dir_ / "c";
  }

  static fs::path image() { return *root_ / "demo.sqfs"; }
  static fs::path prefix() { return *root_ / "env"; }

  EnvChanges env(const fs::path& cache) const {
    return {{"ENVRUN_CACHE", cache.string()},         {"CONDA_OVERRIDE_CUDA", std::nullopt},
            {"CONDA_OVERRIDE_GLIBC", std::nullopt},   {"CONDA_OVERRIDE_CUDA_ARCH", std::nullopt},
            {"ENVRUN_LIBCUDA", std::nullopt},         {"ENVRUN_SQUASHFS_MOUNT", std::nullopt},
            {"ENVRUN_SQUASHFS_USERNS", std::nullopt}, {"ENVRUN_TEST_STALL", std::nullopt}};
  }

  std::vector<std::string> envrun_argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{(testing::binary_dir() / "envrun").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Finished envrun(const std::vector<std::string>& args, const EnvChanges& extra = {}) {
    EnvChanges e = env(cache_);
    for (const auto& [k, v] : extra) e[k] = v;
    return testing::run_process(envrun_argv(args), e, dir_ / ("out-" + std::to_string(n_++)));
  }

  /// The one shared mount directory of the cache (m/<16 hex>).
  fs::path mount_dir() const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cache_ / "m", ec))
      if (e.is_directory()) return e.path();
    return {};
  }

  /// Blocks until the mount's watcher is gone (it unmounts, then exits): no timing involved.
  static void wait_for_watcher(const fs::path& dir) {
    auto lock =
        common::FileLock::acquire(dir.string() + ".watch.lock", common::LockMode::Exclusive);
    ASSERT_TRUE(lock) << lock.error().to_string();
  }

  /// The prefix demo-hello says it runs from ("... (from PREFIX, N bytes of prefix)").
  static std::string hello_prefix(const std::string& output) {
    size_t from = output.find("(from ");
    if (from == std::string::npos) return "";
    from += 6;
    return output.substr(from, output.find(", ", from) - from);
  }

  static fs::path* root_;
  static std::string* error_;
  fs::path cache_;
  int n_ = 0;
};
fs::path* SquashfsRunTest::root_ = nullptr;
std::string* SquashfsRunTest::error_ = new std::string;

TEST_F(SquashfsRunTest, RunsFromTheFileWithTheRelocatedToolsWorking) {
  Finished hello = envrun({image().string(), "--", "demo-hello"});
  ASSERT_EQ(hello.exit_code(), 0) << hello.output;
  const bool in_place = hello.output.find("envrun: mounted ") != std::string::npos;
  // Root always can: the kernel mount in a private mount namespace.
  if (::geteuid() == 0) {
    EXPECT_TRUE(in_place) << hello.output;
  }
  const std::string where = in_place ? prefix().string() : hello_prefix(hello.output);
  EXPECT_EQ(hello_prefix(hello.output), where) << hello.output;
  if (!in_place) {
    EXPECT_EQ(fs::path(where).parent_path(), cache_ / "p") << hello.output;
  }

  // Text placeholder, noarch entry point (its shebang), activate.d, the image's variables.
  Finished tools = envrun({image().string(), "--", "sh", "-c",
                           "demo-info; demo-train; echo \"mode=$DEMO_MODE prefix=$CONDA_PREFIX\""});
  ASSERT_EQ(tools.exit_code(), 0) << tools.output;
  for (const std::string& want : std::vector<std::string>{
           "demo-info: environment at " + where + "\n", "demo-train: python 3",
           " in " + where + "\n", "DEMO_TRAINER_HOME = " + where + "/share/demo-trainer\n",
           "mode=squashfs prefix=" + where + "\n"}) {
    SCOPED_TRACE(want);
    EXPECT_NE(tools.output.find(want), std::string::npos) << tools.output;
  }
  // Exit codes and signals are the command's own, as for OCI images.
  EXPECT_EQ(envrun({image().string(), "--", "sh", "-c", "exit 7"}).exit_code(), 7);
  Finished killed = envrun({image().string(), "--", "sh", "-c", "kill -USR1 $$"});
  ASSERT_TRUE(WIFSIGNALED(killed.status)) << killed.output;
  EXPECT_EQ(WTERMSIG(killed.status), SIGUSR1);
  EXPECT_EQ(envrun({image().string(), "--", "no-such-command"}).exit_code(), 127);
  // The image's Cmd when there is no command: none here, so it is an error, not a crash.
  EXPECT_NE(envrun({"squashfs:" + image().string()}).exit_code(), 0);
  if (in_place) {
    // The view was private: the host's prefix directory is as it was, and the cache holds a
    // handful of files (a mount directory, its locks), not an unpacked environment.
    EXPECT_TRUE(fs::is_empty(prefix()));
    EXPECT_FALSE(fs::exists(cache_ / "p"));
    wait_for_watcher(mount_dir());
    EXPECT_FALSE(is_mount_point(mount_dir()));
    EXPECT_LT(entries_below(cache_), 20u);
  }
}

/// Whether a spawned process has ended (not reaped: wait_status still gets its status).
bool has_exited(const testing::Spawned& s) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(s.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == s.pid;
}

TEST_F(SquashfsRunTest, ConcurrentStartsShareOneMount) {
  constexpr int kRanks = 16;
  // Every rank stays in the environment until all are in (a barrier, not a delay): else, on a
  // loaded machine, a rank that starts after the others have left finds the mount taken down
  // and mounts again, as it should.
  const fs::path barrier = dir_ / "barrier";
  fs::create_directories(barrier);
  std::vector<testing::Spawned> ranks;
  for (int i = 0; i < kRanks; ++i)
    ranks.push_back(testing::spawn_process(
        envrun_argv({image().string(), "--", "sh", "-c",
                     "demo-hello >/dev/null && echo rank " + std::to_string(i) + " && : >" +
                         shell_quote((barrier / ("in-" + std::to_string(i))).string()) +
                         " && while [ ! -e " + shell_quote((barrier / "go").string()) +
                         " ]; do sleep 0.01; done"}),
        env(cache_), dir_ / ("rank-" + std::to_string(i))));
  for (;;) {  // until every rank is in, or one has failed
    size_t in = 0;
    for (int i = 0; i < kRanks; ++i) in += fs::exists(barrier / ("in-" + std::to_string(i)));
    bool failed = false;
    for (const auto& rank : ranks) failed = failed || has_exited(rank);
    if (in == kRanks || failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  write_text(barrier / "go", "");
  size_t mounts = 0, unpacks = 0;
  for (int i = 0; i < kRanks; ++i) {
    int status = testing::wait_status(ranks[i]);
    std::string out = read_text(ranks[i].output);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(out.find("rank " + std::to_string(i) + "\n"), std::string::npos) << out;
    mounts += count_of(out, "envrun: mounted ");
    unpacks += count_of(out, "envrun: unpacking ");
  }
  // One mount for all (or, where this host cannot mount, one unpack for all).
  EXPECT_EQ(mounts + unpacks, 1u);
  if (::geteuid() == 0) {
    EXPECT_EQ(mounts, 1u);
  }
  if (mounts == 1) {
    // The last rank out lets the watcher take the mount down.
    wait_for_watcher(mount_dir());
    EXPECT_FALSE(is_mount_point(mount_dir()));
  }
}

TEST_F(SquashfsRunTest, FallsBackToAnUnpackedCopyWhenMountingIsTurnedOff) {
  Finished first =
      envrun({image().string(), "--", "demo-hello"}, {{"ENVRUN_SQUASHFS_MOUNT", "none"}});
  ASSERT_EQ(first.exit_code(), 0) << first.output;
  EXPECT_NE(
      first.output.find("cannot run " + image().string() + " in place: mounting is turned off"),
      std::string::npos)
      << first.output;
  EXPECT_EQ(count_of(first.output, "envrun: unpacking "), 1u) << first.output;
  const std::string where = hello_prefix(first.output);
  EXPECT_EQ(fs::path(where).parent_path(), cache_ / "p") << first.output;
  auto index = conda::read_relocation_index(fs::path(where));
  ASSERT_TRUE(index && *index);
  EXPECT_EQ((*index)->prefix, where);
  // Warm: neither the reason nor an unpack again.
  Finished again =
      envrun({image().string(), "--", "demo-info"}, {{"ENVRUN_SQUASHFS_MOUNT", "none"}});
  EXPECT_EQ(again.output, "demo-info: environment at " + where + "\n");
}

TEST_F(SquashfsRunTest, AnUnprivilegedUserWithoutFuseGetsTheFallback) {
  // Given a user that may not mount (root drops to nobody; /dev/fuse is root's alone here, the
  // kernel mount needs root), expect the documented fallback, and the tools working from it.
  std::vector<std::string> argv = envrun_argv({image().string(), "--", "demo-hello"});
  fs::path cache = *root_ / ("nobody-" + std::to_string(n_));
  if (::geteuid() == 0) {
    ENVB_REQUIRE_TOOL("setpriv");
    if (!others_can_reach(testing::binary_dir() / "envrun")) {
      // envrun and envrun-full where nobody may run them (they find each other side by side).
      const fs::path bin = *root_ / "bin";
      fs::create_directories(bin);
      for (const char* tool : {"envrun", "envrun-full"})
        fs::copy_file(testing::binary_dir() / tool, bin / tool,
                      fs::copy_options::overwrite_existing);
      argv[0] = (bin / "envrun").string();
    }
    fs::create_directories(cache);
    ASSERT_EQ(::chown(cache.c_str(), kNobody, kNobody), 0);
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                               "--clear-groups", "--inh-caps=-all"});
  } else {
    cache = cache_;
  }
  EnvChanges e = env(cache);
  e["HOME"] = cache.string();
  Finished run = testing::run_process(argv, e, dir_ / "nobody.out");
  ASSERT_EQ(run.exit_code(), 0) << run.output;
  const std::string where = hello_prefix(run.output);
  struct stat fuse {};
  const bool others_may_use_fuse = ::stat("/dev/fuse", &fuse) == 0 &&
                                   (fuse.st_mode & (S_IROTH | S_IWOTH)) == (S_IROTH | S_IWOTH);
  if (::geteuid() == 0 && !others_may_use_fuse) {
    EXPECT_NE(run.output.find("kernel: the kernel mount needs root"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("squashfuse: "), std::string::npos) << run.output;
    EXPECT_EQ(fs::path(where).parent_path(), cache / "p") << run.output;
  } else {
    EXPECT_TRUE(where == prefix().string() || fs::path(where).parent_path() == cache / "p")
        << run.output;
  }
}

TEST_F(SquashfsRunTest, AMissingPrefixIsExplainedAndFallsBack) {
  // envrun never creates the directory an image names: it says how, and runs an unpacked copy.
  Finished run = envrun({(*root_ / "absent.sqfs").string(), "--", "demo-hello"});
  ASSERT_EQ(run.exit_code(), 0) << run.output;
  EXPECT_NE(run.output.find((*root_ / "absent/env").string() + " does not exist on this host"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("mkdir -p " + (*root_ / "absent/env").string()), std::string::npos)
      << run.output;
  EXPECT_FALSE(fs::exists(*root_ / "absent"));
  EXPECT_EQ(fs::path(hello_prefix(run.output)).parent_path(), cache_ / "p") << run.output;
}

TEST_F(SquashfsRunTest, SquashfuseAndUserNamespaceViewsWorkToo) {
  struct Case {
    std::string name;
    EnvChanges extra;
    std::string method;  // what root gets
  } cases[] = {
      {"squashfuse", {{"ENVRUN_SQUASHFS_MOUNT", "fuse"}}, "(squashfuse)"},
      {"user namespace", {{"ENVRUN_SQUASHFS_USERNS", "1"}}, "(kernel)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Finished run = envrun({image().string(), "--", "sh", "-c", "demo-hello; id -u"}, c.extra);
    ASSERT_EQ(run.exit_code(), 0) << run.output;
    // The command runs as the user, never as a namespace's root.
    EXPECT_NE(run.output.find("\n" + std::to_string(::geteuid()) + "\n"), std::string::npos)
        << run.output;
    if (::geteuid() == 0) {
      EXPECT_NE(run.output.find(c.method), std::string::npos) << run.output;
      EXPECT_EQ(hello_prefix(run.output), prefix().string()) << run.output;
      wait_for_watcher(mount_dir());
    }
  }
}

TEST_F(SquashfsRunTest, UnpackGivesAnOrdinaryRelocatedPrefix) {
  fs::path dir = dir_ / "unpacked";
  Finished u = envrun({"unpack", image().string(), dir.string()});
  ASSERT_EQ(u.exit_code(), 0) << u.output;
  auto hello = run_command(q(dir / "bin/demo-hello") + " --prefix");
  EXPECT_NE(hello.output.find("\n" + dir.string() + "\n"), std::string::npos) << hello.output;
  EXPECT_EQ(run_command(q(dir / "bin/demo-info")).output,
            "demo-info: environment at " + dir.string() + "\n");
  auto index = conda::read_relocation_index(dir);
  ASSERT_TRUE(index && *index);
  EXPECT_EQ((*index)->prefix, dir.string());
  // A prefix like an unpacked OCI image: envrun runs the directory, job scripts source activate.
  Finished run = envrun({dir.string(), "--", "sh", "-c", "demo-info; echo \"mode=$DEMO_MODE\""});
  EXPECT_EQ(run.output, "demo-info: environment at " + dir.string() + "\nmode=squashfs\n");
  auto activated = run_command(". " + q(dir / "bin/activate") + " && echo \"$CONDA_PREFIX\"");
  EXPECT_EQ(activated.output, dir.string() + "\n");
  // Into a directory that is not empty: refused, nothing changed.
  Finished again = envrun({"unpack", image().string(), dir.string()});
  EXPECT_EQ(again.exit_code(), 2) << again.output;
}

TEST_F(SquashfsRunTest, TheHostIsCheckedBeforeAnythingIsMountedOrUnpacked) {
  Finished check = envrun({"check", image().string()});
  EXPECT_EQ(check.exit_code(), 0) << check.output;
  EXPECT_NE(check.output.find("__glibc >=2.17"), std::string::npos) << check.output;
  Finished old = envrun({image().string(), "--", "demo-hello"}, {{"CONDA_OVERRIDE_GLIBC", "2.5"}});
  EXPECT_EQ(old.exit_code(), 8) << old.output;
  EXPECT_NE(old.output.find("__glibc >=2.17"), std::string::npos) << old.output;
  EXPECT_EQ(old.output.find("envrun: mounted"), std::string::npos) << old.output;
  EXPECT_FALSE(fs::exists(cache_ / "m"));
  EXPECT_FALSE(fs::exists(cache_ / "p"));
  EXPECT_EQ(envrun({"--no-check", image().string(), "--", "demo-hello"},
                   {{"CONDA_OVERRIDE_GLIBC", "2.5"}})
                .exit_code(),
            0);

  // A requirement only a package record states (no label) is checked too, mounted or not, before
  // the command's view exists (there the prefix could cover what the check reads); a host that
  // cannot run the image gets exit code 8, never an unpacked copy instead.
  conda::ImageInfo info;
  info.labels[std::string(conda::kPrefixLabel)] = prefix().string();
  auto written = squashfs::write_image(
      {squashfs::Entry::file_with_content(std::string(conda::kImageInfoPath),
                                          conda::to_json_string(info)),
       squashfs::Entry::file_with_content("conda-meta/needy-1.0-0.json",
                                          R"({"name":"needy","depends":["__glibc >=99"]})")},
      {}, dir_ / "needy.sqfs");
  ASSERT_TRUE(written) << written.error().to_string();
  for (const char* mount : {"auto", "none"}) {
    SCOPED_TRACE(mount);
    Finished needy = envrun({(dir_ / "needy.sqfs").string(), "--", "echo", "ran"},
                            {{"ENVRUN_SQUASHFS_MOUNT", mount}});
    EXPECT_EQ(needy.exit_code(), 8) << needy.output;
    EXPECT_NE(needy.output.find("__glibc >=99"), std::string::npos) << needy.output;
    EXPECT_EQ(needy.output.find("ran\n"), std::string::npos) << needy.output;
    if (std::string(mount) == "auto" && ::geteuid() == 0) {
      EXPECT_EQ(needy.output.find("unpacking"), std::string::npos) << needy.output;
    }
  }
}

TEST_F(SquashfsRunTest, StoreSquashfsKeepsAnOciImageAsOneFileInTheCache) {
  const std::string layout = "oci:" + (*root_ / "layout").string() + ":1";
  Finished first = envrun({"--store", "squashfs", layout, "--", "demo-hello"});
  ASSERT_EQ(first.exit_code(), 0) << first.output;
  EXPECT_NE(first.output.find("as one SquashFS file"), std::string::npos) << first.output;
  const fs::path entry = hello_prefix(first.output);
  EXPECT_EQ(entry.parent_path(), cache_ / "p") << first.output;
  EXPECT_TRUE(fs::is_regular_file(entry.string() + ".sqfs"));
  EXPECT_FALSE(fs::exists(cache_ / "l"));  // no shared layer trees either
  const bool mounted = first.output.find("envrun: mounted " + entry.string() + ".sqfs at " +
                                         entry.string()) != std::string::npos;
  if (::geteuid() == 0) {
    EXPECT_TRUE(mounted) << first.output;
  }
  if (mounted) {
    // One file and a few small ones on the host, however many files the environment has.
    wait_for_watcher(entry);
    EXPECT_TRUE(fs::is_empty(entry));
    EXPECT_LT(entries_below(cache_), 30u);
    // Warm: the entry is found and mounted again, nothing unpacked.
    Finished warm = envrun({layout, "--", "demo-info"});
    EXPECT_EQ(warm.exit_code(), 0) << warm.output;
    EXPECT_EQ(warm.output.find("unpacking"), std::string::npos) << warm.output;
    EXPECT_NE(warm.output.find("environment at " + entry.string() + "\n"), std::string::npos);
    wait_for_watcher(entry);
  }
  // Where the host cannot mount, the file is extracted in place once and the entry is a tree.
  Finished off = envrun({layout, "--", "demo-info"}, {{"ENVRUN_SQUASHFS_MOUNT", "none"}});
  ASSERT_EQ(off.exit_code(), 0) << off.output;
  EXPECT_NE(off.output.find("extracting " + entry.string() + ".sqfs into " + entry.string()),
            std::string::npos)
      << off.output;
  EXPECT_FALSE(fs::exists(entry.string() + ".sqfs"));
  Finished tree = envrun({layout, "--", "demo-info"});
  EXPECT_EQ(tree.output, "demo-info: environment at " + entry.string() + "\n");
  EXPECT_EQ(envrun({"gc", "--days", "0"}).exit_code(), 0);
  EXPECT_FALSE(fs::exists(entry));
}

TEST_F(SquashfsRunTest, UnpackLimitsHoldForSquashfsImagesAsForLayers) {
  // Given images whose declared sizes pass the reader's own bounds but not envrun's unpack
  // limits (ENVRUN_MAX_*, as for layers), expect exit code 5 naming the variable, before a byte
  // is extracted or anything mounted. A sparse file of zeros costs a SquashFS image nothing.
  conda::ImageInfo info;
  info.labels[std::string(conda::kPrefixLabel)] = prefix().string();
  auto image_with_file = [&](const std::string& name, uint64_t bytes) {
    const fs::path content = dir_ / (name + ".content");
    { std::ofstream(content.string()); }
    fs::resize_file(content, bytes);
    const fs::path file = dir_ / name;
    auto written =
        squashfs::write_image({squashfs::Entry::file_with_content(
                                   std::string(conda::kImageInfoPath), conda::to_json_string(info)),
                               squashfs::Entry::file("zeros", content)},
                              {}, file);
    EXPECT_TRUE(written) << written.error().to_string();
    fs::remove(content);
    return file;
  };
  const fs::path bomb = image_with_file("bomb.sqfs", uint64_t{80} << 20);
  const fs::path two_mb = image_with_file("two-mb.sqfs", uint64_t{2} << 20);
  ASSERT_LT(fs::file_size(bomb), uint64_t{64} << 10);
  struct Case {
    std::string name;
    std::vector<std::string> args;
    EnvChanges extra;
    std::string want;
  } cases[] = {
      {"a bomb, unpacked",
       {bomb.string(), "--", "true"},
       {{"ENVRUN_SQUASHFS_MOUNT", "none"}},
       "ENVRUN_MAX_EXPANSION"},
      {"a bomb, envrun unpack",
       {"unpack", bomb.string(), (dir_ / "out").string()},
       {},
       "ENVRUN_MAX_EXPANSION"},
      {"past the bytes limit",
       {two_mb.string(), "--", "true"},
       {{"ENVRUN_SQUASHFS_MOUNT", "none"}, {"ENVRUN_MAX_UNPACKED_BYTES", "1M"}},
       "ENVRUN_MAX_UNPACKED_BYTES"},
      {"past the entries limit, mounted",
       {two_mb.string(), "--", "true"},
       {{"ENVRUN_MAX_ENTRIES", "2"}},
       "ENVRUN_MAX_ENTRIES"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Finished run = envrun(c.args, c.extra);
    EXPECT_EQ(run.exit_code(), 5) << run.output;
    EXPECT_NE(run.output.find(c.want), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("envrun: mounted"), std::string::npos) << run.output;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "zeros"));
    std::error_code ec;
    uint64_t written = 0;
    for (fs::recursive_directory_iterator it(cache_, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file()) written += it->file_size();
    EXPECT_LT(written, uint64_t{1} << 20);
  }
}

TEST_F(SquashfsRunTest, HostileFilesAreRefusedWithoutMountingThem) {
  auto image_with = [&](const std::string& name, std::vector<squashfs::Entry> entries) {
    fs::path file = dir_ / name;
    auto written = squashfs::write_image(std::move(entries), {}, file);
    EXPECT_TRUE(written) << written.error().to_string();
    return file;
  };
  auto info_with_prefix = [](const std::string& p) {
    conda::ImageInfo info;
    info.labels[std::string(conda::kPrefixLabel)] = p;
    return squashfs::Entry::file_with_content(std::string(conda::kImageInfoPath),
                                              conda::to_json_string(info));
  };
  const std::string good = read_text(image());
  write_text(dir_ / "truncated.sqfs", good.substr(0, good.size() / 2));
  write_text(dir_ / "garbage.sqfs", "hsqs" + std::string(200, '\x7f'));
  struct Case {
    std::string name;
    fs::path file;
    int exit_code;
    std::string want;
  };
  std::vector<Case> cases = {
      {"truncated", dir_ / "truncated.sqfs", 5, "not a sound SquashFS image"},
      {"garbage", dir_ / "garbage.sqfs", -1, "garbage.sqfs"},
      {"no image.json", image_with("none.sqfs", {squashfs::Entry::file_with_content("x", "x")}), 2,
       "envbuild build --output squashfs:FILE"},
      {"image.json is a symlink",
       image_with("link.sqfs", {squashfs::Entry::symlink(".envbuild/image.json", "/etc/passwd")}),
       2, "has no .envbuild/image.json"},
      {"prefix in /proc", image_with("proc.sqfs", {info_with_prefix("/proc/self")}), 2,
       "not a safe absolute path"},
      {"relative prefix", image_with("relative.sqfs", {info_with_prefix("opt/conda")}), 2,
       "not a safe absolute path"},
      {"prefix with ..", image_with("dotdot.sqfs", {info_with_prefix("/opt/../etc")}), 2,
       "not a safe absolute path"},
      {"malformed image.json",
       image_with("json.sqfs", {squashfs::Entry::file_with_content(".envbuild/image.json", "{")}),
       2, "not a JSON object"},
  };
  // A sound superblock and image.json, but an entry named ".." (patched into mksquashfs's
  // uncompressed directory table): refused by the walk before any mount, not unpacked either.
  {
    conda::ImageInfo info;
    info.labels[std::string(conda::kPrefixLabel)] = prefix().string();
    write_text(dir_ / "tree/.envbuild/image.json", conda::to_json_string(info));
    write_text(dir_ / "tree/zq", "x\n");
    auto made = run_command("mksquashfs " + q(dir_ / "tree") + " " + q(dir_ / "dotdot-name.sqfs") +
                            " -quiet -no-progress -noappend -no-xattrs -noI -noD -noF");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    std::string bytes = read_text(dir_ / "dotdot-name.sqfs");
    ASSERT_NE(bytes.find("zq"), std::string::npos);
    bytes.replace(bytes.find("zq"), 2, "..");
    write_text(dir_ / "dotdot-name.sqfs", bytes);
    cases.push_back({"an entry named ..", dir_ / "dotdot-name.sqfs", 5, "an entry named '..'"});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Finished run = envrun({"squashfs:" + c.file.string(), "--", "true"});
    if (c.exit_code >= 0) {
      EXPECT_EQ(run.exit_code(), c.exit_code) << run.output;
    } else {
      // Not an image of ours: unsupported (1), invalid (2) or corrupt (5); never a crash.
      EXPECT_TRUE(run.exit_code() >= 1 && run.exit_code() <= 5) << run.output;
    }
    EXPECT_NE(run.output.find(c.want), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("envrun: mounted"), std::string::npos) << run.output;
    EXPECT_FALSE(fs::exists(cache_ / "p"));
  }
}

}  // namespace
}  // namespace envbuild::runtime
