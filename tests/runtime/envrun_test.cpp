// envrun end to end: fixture images built here with oci/ (a conda-like prefix at /opt/conda with
// text, shebang and binary files patched by conda's rules and their relocation records), run
// through the real envrun binary with a per-test cache root.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "conda/extract.hpp"
#include "conda/image_contract.hpp"
#include "conda/package_metadata.hpp"
#include "conda/prefix_replace.hpp"
#include "conda/relocate_prefix.hpp"
#include "oci/descriptor.hpp"
#include "oci/layer_writer.hpp"
#include "oci/layout.hpp"
#include "oci/mutate.hpp"
#include "oci/registry/copy.hpp"
#include "runtime/activate.hpp"
#include "runtime/cache.hpp"
#include "tests/testing/fake_libcuda.hpp"
#include "tests/testing/process.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/testing.hpp"

extern char** environ;

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::read_text;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using envbuild::testing::write_text;
using nlohmann::json;

/// conda-build's long placeholder: 255 bytes, so binaries have room for long prefixes.
std::string long_placeholder() {
  std::string p = "/tmp/build/_h_env";
  while (p.size() < 255) p += "_placehold";
  return p.substr(0, 255);
}

using envbuild::testing::Spawned;
using envbuild::testing::wait_status;

/// Starts envrun with `args`, stdout+stderr to `output`, the environment changed by `env`
/// (nullopt unsets).
Spawned spawn_envrun(const std::vector<std::string>& args,
                     const std::map<std::string, std::optional<std::string>>& env,
                     const fs::path& output) {
  std::vector<std::string> argv{(envbuild::testing::binary_dir() / "envrun").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return envbuild::testing::spawn_process(argv, env, output);
}

struct RunResult {
  int status = 0;  // raw wait status
  std::string output;
  [[nodiscard]] int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

size_t count_lines_with(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; pos += needle.size())
    ++n;
  return n;
}

struct FixtureOptions {
  bool activate_script = true;
  std::string requirements;  // org.envbuild.requirements label; empty: none
  std::string tag = "latest";
  /// Written to share/note.txt in the top layer: images that differ in it alone share their
  /// base layer (the same tree, byte for byte).
  std::string top_note;
  /// A stub bin/python and an ipykernel package in the top layer (what a kernel needs).
  bool python_kernel = false;
};

/// The complete prefixes of the cache (those with a marker).
std::set<fs::path> prefixes_in(const fs::path& cache) {
  std::set<fs::path> out;
  if (!fs::exists(cache / "p")) return out;
  for (const auto& e : fs::directory_iterator(cache / "p"))
    if (e.path().extension() == ".json") out.insert(e.path().parent_path() / e.path().stem());
  return out;
}

/// The complete layer directories of the cache, and whatever else is in l/ but lock files.
std::vector<std::string> layer_names_in(const fs::path& cache) {
  std::vector<std::string> out;
  if (!fs::exists(cache / "l")) return out;
  for (const auto& e : fs::directory_iterator(cache / "l"))
    if (e.path().extension() != ".lock") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

/// Images that differ in their top layer only.
FixtureOptions sharing_base(std::string tag) {
  FixtureOptions options;
  options.top_note = "image " + tag;
  options.tag = std::move(tag);
  return options;
}

class EnvrunTest : public envbuild::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    cache_ = dir_ / "c";
  }

  /// Builds oci:<dir>/img:<tag>: layer 1 holds the prefix, layer 2 (the envbuild top layer) the
  /// relocation records, conda-meta/history, and a whiteout for a file of layer 1.
  std::string build_fixture(const FixtureOptions& options = {}) {
    const std::string placeholder = long_placeholder();
    const std::string image_prefix = "/opt/conda";
    fs::path tree = dir_ / (options.activate_script ? "tree-activate" : "tree");
    fs::path top = dir_ / ("top-" + options.tag);
    if (!options.top_note.empty()) write_text(top / "share/note.txt", options.top_note + "\n");
    if (options.python_kernel) {
      write_text(top / "bin/python", "#!/bin/sh\necho \"stub python $*\"\n");
      fs::permissions(top / "bin/python", fs::perms::owner_all | fs::perms::others_exec);
      write_text(top / "lib/python3.11/site-packages/ipykernel/__init__.py", "");
    }
    // The base tree is built once per test and kept: a second image built from it shares its
    // base layer byte for byte.
    if (!trees_.contains(tree)) {
      trees_[tree] = json::array();
      write_text(tree / "bin/greet", "#!/bin/sh\necho \"greet from " + placeholder + "\"\ncat '" +
                                         placeholder + "/share/data.txt'\n");
      write_text(tree / "share/data.txt", "data at " + placeholder + "/share\n");
      write_text(tree / "share/removed.txt", "whited out by the top layer\n");
      fs::copy_file("/bin/sh", tree / "bin/sh");
      write_text(tree / "bin/script",
                 "#!" + placeholder + "/bin/sh\necho \"script ran by $0 with $CONDA_PREFIX\"\n");
      write_text(
          tree / "conda-meta/tool-1.0-0.json",
          R"({"name":"tool","version":"1.0","build":"0","depends":["__glibc >=2.17","libc"]})");
      if (options.activate_script) {
        write_text(tree / "etc/conda/activate.d/tool_activate.sh",
                   "export ACTIVATED_BY_SCRIPT=\"from $CONDA_PREFIX\"\n");
      }
      write_text(tree / "etc/conda/env_vars.d/tool.json", R"({"FROM_ENV_VARS":"yes"})");
      // A C binary holding the placeholder in a NUL-padded string (conda's binary mode).
      write_text(dir_ / "bintool.c", "#include <stdio.h>\nstatic const char where[] = \"" +
                                         placeholder +
                                         "\";\nint main(void){puts(where);return 0;}\n");
      auto cc = run_command("cc -O0 -o " + shell_quote((tree / "bin/bintool").string()) + " " +
                            shell_quote((dir_ / "bintool.c").string()));
      EXPECT_EQ(cc.exit_code, 0) << cc.output;
      fs::permissions(tree / "bin/greet", fs::perms::owner_all | fs::perms::group_read |
                                              fs::perms::group_exec | fs::perms::others_read |
                                              fs::perms::others_exec);
      fs::permissions(tree / "bin/script", fs::status(tree / "bin/greet").permissions());

      // Install-time patching: placeholder -> /opt/conda, keeping the records.
      struct Patch {
        const char* path;
        conda::FileMode mode;
      };
      for (Patch p : {Patch{"bin/greet", conda::FileMode::Text},
                      Patch{"share/data.txt", conda::FileMode::Text},
                      Patch{"bin/script", conda::FileMode::Text},
                      Patch{"bin/bintool", conda::FileMode::Binary}}) {
        conda::PrefixReplacement r{placeholder, image_prefix, p.mode, conda::TargetOs::Linux};
        auto record = conda::replace_prefix_in_file(tree / p.path, r, std::string(p.path));
        EXPECT_TRUE(record && *record) << p.path;
        if (record && *record) trees_[tree].push_back(conda::to_json(**record));
      }
    }
    const json& files = trees_.at(tree);
    write_text(top / "conda-meta/envbuild-relocations.json",
               json{{"format", 1}, {"prefix", image_prefix}, {"files", files}}.dump());
    write_text(top / "conda-meta/history", "");

    fs::path layout_dir = dir_ / "img";
    auto layout = oci::Layout::create(layout_dir);
    EXPECT_TRUE(layout) << layout.error().to_string();
    auto base_entries = oci::entries_from_tree(tree, "opt/conda");
    EXPECT_TRUE(base_entries);
    auto top_entries = oci::entries_from_tree(top, "opt/conda");
    EXPECT_TRUE(top_entries);
    top_entries->push_back(oci::LayerEntry::whiteout("opt/conda/share/removed.txt"));
    auto l1 = oci::write_layer(*base_entries, {}, layout->blobs());
    auto l2 = oci::write_layer(*top_entries, {}, layout->blobs());
    EXPECT_TRUE(l1 && l2);
    oci::ConfigChanges changes;
    changes.env = {{"PATH", image_prefix + "/bin:/usr/local/bin:/usr/bin:/bin"},
                   {"CONDA_PREFIX", image_prefix},
                   {"CONDA_DEFAULT_ENV", "fixture"},
                   {"MY_DATA", image_prefix + "/share/data.txt"}};
    changes.labels["org.envbuild.prefix"] = image_prefix;
    if (!options.requirements.empty())
      changes.labels["org.envbuild.requirements"] = options.requirements;
    changes.cmd = std::vector<std::string>{"greet"};
    auto manifest =
        oci::build_image(oci::host_platform(), {{*l1, {}}, {*l2, {}}}, changes, layout->blobs());
    EXPECT_TRUE(manifest) << manifest.error().to_string();
    EXPECT_TRUE(layout->add(*manifest, options.tag));
    return "oci:" + layout_dir.string() + ":" + options.tag;
  }

  std::map<std::string, std::optional<std::string>> env(const fs::path& cache) const {
    return {{"ENVRUN_CACHE", cache.string()},       {"CONDA_OVERRIDE_CUDA", std::nullopt},
            {"CONDA_OVERRIDE_GLIBC", std::nullopt}, {"CONDA_OVERRIDE_CUDA_ARCH", std::nullopt},
            {"ENVRUN_LIBCUDA", std::nullopt},       {"ENVRUN_TEST_STALL", std::nullopt}};
  }

  RunResult envrun(const std::vector<std::string>& args,
                   std::map<std::string, std::optional<std::string>> extra = {},
                   std::optional<fs::path> cache = std::nullopt) {
    auto e = env(cache.value_or(cache_));
    for (auto& [k, v] : extra) e[k] = v;
    fs::path out = dir_ / ("out-" + std::to_string(counter_++));
    Spawned s = spawn_envrun(args, e, out);
    RunResult r;
    r.status = wait_status(s);
    r.output = read_text(out);
    return r;
  }

  fs::path entry_prefix() const {
    if (!fs::exists(cache_ / "p")) return {};
    for (const auto& e : fs::directory_iterator(cache_ / "p"))
      if (e.path().extension() == ".json") return e.path().parent_path() / e.path().stem();
    return {};
  }

  fs::path cache_;
  int counter_ = 0;
  std::map<fs::path, json> trees_;  // base trees built, with their relocation records
};

