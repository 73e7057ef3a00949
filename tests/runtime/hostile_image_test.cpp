// Hostile images against envrun (issue 16, classes 1, 2, 3, 8 and 13): whatever an image holds,
// unpacking, checking, listing and gc never read, write, move or delete anything outside the
// cache and the unpack target, never hang and never crash. Each test builds its images with
// tests/testing/hostile_image.py, runs the real envrun under `timeout`, and compares a snapshot
// of a sentinel tree (a user's home, a host directory) before and after.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/cache.hpp"
#include "tests/testing/sentinel.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using nlohmann::json;

/// What a hung envrun exits with under `timeout` (and `timeout -k` after a KILL).
bool timed_out(int code) {
  return code == 124 || code == 137;
}

class HostileImageTest : public envbuild::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    sentinel_ = envbuild::testing::make_sentinel_tree(dir_ / "s");
    home_ = sentinel_ / "home";
    host_ = sentinel_ / "host";
    before_ = envbuild::testing::snapshot_tree(sentinel_);
  }
  void TearDown() override {
    EXPECT_EQ(
        envbuild::testing::diff_snapshots(before_, envbuild::testing::snapshot_tree(sentinel_)), "")
        << "the sentinel tree changed";
    TempDirTest::TearDown();
  }

  /// Writes an image from a hostile_image.py spec; returns its oci: reference.
  std::string image(json spec) {
    fs::path layout = dir_ / ("img" + std::to_string(++images_));
    spec["layout"] = layout.string();
    if (!spec.contains("labels")) spec["labels"] = {{"org.envbuild.prefix", "/opt/conda"}};
    fs::path spec_file = dir_ / "spec.json";
    envbuild::testing::write_text(spec_file, spec.dump());
    auto made = run_command(
        "python3 " +
        shell_quote((envbuild::testing::source_dir() / "tests/testing/hostile_image.py").string()) +
        " < " + shell_quote(spec_file.string()));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    return "oci:" + layout.string() + ":latest";
  }

  static fs::path envrun_binary() { return envbuild::testing::binary_dir() / "envrun"; }

  /// Runs envrun with the sentinel home as HOME and a private cache, under a timeout.
  envbuild::testing::CommandResult envrun(const std::vector<std::string>& args,
                                          const std::string& extra_env = "") {
    std::string command = "env HOME=" + shell_quote(home_.string()) +
                          " ENVRUN_CACHE=" + shell_quote((dir_ / "cache").string()) +
                          " CONDA_OVERRIDE_CUDA= " + extra_env + " timeout -k 5 60 " +
                          shell_quote(envrun_binary().string());
    for (const auto& a : args) command += " " + shell_quote(a);
    return run_command(command);
  }

  /// Every way envrun reads an image — a run with shared layers and without, `unpack`, `check` —
  /// refuses it with an error that mentions `why`, without hanging; then `ls` and `gc` (which
  /// once deleted a host directory renamed into the cache) still work.
  void expect_refused_everywhere(const std::string& ref, const std::string& why) {
    for (const std::string share : {"1", "0"}) {
      SCOPED_TRACE("ENVRUN_SHARE_LAYERS=" + share);
      auto run = envrun({ref, "--", "true"}, "ENVRUN_SHARE_LAYERS=" + share);
      EXPECT_FALSE(timed_out(run.exit_code)) << run.output;
      EXPECT_NE(run.exit_code, 0) << run.output;
      EXPECT_NE(run.output.find(why), std::string::npos) << run.output;
    }
    fs::path target = dir_ / ("unpacked" + std::to_string(++unpacks_));
    auto unpack = envrun({"unpack", ref, target.string()});
    EXPECT_FALSE(timed_out(unpack.exit_code)) << unpack.output;
    EXPECT_NE(unpack.exit_code, 0) << unpack.output;
    EXPECT_NE(unpack.output.find(why), std::string::npos) << unpack.output;
    EXPECT_FALSE(fs::exists(target)) << "a refused unpack leaves nothing at its target";
    auto check = envrun({"check", ref});
    EXPECT_FALSE(timed_out(check.exit_code)) << check.output;
    auto ls = envrun({"ls"});
    EXPECT_EQ(ls.exit_code, 0) << ls.output;
    auto gc = envrun({"gc", "--days", "0"});
    EXPECT_EQ(gc.exit_code, 0) << gc.output;
  }

  /// A minimal real prefix at opt/conda plus `extra` entries in the same layer.
  static json prefix_layer(std::vector<json> extra) {
    std::vector<json> entries = {{{"path", "opt"}, {"type", "dir"}},
                                 {{"path", "opt/conda"}, {"type", "dir"}},
                                 {{"path", "opt/conda/conda-meta"}, {"type", "dir"}},
                                 {{"path", "opt/conda/conda-meta/history"}, {"content", ""}}};
    entries.insert(entries.end(), extra.begin(), extra.end());
    return entries;
  }

  static json relocation_index(json files) {
    return {{"path", "opt/conda/conda-meta/envbuild-relocations.json"},
            {"content", json{{"format", 1}, {"prefix", "/opt/conda"}, {"files", files}}.dump()}};
  }

  fs::path sentinel_, home_, host_;
  envbuild::testing::TreeSnapshot before_;
  int images_ = 0;
  int unpacks_ = 0;
};

