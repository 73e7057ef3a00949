// Integration tests of push and pull against a real docker-registry (distribution 2.8) started
// on 127.0.0.1 by each test, cross-checked with skopeo.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/archive.hpp"
#include "oci/image.hpp"
#include "oci/layout.hpp"
#include "oci/mutate.hpp"
#include "oci/registry/client.hpp"
#include "oci/registry/copy.hpp"
#include "tests/testing/fault_proxy.hpp"
#include "tests/testing/registry_server.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci::registry {
namespace {

namespace fs = std::filesystem;
using envbuild::testing::RegistryServer;
using envbuild::testing::run_command;
using envbuild::testing::shell_quote;
using envbuild::testing::write_text;

// Incompressible, reproducible bytes.
std::string random_bytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x & 0xff);
  }
  return out;
}

Platform linux_amd64() {
  Platform p;
  p.os = "linux";
  p.architecture = "amd64";
  return p;
}

/// Builds an image with one layer per entry of `sizes` (a random file of that size each) into an
/// OCI layout at `dir`, tagged v1.
std::unique_ptr<Image> make_image(const fs::path& dir, const std::vector<size_t>& sizes,
                                  uint64_t seed, Compression compression = Compression::Gzip) {
  auto layout = Layout::create(dir / "layout");
  EXPECT_TRUE(layout) << layout.error().to_string();
  std::vector<AppendedLayer> layers;
  for (size_t i = 0; i < sizes.size(); ++i) {
    fs::path tree = dir / ("tree" + std::to_string(i));
    write_text(tree / "data" / ("blob" + std::to_string(i) + ".bin"),
               random_bytes(sizes[i], seed + i));
    write_text(tree / "etc" / ("note" + std::to_string(i)), "layer " + std::to_string(i) + "\n");
    auto entries = entries_from_tree(tree);
    EXPECT_TRUE(entries);
    LayerOptions options;
    options.compression = compression;
    auto info = write_layer(*entries, options, layout->blobs());
    EXPECT_TRUE(info) << info.error().to_string();
    AppendedLayer l;
    l.layer = *info;
    l.history.created_by = "layer " + std::to_string(i);
    layers.push_back(l);
  }
  ConfigChanges changes;
  changes.cmd = std::vector<std::string>{"/bin/sh"};
  auto desc = build_image(linux_amd64(), layers, changes, layout->blobs());
  EXPECT_TRUE(desc) << desc.error().to_string();
  EXPECT_TRUE(layout->add(*desc, "v1"));
  auto image = layout->image("v1");
  EXPECT_TRUE(image) << image.error().to_string();
  return std::move(*image);
}

RegistryOptions insecure() {
  RegistryOptions o;
  o.transport.tls.verify = false;
  o.lookup_stored_credentials = false;
  o.transport.initial_backoff = std::chrono::milliseconds(50);
  return o;
}

ImageReference parse_ref(const std::string& text) {
  auto r = ImageReference::parse(text);
  EXPECT_TRUE(r) << r.error().to_string();
  return *r;
}

std::string skopeo_digest(const std::string& docker_ref, const std::string& extra = "") {
  auto r =
      run_command("skopeo inspect --tls-verify=false " + extra + " " + shell_quote(docker_ref));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  return j.is_object() ? j.value("Digest", std::string()) : std::string();
}

class RegistryTest : public envbuild::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    if (!envbuild::testing::have_tool("docker-registry"))
      GTEST_SKIP() << "'docker-registry' is not installed (run scripts/bootstrap)";
    if (!envbuild::testing::have_tool("skopeo"))
      GTEST_SKIP() << "'skopeo' is not installed (run scripts/bootstrap)";
  }
  void start(std::string auth_yaml = "", std::string http_yaml = "") {
    registry_ = std::make_unique<RegistryServer>(dir_ / "registry", std::move(auth_yaml),
                                                 std::move(http_yaml));
    ASSERT_TRUE(registry_->start()) << registry_->log();
  }
  std::string docker(const std::string& repo_tag) const {
    return "docker://" + registry_->host() + "/" + repo_tag;
  }
  std::unique_ptr<RegistryServer> registry_;
};

