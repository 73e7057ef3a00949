// Images written by oci/ checked with the real tools: oci-image-tool, umoci, skopeo, runc, podman,
// chroot. A test whose tool is missing says SKIPPED. Flags follow docs tooling.md sections 3-4.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "common/fs.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"
#include "oci/mutate.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::shell_quote;
using testing::write_text;

using testing::q;

class ToolsIntegrationTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "/bin/busybox (busybox-static) is missing";
  }

  /// A busybox base layer + an app layer + a layer that deletes a file, as tag `tag`.
  Descriptor build(const fs::path& layout_dir, const std::string& tag, Compression c) {
    auto layout = Layout::create(layout_dir);
    EXPECT_TRUE(layout) << layout.error().to_string();
    LayerOptions options;
    options.compression = c;
    options.mtime = 1;
    write_text(dir_ / "passwd", "root:x:0:0:root:/root:/bin/sh\n");
    std::vector<LayerEntry> base = {LayerEntry::file("bin/busybox", "/bin/busybox"),
                                    LayerEntry::file("etc/passwd", dir_ / "passwd"),
                                    LayerEntry::directory("tmp"), LayerEntry::directory("root")};
    base[2].mode = 01777;
    for (const char* applet : {"sh", "echo", "ls", "cat"})
      base.push_back(LayerEntry::symlink(std::string("bin/") + applet, "busybox"));
    write_text(dir_ / "hello", "hello from envbuild (" + std::string(to_string(c)) + ")\n");
    write_text(dir_ / "junk", "to be deleted\n");
    std::vector<LayerEntry> app = {LayerEntry::file("opt/app/hello.txt", dir_ / "hello"),
                                   LayerEntry::file("opt/app/junk", dir_ / "junk")};
    std::vector<LayerEntry> cleanup = {LayerEntry::whiteout("opt/app/junk")};
    std::vector<AppendedLayer> layers;
    for (auto* entries : {&base, &app, &cleanup}) {
      auto info = write_layer(*entries, options, layout->blobs());
      EXPECT_TRUE(info) << info.error().to_string();
      layers.push_back({*info, History{"1970-01-01T00:00:01Z", "envbuild test", "", "", false}});
    }
    ConfigChanges changes;
    changes.env = {{"PATH", "/bin"}};
    changes.cmd = std::vector<std::string>{"/bin/sh"};
    changes.created = "1970-01-01T00:00:01Z";
    changes.labels["org.example"] = "yes";
    auto desc =
        build_image(Platform{"amd64", "linux", "", "", {}}, layers, changes, layout->blobs());
    EXPECT_TRUE(desc) << desc.error().to_string();
    EXPECT_TRUE(layout->add(*desc, tag));
    auto image = layout->image(tag);
    EXPECT_TRUE(image) << image.error().to_string();
    auto valid = validate(**image);
    EXPECT_TRUE(valid) << valid.error().to_string();
    return *desc;
  }

  void expect_ok(const std::string& cmd, const std::string& want_in_output = "") {
    auto r = run_command(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
    if (!want_in_output.empty()) {
      EXPECT_NE(r.output.find(want_in_output), std::string::npos) << cmd << "\n" << r.output;
    }
  }
};

