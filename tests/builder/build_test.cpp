// envbuild build end to end: real conda-forge packages plus the host's python (a local channel
// made by examples/demo/make_channel.py) become a layered image on a glibc base made here; the
// image validates with oci-image-tool, umoci and skopeo, and its programs run under chroot; the
// same environment gives the same manifest digest whatever the temp dirs, umask and clock; one
// changed package rebuilds only its own layer and the top layer. Plus the pure helpers (labels,
// lock, SBOM).

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "builder/image/image_build.hpp"
#include "builder/image/sbom.hpp"
#include "common/fs.hpp"
#include "oci/layer_writer.hpp"
#include "oci/layout.hpp"
#include "oci/manifest.hpp"
#include "oci/mutate.hpp"
#include "tests/testing/channels.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/shared_fixture.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

using testing::q;
fs::path envbuild_bin() {
  return testing::binary_dir() / "envbuild";
}

// A tiny package envb-hello-VERSION-0 (one text file holding the prefix placeholder) written
// with python's tarfile, in `channel`/linux-64.
std::string make_hello_package(const fs::path& channel, const std::string& version) {
  fs::path src = channel / ("src-" + version);
  write_text(src / "share/envb-hello/hello.txt",
             "hello " + version + " from /opt/placeholder_prefix\n");
  std::string sha =
      run_command("sha256sum " + q(src / "share/envb-hello/hello.txt")).output.substr(0, 64);
  auto size = fs::file_size(src / "share/envb-hello/hello.txt");
  write_text(src / "info/index.json", nlohmann::json{{"name", "envb-hello"},
                                                     {"version", version},
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
                             {{{"_path", "share/envb-hello/hello.txt"},
                               {"path_type", "hardlink"},
                               {"sha256", sha},
                               {"size_in_bytes", size},
                               {"file_mode", "text"},
                               {"prefix_placeholder", "/opt/placeholder_prefix"}}}}}
                 .dump());
  write_text(src / "info/files", "share/envb-hello/hello.txt\n");
  fs::create_directories(channel / "linux-64");
  fs::path out = channel / "linux-64" / ("envb-hello-" + version + "-0.tar.bz2");
  auto r = run_command("cd " + q(src) +
                       " && python3 -c \"import tarfile,sys\n"
                       "with tarfile.open(sys.argv[1],'w:bz2') as t:\n"
                       "  [t.add(p) for p in ['info','share']]\" " +
                       q(out));
  return r.exit_code == 0 ? "" : r.output;
}

// Files of a glibc userland for chroot: /bin/busybox and every library ldd names for the host's
// python3 (the host python package is that interpreter), plus the libraries conda-forge builds
// link against (libpthread, libdl, librt).
Result<std::vector<oci::LayerEntry>> glibc_base_entries(std::string& why) {
  std::vector<oci::LayerEntry> entries;
  entries.push_back(oci::LayerEntry::file("bin/busybox", "/bin/busybox"));
  entries.push_back(oci::LayerEntry::symlink("bin/sh", "busybox"));
  entries.push_back(oci::LayerEntry::directory("tmp"));
  entries.back().mode = 01777;
  auto ldd = run_command("ldd " + q(fs::canonical("/usr/bin/python3")));
  std::set<std::string> libs;
  std::regex path_re(R"((/[^ \t\n()]+))");
  for (std::sregex_iterator it(ldd.output.begin(), ldd.output.end(), path_re), end; it != end; ++it)
    libs.insert((*it)[1]);
  std::string libdir;
  for (const auto& l : libs)
    if (l.ends_with("/libc.so.6")) libdir = fs::path(l).parent_path().string();
  if (libdir.empty()) {
    why = "no libc in: " + ldd.output;
    return fail(Errc::NotFound, why);
  }
  for (const char* extra : {"libpthread.so.0", "libdl.so.2", "librt.so.1", "libm.so.6"})
    if (fs::exists(libdir + "/" + extra)) libs.insert(libdir + "/" + extra);
  for (const auto& l : libs) {
    if (!fs::exists(l)) continue;
    entries.push_back(oci::LayerEntry::file(l.substr(1), fs::canonical(l)));
  }
  return entries;
}

Result<void> make_base_image(const fs::path& layout_dir, std::string& why) {
  ENVB_ASSIGN_OR_RETURN(auto entries, glibc_base_entries(why));
  ENVB_ASSIGN_OR_RETURN(auto layout, oci::Layout::create(layout_dir));
  oci::LayerOptions options;
  options.mtime = 0;
  ENVB_ASSIGN_OR_RETURN(auto layer, oci::write_layer(entries, options, layout.blobs()));
  oci::History h;
  h.created_by = "test: busybox + host glibc";
  oci::ConfigChanges changes;
  changes.env = {{"PATH", "/usr/bin:/bin"}};
  changes.created = "1970-01-01T00:00:00Z";
  oci::Platform platform;
  platform.architecture = "amd64";
  platform.os = "linux";
  ENVB_ASSIGN_OR_RETURN(auto desc,
                        oci::build_image(platform, {{layer, h}}, changes, layout.blobs()));
  return layout.add(desc, "base");
}

std::string environment_yml(const std::vector<fs::path>& channels, const std::string& extra) {
  std::string text = "name: real\nchannels:\n";
  for (const auto& c : channels) text += "  - " + c.string() + "\n";
  text +=
      "  - nodefaults\ndependencies:\n  - python 3.*\n  - openssl\n  - xz\n  - ncurses\n"
      "  - readline\n  - libzlib\n  - pip\n" +
      extra + "variables:\n  ENVB_TEST_VAR: hello\n";
  return text;
}

struct Built {
  int exit_code = -1;
  std::string digest;  // stdout: the manifest digest
  std::string log;     // stderr
};

