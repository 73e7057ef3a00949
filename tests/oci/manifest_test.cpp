#include "oci/manifest.hpp"

#include <gtest/gtest.h>

namespace envbuild::oci {
namespace {

Digest digest_of(std::string_view s) {
  return Digest::of(s);
}

TEST(CanonicalJson, SortedCompact) {
  nlohmann::json j = {{"z", 1}, {"a", {{"y", "x"}, {"b", nlohmann::json::array({3, 1})}}}};
  EXPECT_EQ(canonical_json(j), R"({"a":{"b":[3,1],"y":"x"},"z":1})");
}

TEST(CanonicalJson, ManifestIsStableAndRoundTrips) {
  Manifest m;
  m.config = Descriptor{std::string(media_type::kOciConfig), digest_of("c"), 12, {}, {}, {}, {}};
  m.layers.push_back(Descriptor{
      std::string(media_type::kOciLayerGzip), digest_of("l"), 34, {}, {{"k", "v"}}, {}, {}});
  m.annotations["org.opencontainers.image.created"] = "1970-01-01T00:00:00Z";
  std::string text = to_canonical_json(m);
  EXPECT_EQ(text.find(' '), std::string::npos);
  EXPECT_TRUE(text.starts_with(R"({"annotations":)")) << text;
  auto back = parse_manifest(text);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, m);
  EXPECT_EQ(to_canonical_json(*back), text);
}

TEST(CanonicalJson, IndexRoundTripsWithPlatform) {
  Index i;
  Descriptor d{std::string(media_type::kOciManifest),
               digest_of("m"),
               99,
               {},
               {{std::string(kAnnotationRefName), "v1"}},
               Platform{"arm64", "linux", "v8", "", {}},
               {}};
  i.manifests.push_back(d);
  auto back = parse_index(to_canonical_json(i));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, i);
  EXPECT_EQ(back->manifests[0].platform->to_string(), "linux/arm64/v8");
}

TEST(CanonicalJson, ConfigKeepsUnknownFields) {
  std::string in =
      R"({"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],)"
      R"("ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:)" +
      digest_of("x").hex() + R"("]},"history":[{"created_by":"x"}],"docker_version":"24"})";
  auto c = parse_image_config(in);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->config.cmd, std::vector<std::string>{"/bin/sh"});
  EXPECT_FALSE(c->config.entrypoint);
  c->set_env("PATH", "/opt/env/bin:/bin");
  c->set_env("LANG", "C.UTF-8");
  std::string out = to_canonical_json(*c);
  EXPECT_NE(out.find(R"("ExposedPorts":{"80/tcp":{}})"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("docker_version":"24")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("Env":["PATH=/opt/env/bin:/bin","LANG=C.UTF-8"])"), std::string::npos)
      << out;
  auto again = parse_image_config(out);
  ASSERT_TRUE(again);
  EXPECT_EQ(to_canonical_json(*again), out);
}

TEST(ManifestParse, RejectsBadDocuments) {
  const std::string_view cases[] = {
      "not json",
      "[]",
      R"({"schemaVersion":1})",
      R"({"schemaVersion":2,"layers":[]})",
      R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{}})",
  };
  for (auto c : cases) {
    SCOPED_TRACE(c);
    auto m = parse_manifest(c);
    EXPECT_FALSE(m);
    if (!m) {
      EXPECT_NE(m.error().to_string().find("parsing image manifest"), std::string::npos);
    }
  }
}

// Issue 16, class 9: 500k levels of nesting in an image config ended in a stack overflow when
// the config's unknown fields were copied.
TEST(ManifestParse, DeeplyNestedDocumentsAreRefused) {
  const std::string deep = std::string(500'000, '[') + std::string(500'000, ']');
  const std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers",)"
                             R"("diff_ids":[]},"extra":)" +
                             deep + "}";
  auto c = parse_image_config(config);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::InvalidInput);
  EXPECT_NE(c.error().to_string().find("parsing image config: arrays and objects nested more"),
            std::string::npos)
      << c.error().to_string();
  EXPECT_FALSE(parse_manifest(R"({"schemaVersion":2,"annotations":)" + deep + "}"));
  EXPECT_FALSE(parse_index(R"({"schemaVersion":2,"manifests":)" + deep + "}"));
}

TEST(Rfc3339, FormatsUtc) {
  EXPECT_EQ(rfc3339_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339_utc(1700000000), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace envbuild::oci