// Class 1: the prefix is reached through a symlink the image made. envrun once renamed the host
// directory into its cache (and gc deleted it), and `unpack` moved it into the target.
TEST_F(HostileImageTest, PrefixBehindAnAbsoluteSymlinkIsRefused) {
  std::string ref =
      image({{"labels", {{"org.envbuild.prefix", "/opt/precious"}}},
             {"layers", {{{{"path", "opt"}, {"type", "symlink"}, {"target", host_.string()}}}}}});
  expect_refused_everywhere(ref, "symlink");
}

TEST_F(HostileImageTest, PrefixBehindARelativeSymlinkIsRefused) {
  std::string up;
  for (int i = 0; i < 40; ++i) up += "../";
  std::string ref = image(
      {{"labels", {{"org.envbuild.prefix", "/opt/precious"}}},
       {"layers",
        {{{{"path", "opt"}, {"type", "symlink"}, {"target", up + host_.string().substr(1)}}}}}});
  expect_refused_everywhere(ref, "symlink");
}

TEST_F(HostileImageTest, PrefixThatIsItselfASymlinkIsRefused) {
  std::string ref = image({{"layers",
                            {{{{"path", "opt"}, {"type", "dir"}},
                              {{"path", "opt/conda"},
                               {"type", "symlink"},
                               {"target", (host_ / "precious").string()}}}}}});
  expect_refused_everywhere(ref, "symlink");
}

// Class 13: a symlink in a lower layer and a directory below it in an upper one. `unpack` and
// the run form (which composes from the layer cache) once disagreed; both refuse it now.
TEST_F(HostileImageTest, DirectoryBelowALowerLayersSymlinkIsRefusedByEveryForm) {
  std::string ref = image({{"layers",
                            {{{{"path", "opt"}, {"type", "symlink"}, {"target", host_.string()}}},
                             {{{"path", "opt/conda/bin/tool"}, {"content", "#!/bin/sh\n"}}}}}});
  expect_refused_everywhere(ref, "symlink");
  std::string explicit_dir =
      image({{"layers",
              {{{{"path", "opt"}, {"type", "symlink"}, {"target", host_.string()}}},
               {{{"path", "opt"}, {"type", "dir"}}, {{"path", "opt/conda"}, {"type", "dir"}}}}}});
  expect_refused_everywhere(explicit_dir, "symlink");
}