Built run_build(const fs::path& work, const std::string& args, const std::string& env = "") {
  fs::path err = work / ("stderr-" + std::to_string(::getpid()) + ".txt");
  auto r = run_command(env + q(envbuild_bin()) + " build " + args + " 2>" + q(err));
  Built b;
  b.exit_code = r.exit_code;
  b.digest = r.output;
  while (!b.digest.empty() && (b.digest.back() == '\n' || b.digest.back() == ' '))
    b.digest.pop_back();
  b.log = read_text(err);
  return b;
}

// What the suite's image is built with besides the environment, cache and outputs; the tests
// that build it again to the same digest pass them too.
const std::string kSuiteImageFlags =
    " -t envb/real:1 --cmd python --label team=ml --annotation note=x";

// The suite's image: the environment on the glibc base made here, with its docker-archive and
// SBOM, in `root`.
Result<void> make_suite_image(const fs::path& root, const std::vector<fs::path>& channels) {
  write_text(root / "environment.yml", environment_yml(channels, ""));
  std::string why;
  if (auto base = make_base_image(root / "base", why); !base)
    return std::move(base).context("making the base image: " + why);
  auto b = run_build(root, "-f " + q(root / "environment.yml") + kSuiteImageFlags +
                               " --cache-dir " + q(root / "cache") + " --base " +
                               q("oci:" + (root / "base").string() + ":base") + " -o " +
                               q("oci:" + (root / "img").string() + ":1") + " -o " +
                               q("docker-archive:" + (root / "img.tar").string()) + " --sbom " +
                               q(root / "sbom.json"));
  if (b.exit_code != 0) return fail(Errc::Internal, "envbuild build failed:\n" + b.log);
  write_text(root / "digest", b.digest);
  return ok();
}

// One image (on the glibc base) built once per test run (shared_fixture.hpp) and shared by the
// tests, which only read it: what a test writes goes to its own scratch directory (dir_), and a
// test that builds again gets a copy of the suite's package cache (cache()).
class BuildImageTest : public testing::TempDirTest {
 protected:
  static void SetUpTestSuite() {
    auto channel = testing::host_python_channel(*error_);
    if (!channel) return;
    const std::string inputs =
        "suite image\n" + environment_yml({*channel}, "") + kSuiteImageFlags + "\n" +
        testing::file_identity(envbuild_bin()) + "\n" +
        testing::file_identity(testing::data_dir() /
                               "packages/channels/conda-forge-subset/linux-64/repodata.json");
    auto made = testing::shared_fixture("build-image", inputs, [&](const fs::path& root) {
      return make_suite_image(root, {*channel, testing::conda_forge_subset_channel(root)});
    });
    if (!made) {
      *error_ = made.error().to_string();
      return;
    }
    fixture_ = new fs::path(*made);
    channels_ = new std::vector<fs::path>{*channel, *fixture_ / "conda-forge-subset"};
    *digest_ = read_text(*fixture_ / "digest");
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
    delete channels_;
    channels_ = nullptr;
  }
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_TRUE(error_->empty()) << *error_;
  }
  static fs::path environment_file() { return *fixture_ / "environment.yml"; }
  static fs::path base_layout() { return *fixture_ / "base"; }
  static std::string base_ref() { return "oci:" + base_layout().string() + ":base"; }
  static fs::path img() { return *fixture_ / "img"; }
  static fs::path img_tar() { return *fixture_ / "img.tar"; }
  static fs::path sbom() { return *fixture_ / "sbom.json"; }
  /// This test's copy of the package cache the suite's image was built with (it holds every
  /// package, plan and layer of that image), made on first use.
  fs::path cache() {
    const fs::path copy = dir_ / "cache";
    if (!fs::exists(copy)) {
      auto cp = run_command("cp -a " + q(*fixture_ / "cache") + " " + q(copy));
      EXPECT_EQ(cp.exit_code, 0) << cp.output;
    }
    return copy;
  }

  static fs::path* fixture_;
  static std::vector<fs::path>* channels_;
  static std::string* digest_;
  static std::string* error_;
};
fs::path* BuildImageTest::fixture_ = nullptr;
std::vector<fs::path>* BuildImageTest::channels_ = nullptr;
std::string* BuildImageTest::digest_ = new std::string;
std::string* BuildImageTest::error_ = new std::string;

TEST_F(BuildImageTest, ConfigHasActivationLabelsAndOneLayerPerPackage) {
  auto layout = oci::Layout::open(img());
  ASSERT_TRUE(layout) << layout.error().to_string();
  auto image = layout->image("1");
  ASSERT_TRUE(image) << image.error().to_string();
  EXPECT_EQ((*image)->descriptor().digest.to_string(), *digest_);
  ASSERT_TRUE(oci::validate(**image));
  const auto& config = (*image)->config();
  const auto& env = config.config.env;
  auto has = [&](const std::string& e) {
    return std::find(env.begin(), env.end(), e) != env.end();
  };
  EXPECT_TRUE(has("PATH=/opt/conda/bin:/usr/bin:/bin"));  // the base's PATH, prefix first
  EXPECT_TRUE(has("CONDA_PREFIX=/opt/conda"));
  EXPECT_TRUE(has("CONDA_DEFAULT_ENV=real"));
  EXPECT_TRUE(has("ENVB_TEST_VAR=hello"));
  EXPECT_EQ(config.config.cmd, std::vector<std::string>{"python"});
  const auto& labels = config.config.labels;
  EXPECT_EQ(labels.at("org.envbuild.prefix"), "/opt/conda");
  EXPECT_EQ(labels.at("org.envbuild.requirements"), "__glibc >=2.17;__unix");
  EXPECT_EQ(labels.at("team"), "ml");
  EXPECT_NE(labels.at("org.envbuild.lock").find("@EXPLICIT\n"), std::string::npos);
  EXPECT_EQ((*image)->manifest().annotations.at("note"), "x");
  // Not the wall clock: the newest package's build time.
  EXPECT_LT(config.created, "2026-01-01");
  EXPECT_EQ(config.created, labels.at("org.opencontainers.image.created"));
  // Base layer + 15 packages + the environment layer.
  EXPECT_EQ((*image)->manifest().layers.size(), 17u);
  EXPECT_EQ(config.history.size(), 17u);
}

