// The CUDA check without a GPU: the test builds a fake libcuda.so.1 exporting cuInit and
// cuDriverGetVersion (returning a chosen version) and selects it with ENVRUN_LIBCUDA, the
// documented variable; CONDA_OVERRIDE_CUDA is tested too.

#include "runtime/host_check.hpp"

#include <gnu/libc-version.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/testing/fake_libcuda.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using envbuild::testing::ScopedEnv;

class HostCheckTest : public envbuild::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    // Detection must not see the developer's or CI's overrides.
    cuda_.emplace("CONDA_OVERRIDE_CUDA", std::nullopt);
    glibc_.emplace("CONDA_OVERRIDE_GLIBC", std::nullopt);
    arch_.emplace("CONDA_OVERRIDE_CUDA_ARCH", std::nullopt);
    lib_.emplace("ENVRUN_LIBCUDA", std::nullopt);
  }
  /// Builds a fake driver library answering `version` (e.g. 12020 for CUDA 12.2).
  fs::path fake_libcuda(int version, bool init_fails = false, int devices = 1) {
    fs::path lib = dir_ / ("libcuda-" + std::to_string(version) + ".so.1");
    envbuild::testing::FakeLibcuda fake;
    fake.version = version;
    fake.init_fails = init_fails;
    fake.devices = devices;
    auto r = envbuild::testing::build_fake_libcuda(lib, fake);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return lib;
  }
  std::optional<ScopedEnv> cuda_, glibc_, arch_, lib_;
};

TEST_F(HostCheckTest, FakeDriverPassesAndFails) {
  ENVB_REQUIRE_TOOL("cc");
  DetectOptions options;
  options.libcuda = fake_libcuda(12020, false, 2).string();
  HostFacts host = detect_host(options);
  ASSERT_TRUE(host.cuda) << host.cuda_source;
  EXPECT_EQ(*host.cuda, "12.2");
  EXPECT_EQ(host.cuda_arch.value_or(""), "8.6");  // lowest of 8.6 and 9.6
  EXPECT_NE(host.cuda_source.find("libcuda-12020"), std::string::npos) << host.cuda_source;

  auto pass = check_requirements({{"__cuda", ">=12"}, {"__glibc", ">=2.17"}}, host);
  ASSERT_TRUE(pass);
  EXPECT_TRUE(pass->ok()) << pass->to_string();

  auto failing = check_requirements({{"__cuda", ">=12.4"}}, host);
  ASSERT_TRUE(failing);
  EXPECT_FALSE(failing->ok());
  std::string text = failing->to_string();
  EXPECT_NE(text.find("this environment needs a CUDA driver for CUDA >=12.4; this host's driver "
                      "supports CUDA 12.2: update the driver or rebuild with cuda-version<=12.2"),
            std::string::npos)
      << text;
}

TEST_F(HostCheckTest, DocumentedVariableSelectsTheLibrary) {
  ENVB_REQUIRE_TOOL("cc");
  ScopedEnv chosen("ENVRUN_LIBCUDA", fake_libcuda(11080).string());
  HostFacts host = detect_host({});
  EXPECT_EQ(host.cuda.value_or("none"), "11.8");
}

TEST_F(HostCheckTest, NoDriverIsAFactWithAClearMessage) {
  DetectOptions options;
  options.libcuda = (dir_ / "libcuda-missing.so.1").string();
  HostFacts host = detect_host(options);
  EXPECT_FALSE(host.cuda);
  EXPECT_NE(host.cuda_source.find("no CUDA driver library found"), std::string::npos);
  auto report = check_requirements({{"__cuda", ">=11.8"}}, host);
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->ok());
  EXPECT_NE(report->to_string().find("needs a CUDA driver for CUDA >=11.8 but none was found"),
            std::string::npos)
      << report->to_string();
}

TEST_F(HostCheckTest, InitFailureStillReportsDriverVersion) {
  ENVB_REQUIRE_TOOL("cc");
  DetectOptions options;
  options.libcuda = fake_libcuda(12040, /*init_fails=*/true).string();
  HostFacts host = detect_host(options);
  EXPECT_EQ(host.cuda.value_or("none"), "12.4");
}