TEST(RewritePrefix, ReplacesWholePathPrefixesOnly) {
  struct Case {
    std::string_view in, want;
  } cases[] = {
      {"/opt/conda/bin:/usr/bin", "/c/p/ab/bin:/usr/bin"},
      {"/opt/conda", "/c/p/ab"},
      {"/opt/conda2/bin", "/opt/conda2/bin"},
      {"x=/opt/conda;y=/opt/conda/lib", "x=/c/p/ab;y=/c/p/ab/lib"},
      {"/x/opt/conda", "/x/opt/conda"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(rewrite_prefix(c.in, "/opt/conda", "/c/p/ab"), c.want);
  }
}

TEST(SplitRequirementsLabel, TrimsAndSkipsEmpty) {
  EXPECT_EQ(conda::split_requirements_label(" __cuda >=12.4; __glibc >=2.17 ;;"),
            (std::vector<std::string>{"__cuda >=12.4", "__glibc >=2.17"}));
}

TEST(FindInPath, SkipsRepeatedDirectoriesAndFindsLaterOnes) {
  fs::path sh = fs::canonical("/bin/sh");
  std::string dir = sh.parent_path().string();
  EXPECT_EQ(find_in_path("sh", "/nonexistent:/nonexistent::" + dir + ":" + dir),
            std::optional<std::string>(dir + "/sh"));
  EXPECT_EQ(find_in_path("no-such-tool-here", dir + ":" + dir), std::nullopt);
}

TEST(ActivatedEnvironment, PrefixFirstThenHostPath) {
  EnvInfo info;
  info.prefix = "/c/p/ab";
  info.env = {"PATH=/c/p/ab/bin:/usr/bin", "CONDA_PREFIX=/c/p/ab", "HOME=/root", "LANG=C.UTF-8"};
  info.env_vars = {{"X", "1"}};
  auto env = activated_environment(info, {"PATH=/home/u/bin:/usr/bin", "HOME=/home/u"});
  auto has = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  EXPECT_TRUE(has("PATH=/c/p/ab/bin:/home/u/bin:/usr/bin"));
  EXPECT_TRUE(has("HOME=/home/u"));
  EXPECT_TRUE(has("LANG=C.UTF-8"));
  EXPECT_TRUE(has("CONDA_PREFIX=/c/p/ab"));
  EXPECT_TRUE(has("CONDA_DEFAULT_ENV=/c/p/ab"));
  EXPECT_TRUE(has("X=1"));
}

TEST_F(EnvrunTest, RunsCommandsWithRelocatedPrefixAndPassesExitCodes) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture();
  RunResult first = envrun({image, "--", "greet"});
  ASSERT_EQ(first.exit_code(), 0) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "envrun: unpacking"), 1u) << first.output;
  fs::path prefix = entry_prefix();
  ASSERT_FALSE(prefix.empty());
  EXPECT_EQ(prefix.parent_path(), cache_ / "p");
  EXPECT_EQ(prefix.filename().string().size(), 12u);
  EXPECT_NE(first.output.find("greet from " + prefix.string() + "\n"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("data at " + prefix.string() + "/share"), std::string::npos);
  EXPECT_FALSE(fs::exists(prefix / "share/removed.txt"));  // the top layer's whiteout

  // Warm: no unpack; binary, shebang, env all point at the real prefix.
  RunResult bin = envrun({image, "--", "bintool"});
  EXPECT_EQ(bin.exit_code(), 0) << bin.output;
  EXPECT_EQ(bin.output, prefix.string() + "\n");
  RunResult script = envrun({image, "script"});
  EXPECT_EQ(script.output,
            "script ran by " + prefix.string() + "/bin/script with " + prefix.string() + "\n");
  RunResult vars = envrun({image, "--", "sh", "-c",
                           "echo $CONDA_PREFIX $CONDA_DEFAULT_ENV $MY_DATA $FROM_ENV_VARS; "
                           "echo $ACTIVATED_BY_SCRIPT; echo $PATH"});
  EXPECT_EQ(vars.output.substr(0, vars.output.rfind('\n', vars.output.size() - 2) + 1),
            prefix.string() + " fixture " + prefix.string() + "/share/data.txt yes\nfrom " +
                prefix.string() + "\n");
  EXPECT_TRUE(vars.output.find("\n" + prefix.string() + "/bin:") != std::string::npos)
      << vars.output;

  // The image's Cmd when no command is given.
  RunResult cmd = envrun({image});
  EXPECT_EQ(cmd.exit_code(), 0);
  EXPECT_EQ(cmd.output.substr(0, 11), "greet from ");

  // Exit codes and signals are the command's own.
  EXPECT_EQ(envrun({image, "--", "sh", "-c", "exit 7"}).exit_code(), 7);
  RunResult killed = envrun({image, "--", "sh", "-c", "kill -USR1 $$"});
  ASSERT_TRUE(WIFSIGNALED(killed.status)) << killed.output;
  EXPECT_EQ(WTERMSIG(killed.status), SIGUSR1);
  RunResult missing = envrun({image, "--", "no-such-command"});
  EXPECT_EQ(missing.exit_code(), 127) << missing.output;
}