TEST_F(BuildImageTest, ValidatesWithTheRealTools) {
  ENVB_REQUIRE_TOOL("oci-image-tool");
  ENVB_REQUIRE_TOOL("umoci");
  ENVB_REQUIRE_TOOL("skopeo");
  // By name: oci-image-tool 1.0 predates OCI 1.1 artifacts and would validate the attached SBOM
  // (config application/vnd.oci.empty.v1+json) as an image.
  auto v = run_command("oci-image-tool validate --type image --ref name=1 " + q(img()));
  EXPECT_EQ(v.exit_code, 0) << v.output;
  auto s = run_command("skopeo inspect " + q("oci:" + img().string() + ":1"));
  ASSERT_EQ(s.exit_code, 0) << s.output;
  auto j = nlohmann::json::parse(s.output);
  EXPECT_EQ(j["Digest"], *digest_);
  EXPECT_EQ(j["Layers"].size(), 17u);
  auto s2 = run_command("skopeo inspect " + q("docker-archive:" + (img_tar()).string()));
  EXPECT_EQ(s2.exit_code, 0) << s2.output;
}

TEST_F(BuildImageTest, ProgramsRunUnderChroot) {
  ENVB_REQUIRE_TOOL("umoci");
  ENVB_REQUIRE_TOOL("chroot");
  ENVB_REQUIRE_TOOL("unshare");
  if (::geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  fs::path bundle = dir_ / "bundle";
  auto u =
      run_command("umoci unpack --rootless --image " + q(img().string() + ":1") + " " + q(bundle));
  ASSERT_EQ(u.exit_code, 0) << u.output;
  fs::path rootfs = bundle / "rootfs";
  // Nothing from the package cache or the build's temp dirs in the image.
  EXPECT_FALSE(fs::exists(rootfs / "opt/conda/pkgs"));
  EXPECT_FALSE(fs::exists(rootfs / "opt/conda/.envbuild-staging"));
  std::string chroot = run_command("command -v chroot").output;
  while (!chroot.empty() && chroot.back() == '\n') chroot.pop_back();
  // ld.so resolves $ORIGIN (conda's RPATH) through /proc/self/exe: mount a proc, as runtimes do,
  // in a private mount and pid namespace (tooling.md section 3).
  fs::create_directories(rootfs / "proc");
  std::string run =
      "env -i HOME=/ PATH=/opt/conda/bin:/bin unshare --mount --pid --fork "
      "--mount-proc=" +
      q(rootfs / "proc") + " " + q(chroot) + " " + q(rootfs) + " ";
  auto py = run_command(run + "/opt/conda/bin/python -c 'import sys; print(1, sys.prefix)'");
  EXPECT_EQ(py.exit_code, 0) << py.output;
  EXPECT_NE(py.output.find("1 /opt/conda"), std::string::npos) << py.output;
  auto ssl = run_command(run + "/opt/conda/bin/openssl version -d");
  EXPECT_EQ(ssl.exit_code, 0) << ssl.output;
  EXPECT_NE(ssl.output.find("/opt/conda/ssl"), std::string::npos) << ssl.output;
  // TERMINFO unset: libtinfo finds xterm through its patched binary placeholder.
  auto info = run_command(run + "/opt/conda/bin/infocmp xterm");
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("/opt/conda/share/terminfo"), std::string::npos) << info.output;
  auto pip = run_command(run + "/opt/conda/bin/python -m pip --version");
  EXPECT_EQ(pip.exit_code, 0) << pip.output;
  auto vars = read_text(rootfs / "opt/conda/etc/conda/env_vars.d/envbuild-variables.json");
  EXPECT_NE(vars.find("ENVB_TEST_VAR"), std::string::npos);
  EXPECT_TRUE(fs::exists(rootfs / "opt/conda/conda-meta/history"));
  EXPECT_TRUE(fs::exists(rootfs / "opt/conda/conda-meta/envbuild-relocations.json"));
}