TEST_F(ToolsIntegrationTest, GzipImageValidatesUnpacksAndRuns) {
  ENVB_REQUIRE_TOOL("oci-image-tool");
  ENVB_REQUIRE_TOOL("umoci");
  fs::path img = dir_ / "img";
  build(img, "v1", Compression::Gzip);
  expect_ok("oci-image-tool validate --type image --ref name=v1 " + q(img), "Validation succeeded");
  fs::path bundle = dir_ / "bundle";
  expect_ok("umoci unpack --rootless --image " + q(img) + ":v1 " + q(bundle));
  EXPECT_FALSE(fs::exists(bundle / "rootfs/opt/app/junk"));
  expect_ok("cat " + q(bundle / "rootfs/opt/app/hello.txt"), "hello from envbuild (gzip)");
  expect_ok("chroot " + q(bundle / "rootfs") + " /bin/busybox echo hi", "hi");
  expect_ok("chroot " + q(bundle / "rootfs") + " /bin/sh -c 'cat /opt/app/hello.txt'", "envbuild");

  // The rootless bundle runs in a user namespace of its own. A host that refuses them (a chroot,
  // a locked-down container) can still run it as root without one; otherwise runc cannot run
  // here, and the test says SKIPPED rather than passing without it.
  ENVB_REQUIRE_TOOL("runc");
  ENVB_REQUIRE_TOOL("python3");
  const bool user_namespaces = run_command("unshare --user true 2>/dev/null").exit_code == 0;
  if (!user_namespaces && ::geteuid() != 0)
    GTEST_SKIP() << "runc: this host refuses user namespaces and the test does not run as root";
  // runc needs a non-terminal process and our command; as root without user namespaces, the
  // bundle loses its user namespace and ID mappings.
  const std::string patch =
      "import json, sys\n"
      "path, mode = sys.argv[1:]\n"
      "c = json.load(open(path))\n"
      "c['process']['terminal'] = False\n"
      "c['process']['args'] = ['/bin/busybox', 'echo', 'hi-runc']\n"
      "if mode == 'rootful':\n"
      "  linux = c['linux']\n"
      "  linux['namespaces'] = [n for n in linux['namespaces'] if n['type'] != 'user']\n"
      "  linux.pop('uidMappings', None)\n"
      "  linux.pop('gidMappings', None)\n"
      "json.dump(c, open(path, 'w'))\n";
  expect_ok("python3 -c " + shell_quote(patch) + " " + q(bundle / "config.json") +
            (user_namespaces ? " rootless" : " rootful"));
  std::string id = "envbuild-test-" + std::to_string(::getpid());
  expect_ok("runc run --bundle " + q(bundle) + " " + id + " </dev/null", "hi-runc");
}

TEST_F(ToolsIntegrationTest, SkopeoReadsGzipAndZstdAndCopiesToDockerArchive) {
  ENVB_REQUIRE_TOOL("skopeo");
  fs::path img = dir_ / "img";
  Descriptor gz = build(img, "gz", Compression::Gzip);
  Descriptor zst = build(img, "zst", Compression::Zstd);
  // Several tags in one layout, and re-adding a tag replaces it.
  Descriptor again = build(img, "gz", Compression::Gzip);
  EXPECT_EQ(gz.digest, again.digest);
  auto tags = Layout::open(img)->tags();
  ASSERT_TRUE(tags);
  EXPECT_EQ(*tags, (std::vector<std::string>{"zst", "gz"}));

  expect_ok("skopeo inspect oci:" + img.string() + ":gz", gz.digest.to_string());
  expect_ok("skopeo inspect oci:" + img.string() + ":zst", zst.digest.to_string());
  expect_ok("skopeo inspect --config oci:" + img.string() + ":zst", "PATH=/bin");
  fs::path archive = dir_ / "copied.tar";
  expect_ok("skopeo copy oci:" + img.string() + ":gz docker-archive:" + archive.string() +
            ":feas/busybox:v1");
  // Our reader opens what skopeo wrote.
  auto image = open_image(*ImageReference::parse("docker-archive:" + archive.string()),
                          OpenOptions{dir_, std::nullopt});
  ASSERT_TRUE(image) << image.error().to_string();
  EXPECT_TRUE(validate(**image));
  EXPECT_EQ((*image)->config().config.env, std::vector<std::string>{"PATH=/bin"});
}