TEST_F(RegistryTest, PushIsReadBySkopeoAndSecondPushUploadsNothing) {
  ENVB_REQUIRE_TOOL("docker-registry");
  start();
  auto image = make_image(dir_ / "src", {300'000, 20'000, 1'000}, 1);
  auto first = push(*image, parse_ref(docker("team/app:v1")), insecure());
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_EQ(first->blobs, 4u);  // config + 3 layers
  EXPECT_EQ(first->uploaded, 4u);
  EXPECT_EQ(first->manifest.digest, image->descriptor().digest);

  EXPECT_EQ(skopeo_digest(docker("team/app:v1")), image->descriptor().digest.to_string());
  auto copied =
      run_command("skopeo copy --src-tls-verify=false " + shell_quote(docker("team/app:v1")) +
                  " oci:" + shell_quote((dir_ / "skopeo-out").string()) + ":x");
  ASSERT_EQ(copied.exit_code, 0) << copied.output;
  auto back = Layout::open(dir_ / "skopeo-out");
  ASSERT_TRUE(back);
  auto back_image = back->image("x");
  ASSERT_TRUE(back_image) << back_image.error().to_string();
  EXPECT_EQ((*back_image)->descriptor().digest, image->descriptor().digest);
  EXPECT_TRUE(validate(**back_image));

  // Given the same image again, every blob is found by HEAD: no POST, PATCH, and only the
  // manifest PUT.
  auto second = push(*image, parse_ref(docker("team/app:v1")), insecure());
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(second->uploaded, 0u);
  EXPECT_EQ(second->existed, 4u);
  EXPECT_EQ(second->blob_bytes, 0u);
  EXPECT_EQ(second->post_requests, 0u);
  EXPECT_EQ(second->patch_requests, 0u);
  EXPECT_EQ(second->put_requests, 1u);
  std::printf("first push: %llu requests, %llu ms; no-op push: %llu requests, %llu ms\n",
              (unsigned long long)first->requests, (unsigned long long)first->elapsed.count(),
              (unsigned long long)second->requests, (unsigned long long)second->elapsed.count());
}

TEST_F(RegistryTest, PullsImagePushedBySkopeoWithDigestsVerified) {
  start();
  auto image = make_image(dir_ / "src", {200'000, 5'000}, 2);
  auto pushed = run_command(
      "skopeo copy --dest-tls-verify=false oci:" + shell_quote((dir_ / "src" / "layout").string()) +
      ":v1 " + shell_quote(docker("lib/base:1")));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  std::string remote_digest = skopeo_digest(docker("lib/base:1"));

  CopyOptions options;
  options.registry = insecure();
  options.scratch_dir = dir_;
  auto pulled = copy_image(parse_ref(docker("lib/base:1")),
                           parse_ref("oci:" + (dir_ / "pulled").string() + ":one"), options);
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest.digest.to_string(), remote_digest);
  EXPECT_EQ(pulled->uploaded, 3u);
  auto layout = Layout::open(dir_ / "pulled");
  ASSERT_TRUE(layout);
  auto got = layout->image("one");
  ASSERT_TRUE(got) << got.error().to_string();
  auto valid = validate(**got);
  EXPECT_TRUE(valid) << valid.error().to_string();
  EXPECT_EQ((*got)->descriptor().platform->to_string(), "linux/amd64");

  // Pulling again (by digest) finds every blob in the store.
  auto again = pull(parse_ref(docker("lib/base@" + remote_digest)), std::nullopt, layout->blobs(),
                    insecure());
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->uploaded, 0u);
  EXPECT_EQ(again->existed, 3u);

  // A docker-archive destination loads back with the same layers.
  auto archived =
      copy_image(parse_ref(docker("lib/base:1")),
                 parse_ref("docker-archive:" + (dir_ / "x.tar").string() + ":lib/base:1"), options);
  ASSERT_TRUE(archived) << archived.error().to_string();
  auto inspect =
      run_command("skopeo inspect docker-archive:" + shell_quote((dir_ / "x.tar").string()));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
}

