// builder/image/build_request.hpp in process: build_image() on a lock of the demo channel gives
// the manifest digest that `envbuild build --lock` gives for the same lock, writes its outputs
// and SBOM, and says so through its progress callback; a plan request writes nothing.

#include <mutex>
#include <nlohmann/json.hpp>

#include "builder/image/build_request.hpp"
#include "conda/platform.hpp"
#include "oci/layout.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::q;
using testing::read_text;
using testing::run_command;
using testing::write_text;

class BuildRequestTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::string why;
    auto channel = testing::demo_channel(why);
    ASSERT_TRUE(channel) << why;
    write_text(dir_ / "environment.yml",
               "name: demo\nchannels:\n  - " + channel->string() +
                   "\n  - nodefaults\ndependencies:\n  - python\n  - demo-hello\n  - demo-tools\n");
    // One lock for both builds: the CLI's and the library's environment are the same records.
    auto lock = run_command(envbuild() + " lock -f " + q(dir_ / "environment.yml") + " -o " +
                            q(dir_ / "conda-lock.yml") + " --cache-dir " + q(dir_ / "cache-lock") +
                            " 2>&1");
    ASSERT_EQ(lock.exit_code, 0) << lock.output;
  }

  static std::string envbuild() { return q(testing::binary_dir() / "envbuild"); }

  /// The request the CLI makes of `envbuild build --lock conda-lock.yml -t demo:1` with the
  /// package cache `cache` (its defaults: /opt/conda, gzip, link scripts recorded).
  Result<BuildRequest> request_for(const fs::path& cache) {
    BuildRequest r;
    const std::string subdir = conda::host_subdir();
    ENVB_ASSIGN_OR_RETURN(r.env, environment_from_lock(dir_ / "conda-lock.yml", subdir));
    r.options.subdir = subdir;
    r.options.cache_root = cache;
    r.options.packages.root = cache;
    r.options.packages.jobs = 4;
    r.options.image_name = "demo:1";
    r.options.link_scripts = LinkScripts::Run;
    r.tag = "demo:1";
    r.registry.scratch_dir = cache / "tmp";
    r.progress = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(line);
    };
    return r;
  }

  std::mutex mutex_;
  std::vector<std::string> lines_;
};

TEST_F(BuildRequestTest, SameDigestAsTheCli) {
  testing::ScopedEnv epoch("SOURCE_DATE_EPOCH", "1700000000");
  auto cli =
      run_command("SOURCE_DATE_EPOCH=1700000000 " + envbuild() + " build -q --lock " +
                  q(dir_ / "conda-lock.yml") + " -t demo:1 --cache-dir " + q(dir_ / "cache-cli") +
                  " -o " + q("oci:" + (dir_ / "cli").string()) + " 2>" + q(dir_ / "stderr.txt"));
  ASSERT_EQ(cli.exit_code, 0) << read_text(dir_ / "stderr.txt");
  std::string cli_digest = cli.output;
  while (!cli_digest.empty() && cli_digest.back() == '\n') cli_digest.pop_back();
  ASSERT_TRUE(cli_digest.starts_with("sha256:")) << cli.output;

  auto request = request_for(dir_ / "cache-lib");
  ASSERT_TRUE(request) << request.error().to_string();
  const std::string output = "oci:" + (dir_ / "lib").string() + ":1";
  request->outputs = {output};
  request->sbom_file = (dir_ / "sbom.json").string();
  auto result = build_image(*request);
  ASSERT_TRUE(result) << result.error().to_string();
  ASSERT_TRUE(result->build && result->build->manifest);
  EXPECT_EQ(result->build->manifest->digest.to_string(), cli_digest);

  // The output holds the image (and its SBOM artifact), the SBOM file is the one returned, and
  // the progress callback was told of the output.
  auto layout = oci::Layout::open(dir_ / "lib");
  ASSERT_TRUE(layout) << layout.error().to_string();
  auto image = layout->image("1");
  ASSERT_TRUE(image) << image.error().to_string();
  EXPECT_EQ((*image)->manifest().layers.size(), result->build->layers.size());
  EXPECT_EQ(read_text(dir_ / "sbom.json"), result->sbom);
  EXPECT_EQ(nlohmann::json::parse(result->sbom)["spdxVersion"], "SPDX-2.3");
  EXPECT_NE(std::find(lines_.begin(), lines_.end(), "wrote " + output), lines_.end());
}

TEST_F(BuildRequestTest, PlanWritesNothing) {
  auto request = request_for(dir_ / "cache-plan");
  ASSERT_TRUE(request) << request.error().to_string();
  request->plan = true;
  request->outputs = {"oci:" + (dir_ / "never").string()};
  auto result = build_image(*request);
  ASSERT_TRUE(result) << result.error().to_string();
  ASSERT_TRUE(result->build);
  EXPECT_FALSE(result->build->manifest);
  EXPECT_FALSE(result->build->layers.empty());
  EXPECT_FALSE(fs::exists(dir_ / "never"));
  EXPECT_TRUE(result->sbom.empty());
}

}  // namespace
}  // namespace envbuild::builder