TEST_F(BuildImageTest, DockerArchiveLoadsAndRunsWithPodman) {
  ENVB_REQUIRE_TOOL("podman");
  ENVB_REQUIRE_TOOL("runc");
  // podman refuses a runroot longer than 50 characters: dir_ is longer.
  auto runroot = common::TempDir::create("/tmp", "envb-pr-");
  ASSERT_TRUE(runroot) << runroot.error().to_string();
  std::string p = "podman --root " + q(dir_ / "podman") + " --runroot " + q(runroot->path()) +
                  " --storage-driver vfs --runtime runc ";
  auto load = run_command(p + "load -i " + q(img_tar()));
  ASSERT_EQ(load.exit_code, 0) << load.output;
  auto r = run_command(
      p +
      "run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "
      "--network none envb/real:1 python -c 'import os; print(os.environ[\"ENVB_TEST_VAR\"])'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("hello"), std::string::npos) << r.output;
  run_command(p + "rmi -a -f");
}

TEST_F(BuildImageTest, PushesToARegistry) {
  ENVB_REQUIRE_TOOL("docker-registry");
  ENVB_REQUIRE_TOOL("skopeo");
  testing::RegistryServer registry(dir_ / "registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const std::string dest = "docker://" + registry.host() + "/envb/real";
  const std::string push = "-q -f " + q(environment_file()) + kSuiteImageFlags + " --cache-dir " +
                           q(cache()) + " --base " + q(base_ref()) + " --tls-verify=false -o " +
                           q(dest + ":7");
  auto b = run_build(dir_, push);
  EXPECT_EQ(b.exit_code, 0) << b.log;
  EXPECT_EQ(b.digest, *digest_);  // same inputs as the suite's image
  auto s = run_command("skopeo inspect --tls-verify=false " + q(dest + ":7"));
  EXPECT_EQ(s.exit_code, 0) << s.output;
  EXPECT_NE(s.output.find(*digest_), std::string::npos) << s.output;
  // distribution 2.8 has no referrers API: the SBOM is found through the sha256-<hex> tag.
  std::string tag = "sha256-" + digest_->substr(7);
  auto r = run_command("skopeo inspect --raw --tls-verify=false " + q(dest + ":" + tag));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code == 0) {
    auto index = nlohmann::json::parse(r.output);
    ASSERT_EQ(index["manifests"].size(), 1u) << r.output;
    EXPECT_EQ(index["manifests"][0]["artifactType"], "application/spdx+json");
    std::string artifact = index["manifests"][0]["digest"];
    auto m = run_command("skopeo inspect --raw --tls-verify=false " + q(dest + "@" + artifact));
    ASSERT_EQ(m.exit_code, 0) << m.output;
    EXPECT_EQ(nlohmann::json::parse(m.output)["subject"]["digest"], *digest_);
  }
  // Pushing again keeps one entry under the referrers tag.
  auto again = run_build(dir_, push);
  EXPECT_EQ(again.exit_code, 0) << again.log;
  auto r2 = run_command("skopeo inspect --raw --tls-verify=false " + q(dest + ":" + tag));
  EXPECT_EQ(r2.exit_code, 0) << r2.output;
  if (r2.exit_code == 0) {
    EXPECT_EQ(nlohmann::json::parse(r2.output)["manifests"].size(), 1u);
  }
}

TEST_F(BuildImageTest, SbomListsEveryPackage) {
  auto doc = nlohmann::json::parse(read_text(sbom()));
  EXPECT_EQ(doc["spdxVersion"], "SPDX-2.3");
  EXPECT_EQ(doc["packages"].size(), 15u);
  bool openssl = false;
  for (const auto& p : doc["packages"]) {
    if (p["name"] != "openssl") continue;
    openssl = true;
    EXPECT_EQ(p["versionInfo"], "3.3.1");
    EXPECT_EQ(p["licenseDeclared"], "Apache-2.0");
    EXPECT_EQ(p["checksums"][0]["algorithm"], "SHA256");
    EXPECT_NE(p["externalRefs"][0]["referenceLocator"].get<std::string>().find(
                  "pkg:conda/openssl@3.3.1?build=h4ab18f5_1"),
              std::string::npos);
  }
  EXPECT_TRUE(openssl);
  EXPECT_EQ(doc["relationships"].size(), 15u);
}

// The SBOM is also an OCI 1.1 artifact in the layout: untagged in index.json, its subject the
// image, its one layer the same bytes as --sbom's file; the image stays readable by tag.
TEST_F(BuildImageTest, SbomIsAttachedAsAnArtifact) {
  auto layout = oci::Layout::open(img());
  ASSERT_TRUE(layout) << layout.error().to_string();
  auto digest = oci::Digest::parse(*digest_);
  ASSERT_TRUE(digest);
  auto referrers = layout->referrers(*digest);
  ASSERT_TRUE(referrers) << referrers.error().to_string();
  ASSERT_EQ(referrers->size(), 1u);
  const auto& artifact = referrers->front();
  EXPECT_EQ(artifact.artifact_type, "application/spdx+json");
  EXPECT_FALSE(artifact.annotations.count("org.opencontainers.image.ref.name"));
  auto m = oci::parse_manifest(read_text(layout->blobs().path_of(artifact.digest)));
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->artifact_type, "application/spdx+json");
  EXPECT_EQ(m->config.media_type, "application/vnd.oci.empty.v1+json");
  EXPECT_EQ(read_text(layout->blobs().path_of(m->config.digest)), "{}");
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].media_type, "application/spdx+json");
  EXPECT_EQ(read_text(layout->blobs().path_of(m->layers[0].digest)), read_text(sbom()));
  ASSERT_TRUE(m->subject);
  EXPECT_EQ(m->subject->digest, *digest);
  // An untagged lookup skips artifacts: the layout has one image.
  auto image = layout->image("");
  ASSERT_TRUE(image) << image.error().to_string();
  EXPECT_EQ((*image)->descriptor().digest, *digest);
  // Rebuilding into the same layout keeps one SBOM; a retagged image's stale one is dropped.
  fs::path copy = dir_ / "img-sbom";
  fs::copy(img(), copy, fs::copy_options::recursive);
  auto b = run_build(dir_, "-q -f " + q(environment_file()) + " -t envb/real:1 " + "--cache-dir " +
                               q(cache()) + " -o " + q("oci:" + copy.string() + ":1"));
  ASSERT_EQ(b.exit_code, 0) << b.log;  // no base: another image under the same tag
  auto index = oci::Layout::open(copy)->index();
  ASSERT_TRUE(index);
  size_t artifacts = 0;
  for (const auto& d : index->manifests) artifacts += !d.artifact_type.empty();
  EXPECT_EQ(artifacts, 1u);
  EXPECT_EQ(index->manifests.size(), 2u);
  // --no-sbom-artifact: the image alone.
  auto c = run_build(dir_, "-q -f " + q(environment_file()) + " -t envb/real:1 " + "--cache-dir " +
                               q(cache()) + " --no-sbom-artifact -o " +
                               q("oci:" + (dir_ / "img-nosbom").string() + ":1"));
  ASSERT_EQ(c.exit_code, 0) << c.log;
  EXPECT_EQ(oci::Layout::open(dir_ / "img-nosbom")->index()->manifests.size(), 1u);
}

