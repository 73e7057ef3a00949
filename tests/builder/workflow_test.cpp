// One workflow (issue 19): lock, build, install and run agree. The same solution gives the same
// records, layers and image digest whether it comes from environment.yml or from a lock made of
// it; a mirror keeps digests; and the whole path env.yml -> lock -> build --lock -> push ->
// envrun on another cache -> unpack -> move -> run.

#include <nlohmann/json.hpp>

#include "tests/testing/channels.hpp"
#include "tests/testing/repo_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

std::string q(const fs::path& p) {
  return shell_quote(p.string());
}

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

}  // namespace
}  // namespace envbuild::builder