TEST_F(ToolsIntegrationTest, DockerArchiveLoadsWithSkopeoAndPodman) {
  ENVB_REQUIRE_TOOL("skopeo");
  fs::path img = dir_ / "img";
  Descriptor desc = build(img, "v1", Compression::Gzip);
  auto image = Layout::open(img)->image("v1");
  ASSERT_TRUE(image);
  fs::path archive = dir_ / "docker.tar";
  auto written = write_docker_archive(**image, {"envbuild/busybox:v1"}, archive);
  ASSERT_TRUE(written) << written.error().to_string();
  // Deterministic: the same image gives the same archive bytes.
  ASSERT_TRUE(write_docker_archive(**image, {"envbuild/busybox:v1"}, dir_ / "docker2.tar"));
  EXPECT_EQ(common::sha256_file(archive.string()).value(),
            common::sha256_file((dir_ / "docker2.tar").string()).value());

  expect_ok("skopeo inspect docker-archive:" + archive.string(), "PATH=/bin");
  // Round trip through our reader keeps the manifest digest (index.json is reused).
  auto back = open_image(
      *ImageReference::parse("docker-archive:" + archive.string() + ":envbuild/busybox:v1"),
      OpenOptions{dir_, std::nullopt});
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ((*back)->descriptor().digest, desc.digest);
  EXPECT_TRUE(validate(**back));

  if (!testing::have_tool("podman") || !testing::have_tool("runc")) GTEST_SKIP() << "no podman";
  // podman refuses a runroot longer than 50 characters.
  auto runroot = common::TempDir::create("/tmp", "envb-pr-");
  ASSERT_TRUE(runroot);
  std::string p = "podman --root " + q(dir_ / "podman/root") + " --runroot " + q(runroot->path()) +
                  " --storage-driver vfs --runtime runc";
  std::string u = " --ulimit nofile=1024:1024 --ulimit nproc=1024:1024";
  expect_ok(p + " load -i " + q(archive), "envbuild/busybox:v1");
  expect_ok(p + " run --rm" + u + " envbuild/busybox:v1 /bin/busybox cat /opt/app/hello.txt",
            "hello from envbuild");
  run_command(p + " rmi -a -f >/dev/null 2>&1");
}

TEST_F(ToolsIntegrationTest, OciArchiveAndAppendKeepBaseLayers) {
  ENVB_REQUIRE_TOOL("skopeo");
  ENVB_REQUIRE_TOOL("oci-image-tool");
  ENVB_REQUIRE_TOOL("umoci");
  fs::path img = dir_ / "img";
  build(img, "base", Compression::Gzip);
  fs::path archive = dir_ / "base.oci.tar";
  ASSERT_TRUE(write_oci_archive(img, archive));
  ASSERT_TRUE(write_oci_archive(img, dir_ / "again.tar"));
  EXPECT_EQ(common::sha256_file(archive.string()).value(),
            common::sha256_file((dir_ / "again.tar").string()).value());
  expect_ok("skopeo inspect oci-archive:" + archive.string() + ":base", "PATH=/bin");

  auto base = open_image(*ImageReference::parse("oci-archive:" + archive.string() + ":base"),
                         OpenOptions{dir_, std::nullopt});
  ASSERT_TRUE(base) << base.error().to_string();
  fs::path out = dir_ / "derived";
  auto layout = Layout::create(out);
  ASSERT_TRUE(layout);
  write_text(dir_ / "extra", "extra layer\n");
  auto layer = write_layer({LayerEntry::file("opt/extra", dir_ / "extra")}, {}, layout->blobs());
  ASSERT_TRUE(layer);
  ConfigChanges changes;
  changes.env = {{"PATH", "/opt:/bin"}, {"LANG", "C.UTF-8"}};
  changes.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  auto desc = append_layers(**base, {{*layer, History{"", "add extra", "", "", false}}}, changes,
                            layout->blobs());
  ASSERT_TRUE(desc) << desc.error().to_string();
  ASSERT_TRUE(layout->add(*desc, "derived"));
  auto derived = layout->image("derived");
  ASSERT_TRUE(derived);
  ASSERT_TRUE(validate(**derived));
  const auto& base_layers = (*base)->manifest().layers;
  const auto& layers = (*derived)->manifest().layers;
  ASSERT_EQ(layers.size(), base_layers.size() + 1);
  for (size_t i = 0; i < base_layers.size(); ++i)
    EXPECT_EQ(layers[i].digest, base_layers[i].digest);
  EXPECT_EQ((*derived)->config().config.env,
            (std::vector<std::string>{"PATH=/opt:/bin", "LANG=C.UTF-8"}));
  EXPECT_EQ((*derived)->config().history.size(), 4u);
  expect_ok("oci-image-tool validate --type image --ref name=derived " + q(out));
  expect_ok("umoci unpack --rootless --image " + q(out) + ":derived " + q(dir_ / "b"));
  expect_ok("chroot " + q(dir_ / "b/rootfs") + " /bin/busybox cat /opt/extra", "extra layer");
}

}  // namespace
}  // namespace envbuild::oci