TEST_F(EnvrunTest, DirectExecWithoutActivateScripts) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture(
      {.activate_script = false, .requirements = "", .tag = "latest", .top_note = ""});
  RunResult r = envrun({image, "--", "bintool"});
  ASSERT_EQ(r.exit_code(), 0) << r.output;
  RunResult killed = envrun({image, "--", "sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(WIFSIGNALED(killed.status));
  EXPECT_EQ(WTERMSIG(killed.status), SIGTERM);
  EXPECT_EQ(envrun({image, "--", "sh", "-c", "exit 42"}).exit_code(), 42);
}

TEST_F(EnvrunTest, RelocatesToCacheRootsOfDifferentLengths) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture();
  // 150+ bytes: the shebang (prefix/bin/sh) passes 127 bytes and becomes #!/usr/bin/env sh.
  fs::path long_root = dir_ / std::string(150, 'L');
  for (const fs::path& root : {dir_ / "s", long_root}) {
    SCOPED_TRACE(root.string());
    RunResult bin = envrun({image, "--", "bintool"}, {}, root);
    ASSERT_EQ(bin.exit_code(), 0) << bin.output;
    std::string prefix = bin.output.substr(bin.output.rfind('\n', bin.output.size() - 2) + 1);
    prefix.pop_back();
    EXPECT_EQ(fs::path(prefix).parent_path(), root / "p");
    RunResult script = envrun({image, "--", "script"}, {}, root);
    EXPECT_EQ(script.exit_code(), 0) << script.output;
    EXPECT_NE(script.output.find("with " + prefix + "\n"), std::string::npos) << script.output;
    RunResult greet = envrun({image, "--", "greet"}, {}, root);
    EXPECT_NE(greet.output.find("data at " + prefix + "/share"), std::string::npos);
  }
  // `envrun unpack` gives an ordinary prefix at DIR that works without envrun.
  fs::path unpacked = dir_ / "unpacked-env";
  RunResult u = envrun({"unpack", image, unpacked.string()});
  ASSERT_EQ(u.exit_code(), 0) << u.output;
  EXPECT_EQ(run_command(shell_quote((unpacked / "bin/bintool").string())).output,
            unpacked.string() + "\n");
  auto records = conda::read_relocation_index(unpacked);
  ASSERT_TRUE(records && *records);
  EXPECT_EQ((*records)->prefix, unpacked.string());
}

// Issue 19, point 8: a prefix from `envrun unpack` keeps working after `mv`: `envrun DIR -- cmd`
// relocates it first (once, however many start at the same time), and its bin/activate, which
// refuses to activate a moved prefix, works again afterwards.
TEST_F(EnvrunTest, MovedPrefixDirectoriesAreRelocatedAndActivatable) {
  ENVB_REQUIRE_TOOL("cc");
  ENVB_REQUIRE_TOOL("bash");
  std::string image = build_fixture();
  fs::path unpacked = dir_ / "env-before";
  ASSERT_EQ(envrun({"unpack", image, unpacked.string()}).exit_code(), 0);
  auto activated = [&](const fs::path& prefix, const std::string& shell) {
    return run_command(shell + " -c " +
                       shell_quote(". " + shell_quote((prefix / "bin/activate").string()) +
                                   " && bintool && echo \"env=$CONDA_PREFIX\" && deactivate && "
                                   "echo \"after=${CONDA_PREFIX:-unset}\""));
  };
  for (const std::string shell : {"sh", "bash"}) {
    auto a = activated(unpacked, shell);
    EXPECT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(a.output, unpacked.string() + "\nenv=" + unpacked.string() + "\nafter=unset\n");
  }

  fs::path moved = dir_ / "a-new-home" / "env-after-the-move";
  fs::create_directories(moved.parent_path());
  fs::rename(unpacked, moved);
  auto stale = activated(moved, "bash");
  EXPECT_NE(stale.exit_code, 0) << stale.output;
  EXPECT_NE(stale.output.find("envrun " + moved.string() + " -- true"), std::string::npos)
      << stale.output;

  // Two first runs at once: one relocates, the other waits and finds it done.
  Spawned first = spawn_envrun({moved.string(), "--", "bintool"}, env(cache_), dir_ / "o1");
  Spawned second = spawn_envrun({moved.string(), "--", "bintool"}, env(cache_), dir_ / "o2");
  int status1 = wait_status(first), status2 = wait_status(second);
  std::string out1 = read_text(dir_ / "o1"), out2 = read_text(dir_ / "o2");
  EXPECT_TRUE(WIFEXITED(status1) && WEXITSTATUS(status1) == 0) << out1;
  EXPECT_TRUE(WIFEXITED(status2) && WEXITSTATUS(status2) == 0) << out2;
  EXPECT_EQ(count_lines_with(out1 + out2, "relocating it"), 1u) << out1 << out2;
  EXPECT_NE(out1.find(moved.string() + "\n"), std::string::npos) << out1;
  EXPECT_NE(out2.find(moved.string() + "\n"), std::string::npos) << out2;
  RunResult script = envrun({moved.string(), "--", "script"});
  EXPECT_NE(script.output.find("with " + moved.string() + "\n"), std::string::npos)
      << script.output;
  RunResult check = envrun({"check", moved.string()});
  EXPECT_EQ(check.exit_code(), 0) << check.output;
  for (const std::string shell : {"sh", "bash"}) {
    auto a = activated(moved, shell);
    EXPECT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(a.output, moved.string() + "\nenv=" + moved.string() + "\nafter=unset\n");
  }
  auto records = conda::read_relocation_index(moved);
  ASSERT_TRUE(records && *records);
  EXPECT_EQ((*records)->prefix, moved.string());
}