TEST_F(HostCheckTest, OverridesWinOverDetection) {
  ScopedEnv cuda("CONDA_OVERRIDE_CUDA", "12.1");
  ScopedEnv glibc("CONDA_OVERRIDE_GLIBC", "2.17");
  DetectOptions options;
  options.libcuda = "/nonexistent/libcuda.so.1";
  HostFacts host = detect_host(options);
  EXPECT_EQ(host.cuda.value_or(""), "12.1");
  EXPECT_EQ(host.cuda_source, "CONDA_OVERRIDE_CUDA");
  EXPECT_EQ(host.glibc.value_or(""), "2.17");
  auto report = check_requirements({{"__glibc", ">=2.28"}, {"__cuda", ">=12"}}, host);
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->ok());
  EXPECT_TRUE(report->lines[1].ok);
  EXPECT_NE(report->lines[0].advice.find("needs glibc >=2.28; this host has glibc 2.17"),
            std::string::npos);
}

TEST_F(HostCheckTest, EmptyOverrideMeansNoCuda) {
  ScopedEnv cuda("CONDA_OVERRIDE_CUDA", "");
  HostFacts host = detect_host({});
  EXPECT_FALSE(host.cuda);
}

TEST_F(HostCheckTest, ProbeIsCachedPerBoot) {
  ENVB_REQUIRE_TOOL("cc");
  if (!fs::exists("/proc/sys/kernel/random/boot_id")) GTEST_SKIP() << "no boot_id";
  DetectOptions options;
  options.libcuda = fake_libcuda(12020).string();
  options.cache_dir = dir_ / "cache";
  EXPECT_EQ(detect_host(options).cuda.value_or(""), "12.2");
  ASSERT_TRUE(fs::exists(options.cache_dir / "cuda-probe.json"));
  // Replacing the library (new inode/mtime) invalidates the cache.
  fs::path lib = options.libcuda;
  fs::remove(lib);
  fs::copy_file(fake_libcuda(12060), lib);
  EXPECT_EQ(detect_host(options).cuda.value_or(""), "12.6");
}

TEST_F(HostCheckTest, CachedNoDriverEndsWhenADriverAppears) {
  ENVB_REQUIRE_TOOL("cc");
  DetectOptions options;
  options.libcuda = (dir_ / "later" / "libcuda.so.1").string();
  options.cache_dir = dir_ / "cache";
  EXPECT_FALSE(detect_host(options).cuda);
  ASSERT_TRUE(fs::exists(options.cache_dir / "cuda-probe.json"));
  EXPECT_FALSE(detect_host(options).cuda);  // kept: still none
  // A driver installed without a reboot.
  fs::create_directories(dir_ / "later");
  fs::copy_file(fake_libcuda(12040), options.libcuda);
  EXPECT_EQ(detect_host(options).cuda.value_or("none"), "12.4");
}

// A driver that fails (here: without cuDriverGetVersion; a hung one would cost the probe's
// timeout) is asked once per boot, not on every start. It leaves a mark when it is loaded.
TEST_F(HostCheckTest, BrokenDriverIsProbedOncePerBoot) {
  ENVB_REQUIRE_TOOL("cc");
  const fs::path mark = dir_ / "loaded";
  DetectOptions options;
  options.libcuda = (dir_ / "libcuda-broken.so.1").string();
  envbuild::testing::FakeLibcuda broken;
  broken.version.reset();  // no cuDriverGetVersion
  broken.mark = mark;
  auto built = envbuild::testing::build_fake_libcuda(options.libcuda, broken);
  ASSERT_EQ(built.exit_code, 0) << built.output;
  options.cache_dir = dir_ / "cache";
  EXPECT_FALSE(detect_host(options).cuda);
  EXPECT_TRUE(fs::exists(mark));
  fs::remove(mark);
  EXPECT_FALSE(detect_host(options).cuda);
  EXPECT_FALSE(fs::exists(mark)) << "the broken driver was loaded again";
}

TEST(Requirements, ParsedFromDepends) {
  auto reqs = conda::host_requirements({"python >=3.11", "__glibc >=2.17,<3.0.a0", "__cuda",
                                        "__cuda>=12", "__glibc >=2.17,<3.0.a0"});
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0], (Requirement{"__cuda", ""}));
  EXPECT_EQ(reqs[1], (Requirement{"__cuda", ">=12"}));
  EXPECT_EQ(reqs[2], (Requirement{"__glibc", ">=2.17,<3.0.a0"}));
  EXPECT_FALSE(conda::parse_host_requirement("numpy"));
  EXPECT_FALSE(conda::parse_host_requirement("__cuda >=>12"));
}

TEST(Requirements, HostGlibcSatisfiesOldFloor) {
  HostFacts host;
  host.glibc = ::gnu_get_libc_version();
  auto report = check_requirements({{"__glibc", ">=2.17"}, {"__unix", ""}, {"__osx", ""}}, host);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->lines[0].ok);
  EXPECT_TRUE(report->lines[1].ok);
  EXPECT_FALSE(report->lines[2].ok);
}

}  // namespace
}  // namespace envbuild::runtime