// Given an image in an oci: layout, expect copy_image() (write_image() underneath) to write it
// to an oci-archive:, a docker-archive: and another layout without a registry, each read back by
// skopeo with the same manifest digest (the docker-archive's own manifest aside), named and
// tagged as the source where the destination says nothing.
TEST_F(RegistryTest, LocalToLocalCopiesGoThroughTheOneWriter) {
  auto image = make_image(dir_ / "src", {20'000, 1'000}, 21);
  const std::string digest = image->descriptor().digest.to_string();
  CopyOptions options;
  options.scratch_dir = dir_;
  const ImageReference src = parse_ref("oci:" + (dir_ / "src/layout").string() + ":v1");
  auto skopeo = [&](const std::string& ref) {
    return run_command("skopeo inspect --raw " + shell_quote(ref));
  };
  ASSERT_TRUE(copy_image(src, parse_ref("oci-archive:" + (dir_ / "a.tar").string()), options));
  auto archive = skopeo("oci-archive:" + (dir_ / "a.tar").string() + ":v1");
  EXPECT_EQ(archive.exit_code, 0) << archive.output;
  EXPECT_EQ(Digest::of(archive.output).to_string(), digest);
  ASSERT_TRUE(copy_image(src, parse_ref("oci:" + (dir_ / "copy").string()), options));
  auto layout = skopeo("oci:" + (dir_ / "copy").string() + ":v1");
  EXPECT_EQ(Digest::of(layout.output).to_string(), digest) << layout.output;
  auto docker_archive = copy_image(
      src, parse_ref("docker-archive:" + (dir_ / "d.tar").string() + ":lib/app:2"), options);
  ASSERT_TRUE(docker_archive) << docker_archive.error().to_string();
  // skopeo reads it by its RepoTags name (it does not print RepoTags for archives).
  auto named = skopeo("docker-archive:" + (dir_ / "d.tar").string() + ":lib/app:2");
  EXPECT_EQ(named.exit_code, 0) << named.output;
  auto manifest = run_command("tar -xOf " + shell_quote((dir_ / "d.tar").string()) +
                              " manifest.json");
  EXPECT_NE(manifest.output.find("\"lib/app:2\""), std::string::npos) << manifest.output;
}

TEST_F(RegistryTest, ChunkedUploadAndCrossRepositoryMount) {
  start();
  auto image = make_image(dir_ / "src", {400'000, 3'000}, 3);
  RegistryOptions chunked = insecure();
  chunked.chunk_threshold = 64 * 1024;
  chunked.chunk_size = 100 * 1024;
  auto first = push(*image, parse_ref(docker("a/one:1")), chunked);
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_GE(first->patch_requests, 4u);
  EXPECT_EQ(skopeo_digest(docker("a/one:1")), image->descriptor().digest.to_string());

  RegistryOptions mount = insecure();
  mount.mount_from = {"a/one"};
  auto second = push(*image, parse_ref(docker("b/two:1")), mount);
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(second->mounted, 3u);
  EXPECT_EQ(second->uploaded, 0u);
  EXPECT_EQ(second->patch_requests, 0u);
  EXPECT_EQ(skopeo_digest(docker("b/two:1")), image->descriptor().digest.to_string());
}