TEST_F(EnvrunTest, CacheRootTooLongForBinaryRoomIsExplained) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture();
  fs::path root = dir_ / std::string(250, 'x');
  RunResult r = envrun({image, "--", "true"}, {}, root);
  EXPECT_EQ(r.exit_code(), 2) << r.output;
  EXPECT_NE(r.output.find("bin/bintool"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ENVRUN_CACHE=/short/path"), std::string::npos) << r.output;
  if (fs::exists(root / "p")) {
    for (const auto& e : fs::directory_iterator(root / "p"))
      EXPECT_NE(e.path().extension(), ".json") << "no entry may be marked complete";
  }
  // And no half prefix is left to be used: a normal root afterwards works.
  EXPECT_EQ(envrun({image, "--", "bintool"}).exit_code(), 0);
}

TEST_F(EnvrunTest, ManyProcessesOnAColdCacheUnpackOnce) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture();
  constexpr int kRanks = 32;
  std::vector<Spawned> ranks;
  for (int i = 0; i < kRanks; ++i)
    ranks.push_back(
        spawn_envrun({image, "--", "sh", "-c", "bintool; echo rank " + std::to_string(i)},
                     env(cache_), dir_ / ("rank-" + std::to_string(i))));
  size_t unpacks = 0;
  std::string expected_prefix;
  for (int i = 0; i < kRanks; ++i) {
    int status = wait_status(ranks[i]);
    std::string out = read_text(ranks[i].output);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(out.find("rank " + std::to_string(i) + "\n"), std::string::npos) << out;
    unpacks += count_lines_with(out, "envrun: unpacking");
  }
  EXPECT_EQ(unpacks, 1u);
  EXPECT_EQ(layer_names_in(cache_).size(), 2u);  // each layer extracted once, nothing left over
  // One entry, no leftovers.
  size_t staging = 0;
  for (const auto& e : fs::directory_iterator(cache_ / "p"))
    if (e.path().filename().string().starts_with(".")) ++staging;
  EXPECT_EQ(staging, 0u);
}

TEST_F(EnvrunTest, KilledUnpackIsNeverUsedAndTheNextRunRecovers) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture();
  for (std::string phase : {"layer-extracted", "extracted", "renamed"}) {
    SCOPED_TRACE(phase);
    fs::remove_all(cache_);
    auto e = env(cache_);
    e["ENVRUN_TEST_STALL"] = phase;
    Spawned s = spawn_envrun({image, "--", "bintool"}, e, dir_ / ("stall-" + phase));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (read_text(s.output).find("test stall at") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_NE(read_text(s.output).find("test stall at " + phase), std::string::npos);
    ::kill(s.pid, SIGKILL);
    int status = wait_status(s);
    EXPECT_TRUE(WIFSIGNALED(status));
    // Killed after the rename: a prefix without its marker, which nobody may use.
    EXPECT_TRUE(entry_prefix().empty());

    RunResult next = envrun({image, "--", "bintool"});
    ASSERT_EQ(next.exit_code(), 0) << next.output;
    EXPECT_EQ(count_lines_with(next.output, "envrun: unpacking"), 1u) << next.output;
    for (const auto& entry : fs::directory_iterator(cache_ / "p"))
      EXPECT_FALSE(entry.path().filename().string().starts_with(".")) << entry.path();
    // A layer's extraction killed midway is never used either: extracted again, cleaned up.
    EXPECT_EQ(count_lines_with(next.output, "envrun: extracting layer"),
              phase == "layer-extracted" ? 2u : 0u)
        << next.output;
    EXPECT_EQ(layer_names_in(cache_).size(), 2u);
  }
}

TEST_F(EnvrunTest, GcKeepsEntriesInUseAndRemovesTheRest) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture();
  fs::path started = dir_ / "started";
  auto e = env(cache_);
  Spawned running = spawn_envrun(
      {image, "--", "sh", "-c", "touch " + shell_quote(started.string()) + "; exec sleep 30"}, e,
      dir_ / "running");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(started) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(started)) << read_text(running.output);
  fs::path prefix = entry_prefix();

  RunResult ls = envrun({"ls"});
  EXPECT_NE(ls.output.find(prefix.filename().string()), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("yes"), std::string::npos) << ls.output;
  RunResult gc = envrun({"gc", "--days", "0"});
  EXPECT_NE(gc.output.find("kept"), std::string::npos) << gc.output;
  EXPECT_TRUE(fs::exists(prefix / "bin/bintool"));

  ::kill(running.pid, SIGKILL);
  (void)wait_status(running);
  gc = envrun({"gc", "--days", "0"});
  EXPECT_NE(gc.output.find("removed " + prefix.filename().string()), std::string::npos)
      << gc.output;
  EXPECT_FALSE(fs::exists(prefix));
  // And it comes back on the next run.
  EXPECT_EQ(envrun({image, "--", "bintool"}).exit_code(), 0);
}