// Class 2: relocation records are data from the image. A record for link/.bashrc, with link ->
// the user's home, once rewrote the first line of the user's .bashrc.
TEST_F(HostileImageTest, RelocationRecordThroughASymlinkIsRefused) {
  json record = {{"path", "link/.bashrc"},
                 {"file_mode", "text"},
                 {"target", "linux"},
                 {"placeholder", "/opt/conda"},
                 {"room", 10},
                 {"offsets", json::array()},
                 {"shebang_template", "#!/opt/conda/bin/sh"},
                 {"first_line_length", 23}};
  std::string ref =
      image({{"layers",
              {prefix_layer(
                  {{{"path", "opt/conda/link"}, {"type", "symlink"}, {"target", home_.string()}},
                   relocation_index({record})})}}});
  expect_refused_everywhere(ref, "symlink");
}

TEST_F(HostileImageTest, RelocationRecordsThatDoNotFitThePrefixAreRefused) {
  const std::string script = "#!/opt/conda/bin/python\nprint('/opt/conda')\n";
  auto text_record = [&](json changes) {
    json record = {{"path", "bin/tool"},
                   {"file_mode", "text"},
                   {"target", "linux"},
                   {"placeholder", "/opt/conda"},
                   {"room", 10},
                   {"offsets", {31}},
                   {"shebang_template", "#!/opt/conda/bin/python"},
                   {"first_line_length", 23}};
    record.update(changes);
    return record;
  };
  struct Case {
    std::string name;
    json record;
  };
  std::string up = "../../../../../../../../../../../../../../../../../../../..";
  const Case cases[] = {
      {"outside by ..", text_record({{"path", up + home_.string() + "/.bashrc"}})},
      {"absolute path", text_record({{"path", (home_ / ".bashrc").string()}})},
      {"template not of the prefix",
       text_record(
           {{"shebang_template", "#!/bin/sh -c 'touch " + (home_ / "pwned").string() + "'"}})},
      {"template over two lines",
       text_record({{"shebang_template", "#!/opt/conda/bin/x\nrm -rf ~"}})},
      {"offset past the end", text_record({{"offsets", {1u << 30}}})},
      {"offsets out of order", text_record({{"offsets", {31, 5}}})},
      {"room unlike the placeholder", text_record({{"room", 4096}})},
      {"binary string past the end",
       {{"path", "bin/tool"},
        {"file_mode", "binary"},
        {"target", "linux"},
        {"placeholder", "/opt/conda"},
        {"room", 10},
        {"strings", {{{"offset", 1u << 30}, {"length", 20}, {"prefix_positions", {0}}}}}}},
      {"not a regular file", text_record({{"path", "bin"}})},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string ref = image(
        {{"layers",
          {prefix_layer({{{"path", "opt/conda/bin"}, {"type", "dir"}},
                         {{"path", "opt/conda/bin/tool"}, {"content", script}, {"mode", 0755}},
                         relocation_index({c.record})})}}});
    expect_refused_everywhere(ref, "relocat");
  }
  EXPECT_FALSE(fs::exists(home_ / "pwned"));
}

