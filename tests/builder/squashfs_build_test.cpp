// `envbuild build --output squashfs:FILE` end to end on the demo channel: the image lists with
// unsquashfs, holds the environment's files, relocation index and image.json (the image contract),
// and is the same file, byte for byte, however often and with however many threads it is built.

#include <nlohmann/json.hpp>

#include "conda/image_contract.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

using testing::q;

class SquashfsBuildTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::string why;
    auto channel = testing::demo_channel(why);
    ASSERT_TRUE(channel) << why;
    write_text(dir_ / "environment.yml",
               "name: demo\nchannels:\n  - " + channel->string() +
                   "\n  - nodefaults\ndependencies:\n  - python\n  - demo-hello\n  - demo-tools\n"
                   "  - demo-trainer\nvariables:\n  DEMO_MODE: squashfs\n");
  }

  /// envbuild build with `args` (SOURCE_DATE_EPOCH fixed); stdout, or "" with the failure logged.
  testing::CommandResult build(const std::string& args, const std::string& cache = "cache") {
    return run_command("SOURCE_DATE_EPOCH=1700000000 " + q(testing::binary_dir() / "envbuild") +
                       " build -q -f " + q(dir_ / "environment.yml") + " -t demo:1 --cache-dir " +
                       q(dir_ / cache) + " " + args + " 2>" + q(dir_ / "stderr.txt"));
  }
};

TEST_F(SquashfsBuildTest, ImageListsTheEnvironmentWithItsContract) {
  ENVB_REQUIRE_TOOL("unsquashfs");
  auto b =
      build("--prefix /opt/demo --cmd demo-hello -o squashfs:" + (dir_ / "demo.sqfs").string());
  ASSERT_EQ(b.exit_code, 0) << read_text(dir_ / "stderr.txt");
  // stdout: the image's sha256 (the only output).
  auto sum = run_command("sha256sum " + q(dir_ / "demo.sqfs"));
  EXPECT_EQ(b.output, "sha256:" + sum.output.substr(0, 64) + "\n");
  auto listing = run_command("unsquashfs -l -d '' " + q(dir_ / "demo.sqfs"));
  ASSERT_EQ(listing.exit_code, 0) << listing.output;
  for (std::string want :
       {"/bin/demo-hello\n", "/bin/demo-info\n", "/bin/demo-train\n", "/bin/python\n",
        "/conda-meta/envbuild-relocations.json\n", "/conda-meta/history\n",
        "/etc/conda/activate.d/demo-trainer.sh\n", "/.envbuild/image.json\n"}) {
    SCOPED_TRACE(want);
    EXPECT_NE(listing.output.find(want), std::string::npos) << listing.output;
  }
  // No package cache, staging or lock file inside.
  EXPECT_EQ(listing.output.find("pkgs/"), std::string::npos);
  EXPECT_EQ(listing.output.find("staging"), std::string::npos);

  auto json = run_command("unsquashfs -cat " + q(dir_ / "demo.sqfs") + " .envbuild/image.json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  auto info = conda::parse_image_info(json.output, "image.json");
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->labels.at(std::string(conda::kPrefixLabel)), "/opt/demo");
  EXPECT_EQ(info->labels.at(std::string(conda::kRequirementsLabel)), "__glibc >=2.17");
  EXPECT_EQ(info->labels.at(std::string(conda::kPlatformLabel)), "linux-64");
  EXPECT_NE(info->labels.at(std::string(conda::kLockLabel)).find("@EXPLICIT\n"), std::string::npos);
  EXPECT_EQ(info->labels.at("org.opencontainers.image.title"), "demo");
  EXPECT_EQ(info->cmd, std::vector<std::string>{"demo-hello"});
  EXPECT_EQ(info->env.front(),
            "PATH=/opt/demo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_NE(std::find(info->env.begin(), info->env.end(), "DEMO_MODE=squashfs"), info->env.end());
  // The relocation index names the image's prefix: envrun relocates a copy from it.
  auto index = run_command("unsquashfs -cat " + q(dir_ / "demo.sqfs") +
                           " conda-meta/envbuild-relocations.json");
  EXPECT_EQ(nlohmann::json::parse(index.output)["prefix"], "/opt/demo");
}

TEST_F(SquashfsBuildTest, RebuildsAreByteIdentical) {
  // Given two builds from empty caches (everything planned and staged again) with 1 and 4
  // threads, and one from the warm cache of the first, expect the same bytes each time.
  auto one = build("-j 1 -o squashfs:" + (dir_ / "a.sqfs").string(), "cache-a");
  ASSERT_EQ(one.exit_code, 0) << read_text(dir_ / "stderr.txt");
  auto four = build("-j 4 -o squashfs:" + (dir_ / "b.sqfs").string(), "cache-b");
  ASSERT_EQ(four.exit_code, 0) << read_text(dir_ / "stderr.txt");
  auto warm = build("-o squashfs:" + (dir_ / "c.sqfs").string(), "cache-a");
  ASSERT_EQ(warm.exit_code, 0) << read_text(dir_ / "stderr.txt");
  EXPECT_EQ(one.output, four.output);
  EXPECT_EQ(one.output, warm.output);
  EXPECT_EQ(run_command("cmp " + q(dir_ / "a.sqfs") + " " + q(dir_ / "b.sqfs")).exit_code, 0);
  // gzip is a choice too, and another image.
  auto gzip = build("--compression gzip -o squashfs:" + (dir_ / "g.sqfs").string(), "cache-a");
  ASSERT_EQ(gzip.exit_code, 0) << read_text(dir_ / "stderr.txt");
  EXPECT_NE(gzip.output, one.output);
  EXPECT_NE(run_command("unsquashfs -s " + q(dir_ / "g.sqfs")).output.find("Compression gzip"),
            std::string::npos);
}

TEST_F(SquashfsBuildTest, OciAndSquashfsOutputsInOneRun) {
  auto b = build("-o squashfs:" + (dir_ / "d.sqfs").string() +
                 " -o oci:" + (dir_ / "layout").string() + ":1");
  ASSERT_EQ(b.exit_code, 0) << read_text(dir_ / "stderr.txt");
  EXPECT_TRUE(fs::exists(dir_ / "d.sqfs"));
  EXPECT_TRUE(fs::exists(dir_ / "layout/index.json"));
  EXPECT_EQ(b.output.rfind("sha256:", 0), 0u);  // the manifest digest
}

TEST_F(SquashfsBuildTest, RefusesWhatASquashfsImageCannotHold) {
  auto base = build("-o oci:" + (dir_ / "base").string() + ":1");
  ASSERT_EQ(base.exit_code, 0) << read_text(dir_ / "stderr.txt");
  struct Case {
    std::string args, want;
  } cases[] = {
      {"--base oci:" + (dir_ / "base").string() + ":1 -o squashfs:" + (dir_ / "x.sqfs").string(),
       "--base does not apply to a squashfs: output"},
      {"--platform linux-64,linux-aarch64 -o squashfs:" + (dir_ / "x.sqfs").string(),
       "a squashfs: output holds one platform"},
      {"-o squashfs:", "needs a FILE"},
      {"--compression lz4 -o squashfs:" + (dir_ / "x.sqfs").string(), "compression"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto b = build(c.args);
    EXPECT_NE(b.exit_code, 0);
    EXPECT_NE(read_text(dir_ / "stderr.txt").find(c.want), std::string::npos)
        << read_text(dir_ / "stderr.txt");
    EXPECT_FALSE(fs::exists(dir_ / "x.sqfs"));
  }
}

}  // namespace
}  // namespace envbuild::builder