TEST_F(EnvrunTest, ImagesSharingLayersExtractThemOnceAndHardlinkUnpatchedFiles) {
  ENVB_REQUIRE_TOOL("cc");
  std::string a = build_fixture(sharing_base("a"));
  std::string b = build_fixture(sharing_base("b"));

  RunResult first = envrun({a, "--", "bintool"});
  ASSERT_EQ(first.exit_code(), 0) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "envrun: extracting layer"), 2u) << first.output;
  std::set<fs::path> after_a = prefixes_in(cache_);
  ASSERT_EQ(after_a.size(), 1u);
  fs::path pa = *after_a.begin();

  // The second image extracts its own top layer only.
  RunResult second = envrun({b, "--", "bintool"});
  ASSERT_EQ(second.exit_code(), 0) << second.output;
  EXPECT_EQ(count_lines_with(second.output, "envrun: extracting layer"), 1u) << second.output;
  EXPECT_NE(second.output.find("extracting layer 2/2"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("1 of 2 layers extracted, 1 shared"), std::string::npos)
      << second.output;
  std::set<fs::path> after_b = prefixes_in(cache_);
  ASSERT_EQ(after_b.size(), 2u);
  after_b.erase(pa);
  fs::path pb = *after_b.begin();
  EXPECT_EQ(layer_names_in(cache_).size(), 3u);  // base, top a, top b

  // Each prefix is relocated to itself.
  EXPECT_NE(first.output.find(pa.string()), std::string::npos) << first.output;
  EXPECT_NE(second.output.find(pb.string()), std::string::npos) << second.output;
  EXPECT_EQ(read_text(pa / "share/note.txt"), "image a\n");
  EXPECT_EQ(read_text(pb / "share/note.txt"), "image b\n");
  EXPECT_FALSE(fs::exists(pa / "share/removed.txt"));  // the whiteout of the top layer
  EXPECT_FALSE(fs::exists(pb / "share/removed.txt"));
  RunResult greet = envrun({b, "--", "greet"});
  EXPECT_EQ(greet.exit_code(), 0) << greet.output;
  EXPECT_NE(greet.output.find("data at " + pb.string() + "/share"), std::string::npos)
      << greet.output;

  // Unpatched files of the shared layer: one inode for both prefixes, read-only.
  for (std::string file :
       {"bin/sh", "conda-meta/tool-1.0-0.json", "etc/conda/env_vars.d/tool.json"}) {
    SCOPED_TRACE(file);
    struct stat sa = stat_of(pa / file), sb = stat_of(pb / file);
    EXPECT_EQ(sa.st_ino, sb.st_ino);
    EXPECT_EQ(sa.st_dev, sb.st_dev);
    EXPECT_EQ(sa.st_mode & 0222, 0u);
  }
  EXPECT_EQ(stat_of(pa / "bin/sh").st_mode & 0111, 0111u);  // modes kept otherwise
  // Files the relocation patched, and the rewritten records: each prefix's own, writable.
  for (std::string file : {"bin/greet", "bin/script", "bin/bintool", "share/data.txt",
                           "conda-meta/envbuild-relocations.json"}) {
    SCOPED_TRACE(file);
    struct stat sa = stat_of(pa / file), sb = stat_of(pb / file);
    EXPECT_NE(sa.st_ino, sb.st_ino);
    EXPECT_EQ(sa.st_nlink, 1u);
    EXPECT_EQ(sb.st_nlink, 1u);
    EXPECT_NE(sa.st_mode & S_IWUSR, 0u);
  }
  if (::geteuid() != 0) {  // root ignores modes (layer_cache.hpp)
    int fd = ::open((pa / "bin/sh").c_str(), O_WRONLY);
    EXPECT_LT(fd, 0);
    if (fd >= 0) ::close(fd);
  }

  // Off: every unpack extracts its own layers, and shares nothing.
  fs::path separate = dir_ / "c2";
  RunResult unshared = envrun({a, "--", "bintool"}, {{"ENVRUN_SHARE_LAYERS", "0"}}, separate);
  ASSERT_EQ(unshared.exit_code(), 0) << unshared.output;
  EXPECT_FALSE(fs::exists(separate / "l"));
}

TEST_F(EnvrunTest, GcRemovesUnusedLayersButNotOnesInUse) {
  ENVB_REQUIRE_TOOL("cc");
  std::string a = build_fixture(sharing_base("a"));
  ASSERT_EQ(envrun({a, "--", "true"}).exit_code(), 0);
  std::vector<std::string> layers = layer_names_in(cache_);
  ASSERT_EQ(layers.size(), 2u);

  // A layer being composed from (its lock held shared) stays; the other goes. The prefix, in use
  // by nothing, goes too, and its files would have survived the layer (hardlinks).
  std::optional<common::FileLock> held;
  {
    auto lock =
        common::FileLock::acquire(cache_ / "l" / (layers[0] + ".lock"), common::LockMode::Shared);
    ASSERT_TRUE(lock) << lock.error().to_string();
    held.emplace(std::move(*lock));
  }
  RunResult gc = envrun({"gc", "--days", "0"});
  ASSERT_EQ(gc.exit_code(), 0) << gc.output;
  EXPECT_NE(gc.output.find("1 layers removed, 1 layers in use kept"), std::string::npos)
      << gc.output;
  EXPECT_EQ(layer_names_in(cache_), std::vector<std::string>{layers[0]});

  // Recent layers stay with --days 1; unused old ones go.
  held.reset();
  gc = envrun({"gc", "--days", "1"});
  EXPECT_NE(gc.output.find("0 layers removed"), std::string::npos) << gc.output;
  gc = envrun({"gc", "--days", "0"});
  EXPECT_NE(gc.output.find("1 layers removed"), std::string::npos) << gc.output;
  EXPECT_TRUE(layer_names_in(cache_).empty());

  // And they come back.
  RunResult again = envrun({a, "--", "bintool"});
  ASSERT_EQ(again.exit_code(), 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "envrun: extracting layer"), 2u) << again.output;
}

TEST_F(EnvrunTest, LayersOnAnotherFileSystemAreCopied) {
  ENVB_REQUIRE_TOOL("cc");
  // The cache's l/ on another file system than its p/: no hardlink can cross (EXDEV).
  fs::path other;
  for (const char* candidate : {"/dev/shm", "/run/user"}) {
    struct stat st {};
    if (::stat(candidate, &st) == 0 && st.st_dev != stat_of(dir_).st_dev &&
        ::access(candidate, W_OK) == 0) {
      other = candidate;
      break;
    }
  }
  if (other.empty()) GTEST_SKIP() << "no writable file system other than the test directory's";
  auto layers_dir = common::TempDir::create(other, "envrun-layers-");
  ASSERT_TRUE(layers_dir) << layers_dir.error().to_string();
  fs::create_directories(cache_);
  fs::create_directory_symlink(layers_dir->path(), cache_ / "l");

  std::string a = build_fixture(sharing_base("a"));
  RunResult run = envrun({a, "--", "greet"});
  ASSERT_EQ(run.exit_code(), 0) << run.output;
  EXPECT_NE(run.output.find(" 0 files linked"), std::string::npos) << run.output;
  fs::path prefix = entry_prefix();
  EXPECT_NE(run.output.find("data at " + prefix.string() + "/share"), std::string::npos)
      << run.output;
  struct stat st = stat_of(prefix / "bin/sh");
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_NE(st.st_mode & S_IWUSR, 0u);  // a copy is the prefix's own
  EXPECT_EQ(envrun({"gc", "--days", "0"}).exit_code(), 0);
  EXPECT_TRUE(layer_names_in(cache_).empty());
}

class EnvrunCudaTest : public EnvrunTest {
 protected:
  fs::path fake_libcuda(int version) {
    fs::path lib = dir_ / ("libcuda-" + std::to_string(version) + ".so.1");
    envbuild::testing::FakeLibcuda fake;
    fake.version = version;
    auto r = envbuild::testing::build_fake_libcuda(lib, fake);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return lib;
  }
};