// Class 8: non-regular files where a file is expected once hung envrun while it held its locks.
TEST_F(HostileImageTest, FifosAndDevicesWhereFilesBelongAreRefusedWithoutHanging) {
  struct Case {
    std::string name;
    json entry;
  };
  const Case cases[] = {
      {"a FIFO record in conda-meta",
       {{"path", "opt/conda/conda-meta/zlib-1.3-0.json"}, {"type", "fifo"}}},
      {"conda-meta/state -> /dev/zero",
       {{"path", "opt/conda/conda-meta/state"}, {"type", "symlink"}, {"target", "/dev/zero"}}},
      {"a FIFO relocation index",
       {{"path", "opt/conda/conda-meta/envbuild-relocations.json"}, {"type", "fifo"}}},
      {"a FIFO in env_vars.d",
       {{"path", "opt/conda/etc/conda/env_vars.d/x.json"}, {"type", "fifo"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string ref = image({{"layers", {prefix_layer({c.entry})}}});
    expect_refused_everywhere(ref, "opt/conda");
  }
}

TEST_F(HostileImageTest, LayoutFilesThatAreNotRegularFilesAreRefusedWithoutHanging) {
  json layers = {prefix_layer({})};
  for (const std::string how : {"fifo", "devzero"}) {
    SCOPED_TRACE(how);
    std::string ref = image({{"layers", layers}, {"replace", {{"index.json", how}}}});
    auto run = envrun({ref, "--", "true"});
    EXPECT_FALSE(timed_out(run.exit_code)) << run.output;
    EXPECT_NE(run.exit_code, 0) << run.output;
    auto check = envrun({"check", ref});
    EXPECT_FALSE(timed_out(check.exit_code)) << check.output;
    EXPECT_NE(check.exit_code, 0) << check.output;
  }
  std::string fifo_blob = image({{"layers", layers}, {"blob_fifo", true}});
  expect_refused_everywhere(fifo_blob, "FIFO");
}

// Class 13: a symlink in etc/conda/env_vars.d pulled a host file into the environment.
TEST_F(HostileImageTest, EnvVarsThroughASymlinkAreNotRead) {
  std::string ref =
      image({{"layers",
              {prefix_layer({{{"path", "opt/conda/etc"}, {"type", "dir"}},
                             {{"path", "opt/conda/etc/conda"}, {"type", "dir"}},
                             {{"path", "opt/conda/etc/conda/env_vars.d"}, {"type", "dir"}},
                             {{"path", "opt/conda/etc/conda/env_vars.d/x.json"},
                              {"type", "symlink"},
                              {"target", (home_ / "secret.json").string()}}})}}});
  expect_refused_everywhere(ref, "symlink");
  auto run = envrun({ref, "--", "env"});
  EXPECT_EQ(run.output.find("sentinel-secret"), std::string::npos) << run.output;
}

// Class 13: a NUL in a label once cut the whole error message down to "envrun: error: '".
TEST_F(HostileImageTest, ControlBytesInLabelsAreShownEscaped) {
  std::string ref =
      image({{"labels", {{"org.envbuild.prefix", std::string("/opt/co\0nda\x1b[2J", 15)}}},
             {"layers", {prefix_layer({})}}});
  auto run = envrun({ref, "--", "true"});
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("/opt/co\\x00nda\\x1b[2J"), std::string::npos) << run.output;
}

// Class 3: the cache is trusted only when it is the user's own.
TEST_F(HostileImageTest, CachesOthersCanWriteAreRefused) {
  std::string ref = image({{"layers", {prefix_layer({})}}});
  auto with_cache = [&](const fs::path& cache) {
    return run_command("env ENVRUN_CACHE=" + shell_quote(cache.string()) + " timeout 60 " +
                       shell_quote((envrun_binary()).string()) + " " + shell_quote(ref) +
                       " -- true");
  };
  fs::create_directories(dir_ / "open");
  ASSERT_EQ(::chmod((dir_ / "open").c_str(), 0777), 0);
  auto open = with_cache(dir_ / "open");
  EXPECT_EQ(open.exit_code, 2) << open.output;
  EXPECT_NE(open.output.find("writable by others"), std::string::npos) << open.output;

  fs::create_directories(dir_ / "shared-parent");
  ASSERT_EQ(::chmod((dir_ / "shared-parent").c_str(), 0777), 0);
  auto below = with_cache(dir_ / "shared-parent/cache");
  EXPECT_EQ(below.exit_code, 2) << below.output;
  EXPECT_NE(below.output.find("without the sticky bit"), std::string::npos) << below.output;

  fs::create_directories(dir_ / "sticky-parent");
  ASSERT_EQ(::chmod((dir_ / "sticky-parent").c_str(), 01777), 0);
  auto sticky = with_cache(dir_ / "sticky-parent/cache");
  EXPECT_EQ(sticky.exit_code, 0) << sticky.output;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "sticky-parent/cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "a new cache root is private";

  if (::geteuid() == 0) {  // only root can give a directory away
    fs::create_directories(dir_ / "theirs");
    ASSERT_EQ(::chown((dir_ / "theirs").c_str(), 65534, 65534), 0);
    ASSERT_EQ(::chmod((dir_ / "theirs").c_str(), 0755), 0);
    auto theirs = with_cache(dir_ / "theirs");
    EXPECT_EQ(theirs.exit_code, 2) << theirs.output;
    EXPECT_NE(theirs.output.find("not to you"), std::string::npos) << theirs.output;
  }
}

// Class 12: a 1 MB layer unpacked to 1.1 GB, and nothing bounded the layers of an image. Past
// the defaults every form refuses the image naming the limit and the variable that raises it;
// raised, the same image runs.
TEST_F(HostileImageTest, ExpansionBombsAndLayerFloodsAreRefusedUntilRaised) {
  const std::string bomb =
      image({{"layers", {prefix_layer({{{"path", "opt/conda/zeros"}, {"zeros", 80 << 20}}})}}});
  expect_refused_everywhere(bomb, "a decompression bomb (limit: 100x past 64.0 MiB)");
  auto refused = envrun({bomb, "--", "true"});
  EXPECT_NE(refused.output.find("raise the limit with ENVRUN_MAX_EXPANSION=N"), std::string::npos)
      << refused.output;
  auto raised = envrun({bomb, "--", "true"}, "ENVRUN_MAX_EXPANSION=0");
  EXPECT_EQ(raised.exit_code, 0) << raised.output;

  const std::string layered =
      image({{"layers",
              {prefix_layer({}), json::array({{{"path", "opt/conda/a"}, {"content", "a"}}}),
               json::array({{{"path", "opt/conda/b"}, {"content", "b"}}})}}});
  for (const std::string share : {"1", "0"}) {
    SCOPED_TRACE("ENVRUN_SHARE_LAYERS=" + share);
    auto run = envrun({layered, "--", "true"}, "ENVRUN_MAX_LAYERS=2 ENVRUN_SHARE_LAYERS=" + share);
    EXPECT_EQ(run.exit_code, 5) << run.output;
    EXPECT_NE(run.output.find("has 3 layers (limit: 2 layers)"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("ENVRUN_MAX_LAYERS=N"), std::string::npos) << run.output;
  }
  auto unpack = envrun({"unpack", layered, (dir_ / "layered").string()}, "ENVRUN_MAX_LAYERS=2");
  EXPECT_EQ(unpack.exit_code, 5) << unpack.output;
  EXPECT_FALSE(fs::exists(dir_ / "layered"));
  auto bad = envrun({layered, "--", "true"}, "ENVRUN_MAX_LAYERS=many");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("ENVRUN_MAX_LAYERS='many': expected a number"), std::string::npos)
      << bad.output;
  EXPECT_EQ(envrun({layered, "--", "true"}).exit_code, 0);
}

TEST(CacheDefaultRoot, WithoutHomeIsTheUsersHomeNeverASharedDirectory) {
  struct Saved {
    std::string name;
    std::optional<std::string> value;
  };
  std::vector<Saved> saved;
  for (const char* name : {"ENVRUN_CACHE", "XDG_CACHE_HOME", "HOME"}) {
    const char* v = std::getenv(name);
    saved.push_back({name, v ? std::optional<std::string>(v) : std::nullopt});
    ::unsetenv(name);
  }
  auto root = Cache::default_root();
  for (const auto& s : saved)
    if (s.value) ::setenv(s.name.c_str(), s.value->c_str(), 1);
  ASSERT_TRUE(root) << root.error().to_string();
  EXPECT_FALSE(root->string().starts_with("/tmp")) << *root;
  EXPECT_EQ(root->filename(), "envrun");
}

}  // namespace
}  // namespace envbuild::runtime