TEST_F(BuildImageTest, PlanPrintsTheLayersWithinTheBudget) {
  auto b = run_build(dir_, "-f " + q(environment_file()) + " -t envb/real:1 --cache-dir " +
                               q(cache()) + " --plan --max-layers 6 --base " + q(base_ref()));
  ASSERT_EQ(b.exit_code, 0) << b.log;
  // 1 base layer + at most 4 package layers + the environment layer.
  EXPECT_NE(b.digest.find("15 packages in 5 layers (+1 base layers), budget 6"), std::string::npos)
      << b.digest;
  EXPECT_NE(b.digest.find("python-3.11"), std::string::npos) << b.digest;
}

// The same environment, built from scratch twice: fresh caches, different temp dirs, umask and
// clock (a second later) give the same manifest digest.
TEST_F(BuildImageTest, ReproducibleAcrossTempDirsUmaskAndClock) {
  std::string common = "-f " + q(environment_file()) + " -t envb/real:1 ";
  auto a = run_build(dir_,
                     common + "--cache-dir " + q(dir_ / "cache-a") + " -o " +
                         q("oci:" + (dir_ / "repro-a").string()),
                     "umask 022; TMPDIR=/tmp ");
  ASSERT_EQ(a.exit_code, 0) << a.log;
  ::sleep(1);  // not a wait for anything: the clock is an input, and b's must read another second
  fs::create_directories(dir_ / "tmp-b");
  auto b = run_build(dir_,
                     common + "--cache-dir " + q(dir_ / "cache-b") + " -j 1 -o " +
                         q("oci:" + (dir_ / "repro-b").string()),
                     "umask 077; TMPDIR=" + q(dir_ / "tmp-b") + " ");
  ASSERT_EQ(b.exit_code, 0) << b.log;
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_TRUE(a.digest.starts_with("sha256:")) << a.digest;
  // SOURCE_DATE_EPOCH moves every timestamp: a different, but again stable, digest.
  auto c = run_build(dir_,
                     common + "--cache-dir " + q(dir_ / "cache-a") + " -o " +
                         q("oci:" + (dir_ / "repro-c").string()),
                     "SOURCE_DATE_EPOCH=1700000000 ");
  ASSERT_EQ(c.exit_code, 0) << c.log;
  EXPECT_NE(c.digest, a.digest);
}

std::vector<std::string> layer_digests(const fs::path& layout_dir, const std::string& tag) {
  std::vector<std::string> out;
  auto layout = oci::Layout::open(layout_dir);
  if (!layout) return out;
  auto image = layout->image(tag);
  if (!image) return out;
  for (const auto& l : (*image)->manifest().layers) out.push_back(l.digest.to_string());
  return out;
}

// Changing one small package: only its layer and the top layer are new.
TEST_F(BuildImageTest, OneChangedPackageRebuildsOnlyItsLayer) {
  fs::path hello = dir_ / "hello-channel";
  ASSERT_EQ(make_hello_package(hello, "1.0"), "");
  ASSERT_EQ(make_hello_package(hello, "1.1"), "");
  fs::create_directories(hello / "noarch");
  auto idx = run_command(q(envbuild_bin()) + " index " + q(hello));
  ASSERT_EQ(idx.exit_code, 0) << idx.output;
  auto channels = *channels_;
  channels.push_back(hello);
  write_text(dir_ / "env-1.0.yml", environment_yml(channels, "  - envb-hello 1.0\n"));
  write_text(dir_ / "env-1.1.yml", environment_yml(channels, "  - envb-hello 1.1\n"));
  std::string common = "-t envb/hello:1 --cache-dir " + q(cache()) + " --base " + q(base_ref()) +
                       " -o " + q("oci:" + (dir_ / "hello-img").string());
  auto a = run_build(dir_, "-f " + q(dir_ / "env-1.0.yml") + " " + common + ":a");
  ASSERT_EQ(a.exit_code, 0) << a.log;
  auto b = run_build(dir_, "-f " + q(dir_ / "env-1.1.yml") + " " + common + ":b");
  ASSERT_EQ(b.exit_code, 0) << b.log;
  EXPECT_NE(b.log.find("(1 written, 15 reused, +1 base)"), std::string::npos) << b.log;
  // Only the changed package is patched and staged; the others' plans come from the plan cache.
  EXPECT_NE(b.log.find("16 packages (15 plans cached, 1 staged)"), std::string::npos) << b.log;
  auto la = layer_digests(dir_ / "hello-img", "a");
  auto lb = layer_digests(dir_ / "hello-img", "b");
  ASSERT_EQ(la.size(), 18u);
  ASSERT_EQ(lb.size(), 18u);
  size_t differ = 0;
  for (size_t i = 0; i < la.size(); ++i) differ += la[i] != lb[i];
  EXPECT_EQ(differ, 2u);
  EXPECT_NE(la.back(), lb.back());  // the environment layer
  // The package layers of the suite's image (same packages, prefix, base) are the same blobs.
  auto shared = layer_digests(img(), "1");
  std::set<std::string> in_a(la.begin(), la.end());
  size_t common_layers = 0;
  for (const auto& d : shared) common_layers += in_a.count(d);
  EXPECT_EQ(common_layers, 16u);  // base + 15 packages
}