TEST_F(RegistryTest, MultiArchIndexPushAndPlatformPull) {
  start();
  auto amd = make_image(dir_ / "amd", {10'000}, 4);
  // A second image that differs only by platform in its config.
  auto layout = Layout::open(dir_ / "amd" / "layout");
  ASSERT_TRUE(layout);
  Platform arm;
  arm.os = "linux";
  arm.architecture = "arm64";
  arm.variant = "v8";
  ConfigChanges changes;
  changes.platform = arm;
  AppendedLayer l;
  l.layer.descriptor = amd->manifest().layers[0];
  l.layer.diff_id = amd->config().diff_ids[0];
  auto arm_desc = build_image(arm, {l}, changes, layout->blobs());
  ASSERT_TRUE(arm_desc) << arm_desc.error().to_string();
  auto arm_image = open_store_image(layout->blobs(), *arm_desc);
  ASSERT_TRUE(arm_image) << arm_image.error().to_string();

  auto pushed =
      push_index({amd.get(), arm_image->get()}, parse_ref(docker("multi/app:1")), insecure());
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(pushed->manifest.media_type, "application/vnd.oci.image.index.v1+json");

  auto store_dir = dir_ / "pulled";
  BlobStore store(store_dir);
  auto pulled = pull(parse_ref(docker("multi/app:1")), arm, store, insecure());
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest.digest, arm_desc->digest);
  EXPECT_EQ(pulled->manifest.platform->to_string(), "linux/arm64/v8");
  EXPECT_FALSE(store.contains(amd->descriptor().digest));  // only the platform asked for
  auto skopeo =
      run_command("skopeo inspect --raw --tls-verify=false " + shell_quote(docker("multi/app:1")));
  EXPECT_NE(skopeo.output.find("arm64"), std::string::npos) << skopeo.output;
}

TEST_F(RegistryTest, BasicAuthWithHtpasswd) {
  ENVB_REQUIRE_TOOL("htpasswd");
  auto htpasswd = dir_ / "htpasswd";
  auto made = run_command("htpasswd -Bbn alice s3cr3t-pw > " + shell_quote(htpasswd.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  start("  htpasswd: {realm: test-realm, path: " + htpasswd.string() + "}\n");
  auto image = make_image(dir_ / "src", {20'000}, 5);

  auto anonymous = push(*image, parse_ref(docker("private/app:1")), insecure());
  ASSERT_FALSE(anonymous);
  EXPECT_EQ(anonymous.error().code(), Errc::Unauthorized) << anonymous.error().to_string();
  EXPECT_NE(anonymous.error().hint().find("--creds"), std::string::npos);

  RegistryOptions wrong = insecure();
  wrong.credentials = Credentials{"alice", "not-the-password", "--creds"};
  auto refused = push(*image, parse_ref(docker("private/app:1")), wrong);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Unauthorized);
  EXPECT_EQ(refused.error().to_string().find("not-the-password"), std::string::npos);

  RegistryOptions right = insecure();
  right.credentials = Credentials{"alice", "s3cr3t-pw", "--creds"};
  auto pushed = push(*image, parse_ref(docker("private/app:1")), right);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  auto inspect = run_command("skopeo inspect --tls-verify=false --creds alice:s3cr3t-pw " +
                             shell_quote(docker("private/app:1")));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;

  // Credentials from $DOCKER_CONFIG/config.json, through the CLI.
  write_text(dir_ / "dockercfg" / "config.json", R"({"auths":{")" + registry_->host() +
                                                     R"(":{"auth":")" +
                                                     base64_encode("alice:s3cr3t-pw") + R"("}}})");
  auto cli = run_command("DOCKER_CONFIG=" + shell_quote((dir_ / "dockercfg").string()) + " " +
                         shell_quote((envbuild::testing::binary_dir() / "envbuild").string()) +
                         " pull --tls-verify=false " + shell_quote(docker("private/app:1")) +
                         " oci:" + shell_quote((dir_ / "cli-out").string()) + ":1");
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(cli.output.find("s3cr3t"), std::string::npos);
  auto cli_anon = run_command("DOCKER_CONFIG=" + shell_quote((dir_ / "none").string()) + " " +
                              shell_quote((envbuild::testing::binary_dir() / "envbuild").string()) +
                              " pull --tls-verify=false " + shell_quote(docker("private/app:1")) +
                              " oci:" + shell_quote((dir_ / "cli-out2").string()) + ":1");
  EXPECT_NE(cli_anon.exit_code, 0);
  EXPECT_NE(cli_anon.output.find("401"), std::string::npos) << cli_anon.output;
}

TEST_F(RegistryTest, BearerTokenAuthFromTokenService) {
  ENVB_REQUIRE_TOOL("openssl");
  ENVB_REQUIRE_TOOL("python3");
  auto key = dir_ / "token.key";
  auto cert = dir_ / "token.crt";
  auto made = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=envbuild-token"
      " -keyout " +
      shell_quote(key.string()) + " -out " + shell_quote(cert.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto port_file = dir_ / "token.port";
  auto token_log = dir_ / "token.requests";
  pid_t token_pid = envbuild::testing::spawn(
      {"python3", (envbuild::testing::source_dir() / "tests/oci/registry_token_server.py").string(),
       "--key", key.string(), "--cert", cert.string(), "--issuer", "envbuild-issuer", "--service",
       "envbuild-registry", "--user", "tok", "--password", "t0ken-pw", "--port-file",
       port_file.string(), "--log", token_log.string()},
      dir_ / "token.log");
  struct Reaper {
    pid_t& pid;
    ~Reaper() { envbuild::testing::kill_and_wait(pid); }
  } reaper{token_pid};
  for (int i = 0; i < 200 && !fs::exists(port_file); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(port_file)) << envbuild::testing::read_text(dir_ / "token.log");
  std::string realm = "http://127.0.0.1:" + envbuild::testing::read_text(port_file) + "/token";
  start("  token:\n    realm: " + realm +
        "\n    service: envbuild-registry\n    issuer: envbuild-issuer\n    rootcertbundle: " +
        cert.string() + "\n");
  auto image = make_image(dir_ / "src", {30'000, 1'000}, 8);

  auto anonymous = push(*image, parse_ref(docker("tok/app:1")), insecure());
  ASSERT_FALSE(anonymous);
  EXPECT_EQ(anonymous.error().code(), Errc::Unauthorized) << anonymous.error().to_string();

  RegistryOptions creds = insecure();
  creds.credentials = Credentials{"tok", "t0ken-pw", "--creds"};
  auto pushed = push(*image, parse_ref(docker("tok/app:1")), creds);
  ASSERT_TRUE(pushed) << pushed.error().to_string() << "\n" << registry_->log();
  EXPECT_EQ(pushed->uploaded, 3u);
  auto again = push(*image, parse_ref(docker("tok/app:1")), creds);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->uploaded, 0u);

  BlobStore store(dir_ / "pulled");
  auto pulled = pull(parse_ref(docker("tok/app:1")), std::nullopt, store, creds);
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest.digest, image->descriptor().digest);
  EXPECT_EQ(skopeo_digest(docker("tok/app:1"), "--creds tok:t0ken-pw"),
            image->descriptor().digest.to_string());
  auto requests = envbuild::testing::read_text(token_log);
  EXPECT_NE(requests.find("repository:tok/app:pull,push"), std::string::npos) << requests;
}