TEST_F(EnvrunCudaTest, DriverCheckPassesFailsAndCanBeSkipped) {
  ENVB_REQUIRE_TOOL("cc");
  std::string image = build_fixture({.activate_script = true,
                                     .requirements = "__cuda >=12.4;__glibc >=2.17",
                                     .tag = "latest",
                                     .top_note = ""});
  // Too old a driver: exit 8 before anything is unpacked, with the actionable message.
  RunResult old =
      envrun({image, "--", "bintool"}, {{"ENVRUN_LIBCUDA", fake_libcuda(12020).string()}});
  EXPECT_EQ(old.exit_code(), 8) << old.output;
  EXPECT_NE(old.output.find("__cuda"), std::string::npos) << old.output;
  EXPECT_NE(old.output.find("12.2"), std::string::npos) << old.output;
  EXPECT_NE(old.output.find("--no-check"), std::string::npos) << old.output;
  EXPECT_FALSE(fs::exists(cache_ / "p") && !entry_prefix().empty());

  // No driver at all.
  RunResult none =
      envrun({image, "--", "bintool"}, {{"ENVRUN_LIBCUDA", "/nonexistent/libcuda.so.1"}});
  EXPECT_EQ(none.exit_code(), 8) << none.output;
  EXPECT_NE(none.output.find("none"), std::string::npos) << none.output;

  // `envrun check IMAGE` reports without running.
  RunResult check = envrun({"check", image}, {{"ENVRUN_LIBCUDA", fake_libcuda(12020).string()}});
  EXPECT_EQ(check.exit_code(), 8) << check.output;
  EXPECT_NE(check.output.find("__glibc"), std::string::npos) << check.output;

  // A new enough driver runs; --no-check runs anyway.
  RunResult ok =
      envrun({image, "--", "bintool"}, {{"ENVRUN_LIBCUDA", fake_libcuda(12040).string()}});
  EXPECT_EQ(ok.exit_code(), 0) << ok.output;
  RunResult skipped = envrun({"--no-check", image, "--", "bintool"},
                             {{"ENVRUN_LIBCUDA", "/nonexistent/libcuda.so.1"}});
  EXPECT_EQ(skipped.exit_code(), 0) << skipped.output;
  // Warm start still checks.
  RunResult warm_old =
      envrun({image, "--", "true"}, {{"ENVRUN_LIBCUDA", fake_libcuda(12020).string()}});
  EXPECT_EQ(warm_old.exit_code(), 8) << warm_old.output;
  RunResult check_ok = envrun({"check", image}, {{"CONDA_OVERRIDE_CUDA", "12.6"}});
  EXPECT_EQ(check_ok.exit_code(), 0) << check_ok.output;
}

TEST_F(EnvrunTest, TheLauncherRunsWarmStartsWithoutTheFullBinary) {
  ENVB_REQUIRE_TOOL("cc");
  ENVB_REQUIRE_TOOL("readelf");
  std::string image = build_fixture();
  const std::map<std::string, std::optional<std::string>> no_full{
      {"ENVRUN_FULL", (dir_ / "no-such-envrun-full").string()}};
  // A cold start (and every subcommand) is envrun-full's job.
  RunResult cold = envrun({image, "--", "bintool"}, no_full);
  EXPECT_EQ(cold.exit_code(), 127) << cold.output;
  EXPECT_NE(cold.output.find("cannot run envrun-full"), std::string::npos) << cold.output;
  EXPECT_EQ(envrun({"ls"}, no_full).exit_code(), 127);
  EXPECT_TRUE(entry_prefix().empty());
  ASSERT_EQ(envrun({image, "--", "true"}).exit_code(), 0);

  // Warm: the launcher alone, with the same activation, exit codes, signals and host check.
  RunResult warm = envrun(
      {image, "--", "sh", "-c", "bintool; echo $FROM_ENV_VARS $ACTIVATED_BY_SCRIPT"}, no_full);
  EXPECT_EQ(warm.exit_code(), 0) << warm.output;
  EXPECT_EQ(warm.output, entry_prefix().string() + "\nyes from " + entry_prefix().string() + "\n");
  EXPECT_EQ(envrun({image, "--", "sh", "-c", "exit 9"}, no_full).exit_code(), 9);
  RunResult killed = envrun({image, "--", "sh", "-c", "kill -USR1 $$"}, no_full);
  ASSERT_TRUE(WIFSIGNALED(killed.status)) << killed.output;
  EXPECT_EQ(WTERMSIG(killed.status), SIGUSR1);
  auto old_glibc = no_full;
  old_glibc["CONDA_OVERRIDE_GLIBC"] = "2.5";  // the fixture's record depends on __glibc >=2.17
  RunResult mismatch = envrun({image, "--", "true"}, old_glibc);
  EXPECT_EQ(mismatch.exit_code(), 8) << mismatch.output;
  EXPECT_NE(mismatch.output.find("this environment needs glibc >=2.17"), std::string::npos)
      << mismatch.output;
  EXPECT_EQ(envrun({"--no-check", image, "--", "true"}, old_glibc).exit_code(), 0);
  EXPECT_EQ(envrun({image, "--", "no-such-command"}, no_full).exit_code(), 127);

  // What makes it lean: no libcurl, libarchive, OpenSSL, yaml-cpp or zstd to load at startup.
  auto dynamic = run_command("readelf -d " +
                             shell_quote((envbuild::testing::binary_dir() / "envrun").string()));
  ASSERT_EQ(dynamic.exit_code, 0) << dynamic.output;
  for (const char* lib : {"libcurl", "libarchive", "libssl", "libcrypto", "libyaml-cpp", "libzstd"})
    EXPECT_EQ(dynamic.output.find(lib), std::string::npos) << lib << " in\n" << dynamic.output;
}