// Damaged plan cache entries are planned again (and rewritten): the same image either way.
TEST_F(BuildImageTest, DamagedPlanCacheEntriesArePlannedAgain) {
  const std::string common = "-f " + q(environment_file()) + kSuiteImageFlags + " --cache-dir " +
                             q(cache()) + " --base " + q(base_ref()) + " -o " +
                             q("oci:" + (dir_ / "damaged-plans").string());
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(cache() / "plans")) {
    if (!e.is_regular_file()) continue;
    std::string text = read_text(e.path());
    ASSERT_GT(text.size(), 20u);
    // Every other entry truncated, the others with a byte changed in their body.
    if (entries++ % 2 == 0) {
      text.resize(text.size() / 2);
    } else {
      text[text.size() - 3] ^= 1;
    }
    write_text(e.path(), text);
  }
  ASSERT_GE(entries, 15u);
  auto damaged = run_build(dir_, common);
  ASSERT_EQ(damaged.exit_code, 0) << damaged.log;
  EXPECT_EQ(damaged.digest, *digest_);
  EXPECT_NE(damaged.log.find("(0 plans cached, 15 staged)"), std::string::npos) << damaged.log;
  EXPECT_NE(damaged.log.find("(0 written, 15 reused, +1 base)"), std::string::npos) << damaged.log;
  auto again = run_build(dir_, common);
  ASSERT_EQ(again.exit_code, 0) << again.log;
  EXPECT_EQ(again.digest, *digest_);
  EXPECT_NE(again.log.find("(15 plans cached, 0 staged)"), std::string::npos) << again.log;
}

bool has_blob(const fs::path& store_root, const std::string& digest) {
  return fs::exists(store_root / "blobs/sha256" / digest.substr(7));
}

// The CI cache: --cache-to pushes every blob of the image and the package layers' keys; a build
// elsewhere (fresh caches) with --cache-from builds no package layer, and its push to the same
// registry uploads no blob (all mounted from the cache repository) nor downloads the cached
// layers; a local output downloads them (verified) instead of building them. Same digest each
// time.
TEST_F(BuildImageTest, RegistryLayerCacheSkipsBuildingAndUploading) {
  ENVB_REQUIRE_TOOL("docker-registry");
  ENVB_REQUIRE_TOOL("skopeo");
  testing::RegistryServer registry(dir_ / "ci-registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const std::string cache = "docker://" + registry.host() + "/envb/cache";
  const std::string common = "-f " + q(environment_file()) + kSuiteImageFlags + " --base " +
                             q(base_ref()) + " --tls-verify=false ";

  auto a = run_build(dir_, common + "--cache-dir " + q(dir_ / "ci-a") + " --cache-to " + q(cache) +
                               " -o " + q("oci:" + (dir_ / "ci-a-img").string()));
  ASSERT_EQ(a.exit_code, 0) << a.log;
  EXPECT_EQ(a.digest, *digest_);
  EXPECT_NE(a.log.find("envbuild-cache: 15 layers, 18 blobs; pushed 19 blobs (19 uploaded"),
            std::string::npos)
      << a.log;  // + the empty config of the cache manifest

  auto b =
      run_build(dir_, common + "--cache-dir " + q(dir_ / "ci-b") + " --cache-from " + q(cache) +
                          " -o " + q("docker://" + registry.host() + "/envb/app:1"));
  ASSERT_EQ(b.exit_code, 0) << b.log;
  EXPECT_EQ(b.digest, *digest_);
  EXPECT_NE(b.log.find("(0 written, 15 reused (15 from the registry), +1 base)"), std::string::npos)
      << b.log;
  EXPECT_NE(b.log.find("18 blobs (0 uploaded, 18 mounted, 0 already there)"), std::string::npos)
      << b.log;
  EXPECT_NE(b.log.find("(1 PUT, 0 PATCH, 18 POST)"), std::string::npos) << b.log;
  auto layers = layer_digests(dir_ / "ci-a-img", "1");
  ASSERT_EQ(layers.size(), 17u);
  for (size_t i = 1; i + 1 < layers.size(); ++i)  // the package layers were never downloaded
    EXPECT_FALSE(has_blob(dir_ / "ci-b/oci", layers[i])) << layers[i];
  auto s = run_command("skopeo inspect --tls-verify=false " +
                       q("docker://" + registry.host() + "/envb/app:1"));
  EXPECT_EQ(s.exit_code, 0) << s.output;
  EXPECT_NE(s.output.find(*digest_), std::string::npos) << s.output;

  auto c = run_build(dir_, common + "--cache-dir " + q(dir_ / "ci-c") + " --cache-from " +
                               q(cache) + " -o " + q("oci:" + (dir_ / "ci-c-img").string()));
  ASSERT_EQ(c.exit_code, 0) << c.log;
  EXPECT_EQ(c.digest, *digest_);
  EXPECT_NE(c.log.find("(0 written, 15 reused (15 from the registry), +1 base)"), std::string::npos)
      << c.log;
  auto layout = oci::Layout::open(dir_ / "ci-c-img");
  ASSERT_TRUE(layout) << layout.error().to_string();
  auto image = layout->image("1");
  ASSERT_TRUE(image) << image.error().to_string();
  auto valid = oci::validate(**image);
  EXPECT_TRUE(valid) << valid.error().to_string();
}

// --base docker://: the base image pushed by skopeo is pulled (verified) into the cache's store;
// the image is the same as with the base from the layout.
TEST_F(BuildImageTest, BaseFromARegistry) {
  ENVB_REQUIRE_TOOL("docker-registry");
  ENVB_REQUIRE_TOOL("skopeo");
  testing::RegistryServer registry(dir_ / "base-registry");
  ASSERT_TRUE(registry.start()) << registry.log();
  const std::string base = "docker://" + registry.host() + "/envb/base:1";
  auto pushed = run_command("skopeo copy --dest-tls-verify=false " + q(base_ref()) + " " + q(base));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  // The suite's cache holds the base's blobs (copied from the layout): drop them, so they must
  // come from the registry.
  auto base_layers = layer_digests(base_layout(), "base");
  ASSERT_EQ(base_layers.size(), 1u);
  auto base_image = oci::Layout::open(base_layout())->image("base");
  ASSERT_TRUE(base_image);
  const std::string base_config = (*base_image)->manifest().config.digest.to_string();
  fs::remove(cache() / "oci/blobs/sha256" / base_layers[0].substr(7));
  fs::remove(cache() / "oci/blobs/sha256" / base_config.substr(7));
  auto b =
      run_build(dir_, "-f " + q(environment_file()) + kSuiteImageFlags +
                          " --tls-verify=false --cache-dir " + q(cache()) + " --base " + q(base) +
                          " -o " + q("oci:" + (dir_ / "from-registry-base").string()));
  ASSERT_EQ(b.exit_code, 0) << b.log;
  EXPECT_EQ(b.digest, *digest_);
  EXPECT_NE(b.log.find("2 blobs downloaded, 0 cached"), std::string::npos) << b.log;
  EXPECT_TRUE(has_blob(cache() / "oci", base_layers[0]));
  EXPECT_TRUE(has_blob(cache() / "oci", base_config));
  // A tag that is not there is an error that names it.
  auto missing = run_build(
      dir_, "-f " + q(environment_file()) + " -t envb/real:1 --tls-verify=false --cache-dir " +
                q(cache()) + " --base " + q("docker://" + registry.host() + "/envb/base:nope") +
                " -o " + q("oci:" + (dir_ / "nope").string()));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.log.find("pulling base"), std::string::npos) << missing.log;
}