TEST_F(RegistryTest, TlsRegistryNeedsItsCaUnlessVerificationIsOff) {
  ENVB_REQUIRE_TOOL("openssl");
  auto certs = dir_ / "certs.d";
  fs::create_directories(certs);
  auto key = dir_ / "registry.key";
  auto made = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1 -keyout " +
      shell_quote(key.string()) + " -out " + shell_quote((certs / "ca.crt").string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  start("",
        "  tls: {certificate: " + (certs / "ca.crt").string() + ", key: " + key.string() + "}\n");
  auto image = make_image(dir_ / "src", {10'000}, 9);

  RegistryOptions strict = insecure();
  strict.transport.tls.verify = true;
  strict.transport.max_retries = 0;
  auto refused = push(*image, parse_ref(docker("tls/app:1")), strict);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::Network) << refused.error().to_string();
  EXPECT_NE(refused.error().hint().find("--cert-dir"), std::string::npos);

  RegistryOptions with_ca = strict;
  with_ca.transport.tls.cert_dir = certs.string();
  auto pushed = push(*image, parse_ref(docker("tls/app:1")), with_ca);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(skopeo_digest(docker("tls/app:1"), "--cert-dir " + shell_quote(certs.string())),
            image->descriptor().digest.to_string());

  // --tls-verify=false talks https to a TLS registry (no fallback to http).
  BlobStore store(dir_ / "pulled");
  auto pulled = pull(parse_ref(docker("tls/app:1")), std::nullopt, store, insecure());
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest.digest, image->descriptor().digest);
}

// Wraps an image; reading more than `after` bytes of any blob runs `trigger` once.
class TriggerImage final : public Image {
 public:
  TriggerImage(const Image& inner, int64_t after, std::function<void()> trigger)
      : inner_(inner), after_(after), trigger_(std::move(trigger)) {}
  const Descriptor& descriptor() const override { return inner_.descriptor(); }
  const std::string& raw_manifest() const override { return inner_.raw_manifest(); }
  const Manifest& manifest() const override { return inner_.manifest(); }
  const std::string& raw_config() const override { return inner_.raw_config(); }
  const ImageConfig& config() const override { return inner_.config(); }
  Result<std::unique_ptr<common::ByteSource>> open_blob(const Descriptor& d) const override {
    ENVB_ASSIGN_OR_RETURN(auto source, inner_.open_blob(d));
    return std::unique_ptr<common::ByteSource>(std::make_unique<Source>(std::move(source), *this));
  }

 private:
  struct Source final : common::ByteSource {
    Source(std::unique_ptr<common::ByteSource> in, const TriggerImage& owner)
        : in_(std::move(in)), owner_(owner) {}
    Result<size_t> read(std::span<std::byte> buffer) override {
      ENVB_ASSIGN_OR_RETURN(size_t n, in_->read(buffer));
      read_ += static_cast<int64_t>(n);
      if (read_ > owner_.after_ && !owner_.fired_.exchange(true)) owner_.trigger_();
      return n;
    }
    std::unique_ptr<common::ByteSource> in_;
    const TriggerImage& owner_;
    int64_t read_ = 0;
  };
  const Image& inner_;
  int64_t after_;
  std::function<void()> trigger_;
  mutable std::atomic<bool> fired_{false};
};

TEST_F(RegistryTest, RegistryKilledMidUploadThenNextPushCompletes) {
  start();
  auto image = make_image(dir_ / "src", {16u << 20, 2'000}, 6, Compression::None);
  TriggerImage killer(*image, 4 << 20, [this] { registry_->stop(); });
  RegistryOptions quick = insecure();
  quick.transport.max_retries = 1;
  quick.blob_attempts = 2;
  auto failed = push(killer, parse_ref(docker("crash/app:1")), quick);
  ASSERT_FALSE(failed) << "the registry was killed mid-upload";
  EXPECT_EQ(failed.error().code(), Errc::Network) << failed.error().to_string();

  ASSERT_TRUE(registry_->start()) << registry_->log();
  auto pushed = push(*image, parse_ref(docker("crash/app:1")), insecure());
  ASSERT_TRUE(pushed) << pushed.error().to_string() << "\nregistry log:\n" << registry_->log();
  EXPECT_GE(pushed->uploaded, 1u);
  EXPECT_EQ(skopeo_digest(docker("crash/app:1")), image->descriptor().digest.to_string());
  BlobStore store(dir_ / "check");
  auto pulled = pull(parse_ref(docker("crash/app:1")), std::nullopt, store, insecure());
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_TRUE(store.contains(image->manifest().layers[0].digest, image->manifest().layers[0].size));
}

// Tag lists: whole (distribution 2.8 ignores `n`), in pages behind a proxy that cuts them the
// way a paginating registry does (Link headers), bounded, and never followed off the registry.
TEST_F(RegistryTest, TagListsFollowLinkPagesWithinBounds) {
  start();
  auto image = make_image(dir_ / "src", {1'000}, 11);
  std::vector<std::string> want;
  for (int i = 0; i < 5; ++i) {
    want.push_back("t" + std::to_string(i));
    ASSERT_TRUE(push(*image, parse_ref(docker("tags/app:" + want.back())), insecure()));
  }
  auto list = [&](const std::string& host, const TagListLimits& limits = {}) {
    auto repo = Repository::connect(host, "tags/app", Action::Pull, insecure());
    EXPECT_TRUE(repo);
    EXPECT_TRUE(repo->ping());
    return repo->tags(limits);
  };
  auto whole = list(registry_->host());
  ASSERT_TRUE(whole) << whole.error().to_string();
  std::sort(whole->begin(), whole->end());
  EXPECT_EQ(*whole, want);

  envbuild::testing::FaultProxy paged(registry_->host(), dir_ / "paged", "--tags-page 2");
  ASSERT_NE(paged.port(), 0) << "fault_proxy.py did not start";
  auto pages = list(paged.host());
  ASSERT_TRUE(pages) << pages.error().to_string();
  EXPECT_EQ(*pages, want);  // the proxy sorts
  struct Case {
    std::string name;
    TagListLimits limits;
    std::string error;  // empty: listed
  };
  const Case cases[] = {
      {"5 tags, 3 pages", {5, 3}, ""},
      {"over max_tags", {4, 3}, "more than 4 tags"},
      {"over max_pages", {5, 2}, "more than 2 pages of tags"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = list(paged.host(), c.limits);
    if (c.error.empty()) {
      EXPECT_TRUE(got) << got.error().to_string();
      continue;
    }
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code(), Errc::InvalidInput);
    EXPECT_NE(got.error().to_string().find(c.error), std::string::npos) << got.error().to_string();
  }

  // The next request would carry our credentials to wherever the link points.
  envbuild::testing::FaultProxy away(registry_->host(), dir_ / "away",
                                     "--tags-page 2 --tags-link-origin http://127.0.0.2:9");
  ASSERT_NE(away.port(), 0) << "fault_proxy.py did not start";
  auto left = list(away.host());
  ASSERT_FALSE(left);
  EXPECT_NE(left.error().to_string().find("leaves the tag list of tags/app"), std::string::npos)
      << left.error().to_string();
}

// distribution 2.8 can answer a manifest PUT with MANIFEST_BLOB_UNKNOWN while a concurrent
// upload of one of its blobs rewrites that blob's link: the PUT is asked again, twice at most.
TEST_F(RegistryTest, ManifestPutAsksAgainAfterABlobUnknownAnswer) {
  start();
  auto image = make_image(dir_ / "src", {1'000}, 13);
  for (const std::string count : {"2", "all"}) {
    SCOPED_TRACE("blob-unknown:" + count);
    envbuild::testing::FaultProxy proxy(registry_->host(), dir_ / ("proxy-" + count),
                                        "--fault blob-unknown:" + count + "@PUT~/manifests/");
    ASSERT_NE(proxy.port(), 0) << "fault_proxy.py did not start";
    auto pushed = push(*image, parse_ref("docker://" + proxy.host() + "/unknown/app:" + count),
                       insecure());
    size_t puts = 0;
    for (const auto& line : proxy.log_lines())
      puts += line.find("\"PUT\"") != std::string::npos &&
              line.find("/manifests/") != std::string::npos;
    EXPECT_EQ(puts, 3u);
    if (count == "2") {
      EXPECT_TRUE(pushed) << pushed.error().to_string();
      continue;
    }
    ASSERT_FALSE(pushed);
    EXPECT_NE(pushed.error().to_string().find("400 Bad Request (MANIFEST_BLOB_UNKNOWN"),
              std::string::npos)
        << pushed.error().to_string();
  }
}

// DELETE by digest drops the manifest and its tags; a registry without deletes says so.
TEST_F(RegistryTest, ManifestDeleteByDigest) {
  auto image = make_image(dir_ / "src", {1'000}, 12);
  for (bool enabled : {true, false}) {
    SCOPED_TRACE(enabled ? "deletes enabled" : "deletes refused");
    RegistryServer registry(dir_ / (enabled ? "with" : "without"), "", "",
                            enabled ? RegistryServer::Deletes::Enabled
                                    : RegistryServer::Deletes::Refused);
    ASSERT_TRUE(registry.start()) << registry.log();
    auto pushed = push(*image, parse_ref("docker://" + registry.host() + "/del/app:1"), insecure());
    ASSERT_TRUE(pushed) << pushed.error().to_string();
    auto repo = Repository::connect(registry.host(), "del/app", Action::Push, insecure());
    ASSERT_TRUE(repo);
    ASSERT_TRUE(repo->ping());
    auto deleted = repo->delete_manifest(image->descriptor().digest);
    if (!enabled) {
      ASSERT_FALSE(deleted);
      EXPECT_EQ(deleted.error().code(), Errc::Unsupported);
      EXPECT_NE(deleted.error().hint().find("REGISTRY_STORAGE_DELETE_ENABLED"), std::string::npos)
          << deleted.error().hint();
      continue;
    }
    ASSERT_TRUE(deleted) << deleted.error().to_string();
    EXPECT_TRUE(*deleted);
    auto again = repo->delete_manifest(image->descriptor().digest);
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_FALSE(*again);
    auto gone = repo->head_manifest("1");
    ASSERT_TRUE(gone) << gone.error().to_string();
    EXPECT_FALSE(*gone);
  }
}

TEST_F(RegistryTest, CliPushAndPullRoundTrip) {
  start();
  auto image = make_image(dir_ / "src", {50'000}, 7);
  std::string envbuild = shell_quote((envbuild::testing::binary_dir() / "envbuild").string());
  auto pushed = run_command(
      envbuild + " push --tls-verify=false oci:" + shell_quote((dir_ / "src" / "layout").string()) +
      ":v1 " + shell_quote(docker("cli/app:7")));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  EXPECT_NE(pushed.output.find("2 uploaded"), std::string::npos) << pushed.output;
  auto again = run_command(
      envbuild + " push --tls-verify=false oci:" + shell_quote((dir_ / "src" / "layout").string()) +
      ":v1 " + shell_quote(docker("cli/app:7")));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 uploaded, 2 already there"), std::string::npos) << again.output;
  auto pulled =
      run_command(envbuild + " pull --tls-verify=false " + shell_quote(docker("cli/app:7")) +
                  " oci-archive:" + shell_quote((dir_ / "out.tar").string()) + ":t");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(run_command("skopeo inspect oci-archive:" + shell_quote((dir_ / "out.tar").string()))
                .exit_code,
            0);
}

}  // namespace
}  // namespace envbuild::oci::registry