TEST_F(EnvrunTest, PullsAndRunsDockerImagesFromARegistry) {
  ENVB_REQUIRE_TOOL("cc");
  ENVB_REQUIRE_TOOL("docker-registry");
  std::string image = build_fixture();
  envbuild::testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const std::string ref = "docker://" + registry.host() + "/envs/fixture:v1";
  oci::registry::CopyOptions copy;
  copy.registry.transport.tls.verify = false;
  copy.scratch_dir = dir_;
  auto pushed = oci::registry::copy_image(*oci::ImageReference::parse(image),
                                          *oci::ImageReference::parse(ref), copy);
  ASSERT_TRUE(pushed) << pushed.error().to_string();

  // The first run of a docker:// reference pulls it (plain http: 127.0.0.1 is insecure by
  // default, as in Docker), then unpacks and runs it.
  RunResult first = envrun({ref, "--", "bintool"});
  ASSERT_EQ(first.exit_code(), 0) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "envrun: pulling"), 1u) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "envrun: unpacking"), 1u) << first.output;
  EXPECT_NE(first.output.find(entry_prefix().string() + "\n"), std::string::npos) << first.output;

  // `envrun pull` into another cache; runs then need no registry.
  const fs::path other = dir_ / "c2";
  RunResult pull = envrun({"pull", ref}, {}, other);
  ASSERT_EQ(pull.exit_code(), 0) << pull.output;
  EXPECT_NE(pull.output.find("pulled " + ref + "@sha256:"), std::string::npos) << pull.output;
  registry.stop();
  RunResult offline = envrun({ref, "--", "sh", "-c", "echo $CONDA_DEFAULT_ENV"}, {}, other);
  ASSERT_EQ(offline.exit_code(), 0) << offline.output;
  EXPECT_EQ(count_lines_with(offline.output, "envrun: pulling"), 0u) << offline.output;
  EXPECT_EQ(count_lines_with(offline.output, "envrun: unpacking"), 1u) << offline.output;
  RunResult warm = envrun({ref, "--", "sh", "-c", "echo $CONDA_DEFAULT_ENV"},
                          {{"ENVRUN_FULL", (dir_ / "no-such-envrun-full").string()}}, other);
  EXPECT_EQ(warm.exit_code(), 0) << warm.output;
  EXPECT_EQ(warm.output, "fixture\n");
  // Stored blobs are shared between references: one layout per reference, one blob store.
  size_t layouts = 0;
  for (const auto& e : fs::directory_iterator(other / "i"))
    if (fs::is_symlink(e.path() / "blobs")) ++layouts;
  EXPECT_EQ(layouts, 1u);
  EXPECT_TRUE(fs::is_directory(other / "i/blobs/sha256"));

  // A shared cache (an administrator's, read-only to users) serves the reference offline to a
  // cache of its own; every blob read from it is verified, and one others can write is refused.
  const fs::path mine = dir_ / "c3";
  const std::map<std::string, std::optional<std::string>> shared{
      {"ENVRUN_SHARED_CACHE", (dir_ / "nothing-here").string() + ":" + other.string()}};
  RunResult from_shared = envrun({ref, "--", "bintool"}, shared, mine);
  ASSERT_EQ(from_shared.exit_code(), 0) << from_shared.output;
  EXPECT_NE(from_shared.output.find("from the shared cache " + other.string()), std::string::npos)
      << from_shared.output;
  EXPECT_EQ(count_lines_with(from_shared.output, "envrun: pulling"), 0u) << from_shared.output;
  EXPECT_FALSE(fs::exists(mine / "i" / "blobs")) << "nothing is copied out of the shared cache";
  auto shared_warm = shared;
  shared_warm["ENVRUN_FULL"] = (dir_ / "no-such-envrun-full").string();
  EXPECT_EQ(envrun({ref, "--", "true"}, shared_warm, mine).exit_code(), 0)
      << "a warm start from a shared image needs only the launcher";
  fs::path biggest;
  for (const auto& e : fs::directory_iterator(other / "i/blobs/sha256"))
    if (biggest.empty() || fs::file_size(e.path()) > fs::file_size(biggest)) biggest = e.path();
  fs::permissions(biggest, fs::perms::owner_write, fs::perm_options::add);
  std::string bytes = read_text(biggest);
  bytes[bytes.size() / 2] ^= 0x20;
  write_text(biggest, bytes);
  RunResult tampered = envrun({ref, "--", "true"}, shared, dir_ / "c4");
  EXPECT_EQ(tampered.exit_code(), 5) << tampered.output;  // Integrity: the blob is not its digest
  fs::permissions(other, fs::perms::all);
  RunResult open_to_all = envrun({ref, "--", "true"}, shared, dir_ / "c5");
  EXPECT_EQ(open_to_all.exit_code(), 2) << open_to_all.output;
  EXPECT_NE(open_to_all.output.find("writable by others"), std::string::npos) << open_to_all.output;

  RunResult local = envrun({"pull", image});
  EXPECT_EQ(local.exit_code(), 2) << local.output;
  EXPECT_NE(local.output.find("docker://"), std::string::npos) << local.output;
}

TEST_F(EnvrunTest, KernelInstallWritesAKernelspecThatRunsThroughEnvrun) {
  ENVB_REQUIRE_TOOL("cc");
  FixtureOptions with_kernel;
  with_kernel.tag = "kernel";
  with_kernel.python_kernel = true;
  std::string image = build_fixture(with_kernel);
  const fs::path envrun_bin = fs::canonical(envbuild::testing::binary_dir() / "envrun");
  auto read_spec = [](const fs::path& file) {
    auto text = read_text(file);
    return json::parse(text.empty() ? "null" : text);
  };
  const std::vector<std::string> tail{"--", "python",           "-m", "ipykernel_launcher",
                                      "-f", "{connection_file}"};

  // $JUPYTER_DATA_DIR (--user is the default); the name is lowercased like Jupyter's.
  const fs::path data = dir_ / "jupyter-data";
  RunResult r = envrun({"kernel", "install", image, "--name", "MyEnv"},
                       {{"JUPYTER_DATA_DIR", data.string()}});
  ASSERT_EQ(r.exit_code(), 0) << r.output;
  json spec = read_spec(data / "kernels/myenv/kernel.json");
  std::vector<std::string> argv{envrun_bin.string(), image};
  argv.insert(argv.end(), tail.begin(), tail.end());
  EXPECT_EQ(spec["argv"].get<std::vector<std::string>>(), argv) << spec.dump();
  EXPECT_EQ(spec["display_name"], "Python (envrun myenv)");
  EXPECT_EQ(spec["language"], "python");

  // The kernel's launcher and image work: run its argv with another command.
  RunResult launched = envrun({spec["argv"][1].get<std::string>(), "--", "bintool"});
  EXPECT_EQ(launched.exit_code(), 0) << launched.output;

  // Without $JUPYTER_DATA_DIR: ~/.local/share/jupyter; --prefix, --display-name, --no-check.
  const fs::path home = dir_ / "home";
  r = envrun({"kernel", "install", image, "--name", "e2", "--user"},
             {{"JUPYTER_DATA_DIR", std::nullopt},
              {"XDG_DATA_HOME", std::nullopt},
              {"HOME", home.string()}});
  ASSERT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_TRUE(fs::is_regular_file(home / ".local/share/jupyter/kernels/e2/kernel.json"));
  r = envrun({"kernel", "install", image, "--name", "e3", "--prefix", (dir_ / "sys").string(),
              "--display-name", "Fixture env", "--no-check"});
  ASSERT_EQ(r.exit_code(), 0) << r.output;
  spec = read_spec(dir_ / "sys/share/jupyter/kernels/e3/kernel.json");
  EXPECT_EQ(spec["display_name"], "Fixture env");
  argv = {envrun_bin.string(), "--no-check", image};
  argv.insert(argv.end(), tail.begin(), tail.end());
  EXPECT_EQ(spec["argv"].get<std::vector<std::string>>(), argv) << spec.dump();

  EXPECT_EQ(envrun({"kernel", "install", image, "--name", "../x"}).exit_code(), 2);

  // Issue 19, point 9: an image that does not exist, or has no python or no ipykernel of its own,
  // gets no kernelspec (its kernel would fail, or silently run the host's python).
  RunResult missing =
      envrun({"kernel", "install", "oci:" + (dir_ / "no-such-image").string(), "--name", "m"},
             {{"JUPYTER_DATA_DIR", data.string()}});
  EXPECT_NE(missing.exit_code(), 0) << missing.output;
  EXPECT_FALSE(fs::exists(data / "kernels/m"));
  RunResult no_python = envrun({"kernel", "install", build_fixture(), "--name", "np"},
                               {{"JUPYTER_DATA_DIR", data.string()}});
  EXPECT_EQ(no_python.exit_code(), 3) << no_python.output;
  EXPECT_NE(no_python.output.find("has no python of its own"), std::string::npos)
      << no_python.output;
  EXPECT_FALSE(fs::exists(data / "kernels/np"));
  fs::path unpacked = dir_ / "kernel-env";
  ASSERT_EQ(envrun({"unpack", image, unpacked.string()}).exit_code(), 0);
  fs::remove_all(unpacked / "lib/python3.11/site-packages/ipykernel");
  RunResult no_ipykernel = envrun({"kernel", "install", unpacked.string(), "--name", "nk"},
                                  {{"JUPYTER_DATA_DIR", data.string()}});
  EXPECT_EQ(no_ipykernel.exit_code(), 3) << no_ipykernel.output;
  EXPECT_NE(no_ipykernel.output.find("not ipykernel"), std::string::npos) << no_ipykernel.output;
  write_text(unpacked / "conda-meta/ipykernel-6.29.0-pyh0_0.json", "{}");
  RunResult from_dir = envrun({"kernel", "install", unpacked.string(), "--name", "dir"},
                              {{"JUPYTER_DATA_DIR", data.string()}});
  EXPECT_EQ(from_dir.exit_code(), 0) << from_dir.output;
  EXPECT_EQ(read_spec(data / "kernels/dir/kernel.json")["argv"][1], unpacked.string());
  EXPECT_NE(envrun({"kernel", "install", image, "--name", "x", "--user", "--prefix", "/tmp/p"})
                .exit_code(),
            0);
}

}  // namespace
}  // namespace envbuild::runtime