// A package NAME-1.0-0 for `subdir` (noarch: generic when "noarch") holding share/NAME/what.txt.
std::string make_subdir_package(const fs::path& channel, const std::string& subdir,
                                const std::string& name) {
  fs::path src = channel / ("src-" + subdir + "-" + name);
  std::string text = name + " for " + subdir + "\n";
  write_text(src / ("share/" + name + "/what.txt"), text);
  nlohmann::json index = {{"name", name},
                          {"version", "1.0"},
                          {"build", "0"},
                          {"build_number", 0},
                          {"depends", nlohmann::json::array()},
                          {"license", "MIT"},
                          {"subdir", subdir},
                          {"timestamp", 1700000000000}};
  if (subdir == "noarch") index["noarch"] = "generic";
  write_text(src / "info/index.json", index.dump());
  std::string sha =
      run_command("sha256sum " + q(src / "share" / name / "what.txt")).output.substr(0, 64);
  write_text(src / "info/paths.json", nlohmann::json{{"paths_version", 1},
                                                     {"paths",
                                                      {{{"_path", "share/" + name + "/what.txt"},
                                                        {"path_type", "hardlink"},
                                                        {"sha256", sha},
                                                        {"size_in_bytes", text.size()}}}}}
                                          .dump());
  write_text(src / "info/files", "share/" + name + "/what.txt\n");
  fs::create_directories(channel / subdir);
  fs::path out = channel / subdir / (name + "-1.0-0.tar.bz2");
  auto r = run_command("cd " + q(src) +
                       " && python3 -c \"import tarfile,sys\n"
                       "with tarfile.open(sys.argv[1],'w:bz2') as t:\n"
                       "  [t.add(p) for p in ['info','share']]\" " +
                       q(out));
  return r.exit_code == 0 ? "" : r.output;
}

// --platform linux-64,linux-aarch64: each platform solved on its own, one image index with a
// manifest per platform (no emulation: the packages are files), each with its SBOM attached.
class MultiPlatformBuild : public testing::TempDirTest {};

TEST_F(MultiPlatformBuild, OneIndexWithAManifestPerPlatform) {
  ENVB_REQUIRE_TOOL("skopeo");
  struct {
    fs::path dir;
    const fs::path& path() const { return dir; }
  } tmp{dir_};
  fs::path channel = tmp.path() / "channel";
  for (const char* subdir : {"linux-64", "linux-aarch64"})
    ASSERT_EQ(make_subdir_package(channel, subdir, "envb-native"), "");
  ASSERT_EQ(make_subdir_package(channel, "noarch", "envb-data"), "");
  auto idx = run_command(q(envbuild_bin()) + " index " + q(channel));
  ASSERT_EQ(idx.exit_code, 0) << idx.output;
  write_text(tmp.path() / "environment.yml",
             "name: multi\nchannels:\n  - " + channel.string() +
                 "\ndependencies:\n  - envb-native\n  - envb-data\n");
  std::string args = "-f " + q(tmp.path() / "environment.yml") + " -t envb/multi:2 --cache-dir " +
                     q(tmp.path() / "cache") + " --platform linux-64,linux-aarch64 ";
  auto b = run_build(tmp.path(), args + "-o " + q("oci:" + (tmp.path() / "img").string()) + " -o " +
                                     q("oci-archive:" + (tmp.path() / "img.tar").string()));
  ASSERT_EQ(b.exit_code, 0) << b.log;
  auto layout = oci::Layout::open(tmp.path() / "img");
  ASSERT_TRUE(layout);
  auto top = layout->index();
  ASSERT_TRUE(top);
  ASSERT_EQ(top->manifests.size(), 3u);  // the index (tag 2) and two SBOMs
  EXPECT_EQ(top->manifests[0].media_type, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(top->manifests[0].digest.to_string(), b.digest);
  auto index = oci::parse_index(read_text(layout->blobs().path_of(top->manifests[0].digest)));
  ASSERT_TRUE(index);
  ASSERT_EQ(index->manifests.size(), 2u);
  std::vector<std::string> platforms;
  for (const auto& m : index->manifests) {
    ASSERT_TRUE(m.platform);
    platforms.push_back(m.platform->to_string());
    auto image = oci::open_store_image(layout->blobs(), m);
    ASSERT_TRUE(image) << image.error().to_string();
    EXPECT_TRUE(oci::validate(**image));
    EXPECT_EQ((*image)->config().platform().to_string(), m.platform->to_string());
    auto referrers = layout->referrers(m.digest);
    ASSERT_TRUE(referrers);
    EXPECT_EQ(referrers->size(), 1u);
  }
  EXPECT_EQ(platforms, (std::vector<std::string>{"linux/amd64", "linux/arm64/v8"}));
  // The foreign platform's own package is in its image (a layer per package + the top layer).
  auto arm = oci::open_store_image(layout->blobs(), index->manifests[1]);
  ASSERT_TRUE(arm);
  EXPECT_EQ((*arm)->manifest().layers.size(), 3u);
  EXPECT_NE((*arm)->config().config.labels.at("org.envbuild.lock").find("/linux-aarch64/"),
            std::string::npos);
  auto s = run_command("skopeo inspect --override-arch arm64 --override-variant v8 " +
                       q("oci:" + (tmp.path() / "img").string() + ":2"));
  EXPECT_EQ(s.exit_code, 0) << s.output;
  EXPECT_NE(s.output.find("\"Architecture\": \"arm64\""), std::string::npos) << s.output;
  auto a = run_command("skopeo inspect --override-arch amd64 " +
                       q("oci-archive:" + (tmp.path() / "img.tar").string() + ":2"));
  EXPECT_EQ(a.exit_code, 0) << a.output;
  // Same inputs, same index; a docker-archive cannot hold several platforms.
  auto again = run_build(tmp.path(), args + "-q -o " + q("oci:" + (tmp.path() / "img2").string()));
  ASSERT_EQ(again.exit_code, 0) << again.log;
  EXPECT_EQ(again.digest, b.digest);
  auto d = run_build(tmp.path(),
                     args + "-q -o " + q("docker-archive:" + (tmp.path() / "d.tar").string()));
  EXPECT_NE(d.exit_code, 0);
  EXPECT_NE(d.log.find("one platform"), std::string::npos) << d.log;
}

TEST(ImageBuildHelpers, VirtualRequirementsAreDedupedAndSorted) {
  std::vector<conda::PackageRecord> records(3);
  records[0].depends = {"__glibc >=2.17,<3.0.a0", "libgcc >=12"};
  records[1].depends = {"__cuda >=12.0", "__glibc >=2.17,<3.0.a0"};
  records[2].depends = {"__cuda_arch >=8.0", "__unix"};
  EXPECT_EQ(virtual_requirements(records),
            "__cuda >=12.0;__cuda_arch >=8.0;__glibc >=2.17,<3.0.a0;__unix");
  EXPECT_EQ(virtual_requirements({}), "");
}

TEST(ImageBuildHelpers, PlatformsAndLock) {
  auto amd = oci_platform_for_subdir("linux-64");
  ASSERT_TRUE(amd);
  EXPECT_EQ(amd->to_string(), "linux/amd64");
  auto arm = oci_platform_for_subdir("linux-aarch64");
  ASSERT_TRUE(arm);
  EXPECT_EQ(arm->to_string(), "linux/arm64/v8");
  EXPECT_FALSE(oci_platform_for_subdir("osx-arm64"));
  conda::PackageRecord r;
  r.url = "https://conda.anaconda.org/conda-forge/linux-64/xz-5.2.6-h166bdaf_0.tar.bz2";
  r.sha256 = std::string(64, 'a');
  EXPECT_EQ(compact_explicit_lock({r}, "linux-64"),
            "# platform: linux-64\n@EXPLICIT\n" + r.url + "#sha256:" + r.sha256 + "\n");
}

TEST(Sbom, LicenseExpressionsAndPurls) {
  EXPECT_TRUE(looks_like_spdx_expression("MIT"));
  EXPECT_TRUE(looks_like_spdx_expression("GPL-2.0-or-later AND (LGPL-2.1-only OR MIT)"));
  EXPECT_TRUE(looks_like_spdx_expression("Apache-2.0 WITH LLVM-exception"));
  EXPECT_FALSE(looks_like_spdx_expression("MIT License"));
  EXPECT_FALSE(looks_like_spdx_expression("BSD 3-Clause"));
  EXPECT_FALSE(looks_like_spdx_expression(""));
  EXPECT_FALSE(looks_like_spdx_expression("(MIT"));
  conda::PackageRecord r;
  r.name = "libzlib";
  r.version = *conda::Version::parse("1.3.1");
  r.build = "h4ab18f5_1";
  r.subdir = "linux-64";
  r.url = "https://conda.anaconda.org/conda-forge/linux-64/libzlib-1.3.1-h4ab18f5_1.conda";
  EXPECT_EQ(conda_purl(r),
            "pkg:conda/libzlib@1.3.1?build=h4ab18f5_1&channel=https%3A%2F%2Fconda.anaconda.org%"
            "2Fconda-forge&subdir=linux-64&type=conda");
  r.license = "Zlib";
  auto a = spdx_sbom({r}, {"x:1", "1970-01-01T00:00:00Z", ""});
  EXPECT_EQ(a, spdx_sbom({r}, {"x:1", "1970-01-01T00:00:00Z", ""}));
  EXPECT_NE(a.find("\"licenseDeclared\": \"Zlib\""), std::string::npos);
}

}  // namespace
}  // namespace envbuild::builder