namespace envbuild::runtime {
namespace {

// Real conda-forge packages (tests/data), installed at /opt/conda the way envbuild does it
// (extracted, placeholders replaced, records kept), then run from two cache roots: infocmp
// finds its terminfo and openssl its OPENSSLDIR only through the binary relocation.
TEST_F(EnvrunTest, RealCondaForgePackagesRunFromTwoCacheRoots) {
  fs::path channel =
      envbuild::testing::data_dir() / "packages/channels/conda-forge-subset/linux-64";
  const char* packages[] = {"libgcc-14.2.0-h77fa898_1.conda", "libzlib-1.3.1-h4ab18f5_1.conda",
                            "ncurses-6.5-h59595ed_0.conda", "openssl-3.3.1-h4ab18f5_1.conda",
                            "ca-certificates-2025.11.12-hbd8a1cb_0.conda"};
  const std::string image_prefix = "/opt/conda";
  fs::path tree = dir_ / "real";
  fs::create_directories(tree);
  json records = json::array();
  for (const char* name : packages) {
    SCOPED_TRACE(name);
    fs::path x = dir_ / "x" / name;
    auto extracted = conda::extract_package(channel / name, x);
    ASSERT_TRUE(extracted) << extracted.error().to_string();
    auto paths = conda::parse_paths_json(read_text(x / "info/paths.json"), name);
    ASSERT_TRUE(paths);
    for (const auto& e : fs::directory_iterator(x))
      if (e.path().filename() != "info")
        fs::copy(e.path(), tree / e.path().filename(),
                 fs::copy_options::recursive | fs::copy_options::copy_symlinks |
                     fs::copy_options::overwrite_existing);
    for (const auto& p : *paths) {
      if (p.prefix_placeholder.empty()) continue;
      conda::PrefixReplacement r{p.prefix_placeholder, image_prefix, p.file_mode,
                                 conda::TargetOs::Linux};
      auto record = conda::replace_prefix_in_file(tree / p.path, r, p.path);
      ASSERT_TRUE(record) << record.error().to_string();
      if (*record) records.push_back(conda::to_json(**record));
    }
    write_text(tree / "conda-meta" / (std::string(name) + ".json"),
               read_text(x / "info/index.json"));
  }
  write_text(tree / std::string(conda::kRelocationIndexPath),
             json{{"format", 1}, {"prefix", image_prefix}, {"files", records}}.dump());
  write_text(tree / "conda-meta/history", "");

  fs::path layout_dir = dir_ / "realimg";
  auto layout = oci::Layout::create(layout_dir);
  ASSERT_TRUE(layout);
  auto entries = oci::entries_from_tree(tree, "opt/conda");
  ASSERT_TRUE(entries);
  auto layer = oci::write_layer(*entries, {}, layout->blobs());
  ASSERT_TRUE(layer) << layer.error().to_string();
  oci::ConfigChanges changes;
  changes.env = {{"PATH", image_prefix + "/bin:/usr/bin:/bin"}, {"CONDA_PREFIX", image_prefix}};
  changes.labels["org.envbuild.prefix"] = image_prefix;
  auto manifest = oci::build_image(oci::host_platform(), {{*layer, {}}}, changes, layout->blobs());
  ASSERT_TRUE(manifest);
  ASSERT_TRUE(layout->add(*manifest, "real"));
  std::string image = "oci:" + layout_dir.string() + ":real";

  for (const fs::path& root :
       {dir_ / "s", dir_ / ("a-much-longer-cache-root-" + std::string(60, 'r'))}) {
    SCOPED_TRACE(root.string());
    RunResult info = envrun({image, "--", "infocmp", "xterm"},
                            {{"TERMINFO", std::nullopt}, {"TERMINFO_DIRS", std::nullopt}}, root);
    EXPECT_EQ(info.exit_code(), 0) << info.output;
    EXPECT_NE(info.output.find("xterm|"), std::string::npos) << info.output;
    RunResult ssl = envrun({image, "--", "openssl", "version", "-d"}, {}, root);
    EXPECT_EQ(ssl.exit_code(), 0) << ssl.output;
    EXPECT_NE(ssl.output.find("OPENSSLDIR: \"" + (root / "p").string()), std::string::npos)
        << ssl.output;
    // The records' virtual-package depends (here `__unix`) are what `check` reports.
    RunResult check = envrun({"check", image}, {}, root);
    EXPECT_EQ(check.exit_code(), 0) << check.output;
    EXPECT_NE(check.output.find("__unix"), std::string::npos) << check.output;
  }
}

}  // namespace
}  // namespace envbuild::runtime
