#include "oci/blob_store.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/layout.hpp"
#include "oci/mutate.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::oci {
namespace {

namespace fs = std::filesystem;

class BlobStoreTest : public testing::TempDirTest {};

std::string drain(common::ByteSource& s, Result<void>* status) {
  std::string out;
  std::byte buf[4096];
  for (;;) {
    auto n = s.read(buf);
    if (!n) {
      *status = n.error();
      return out;
    }
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
}

TEST_F(BlobStoreTest, PutReadAndVerify) {
  BlobStore store(dir_);
  auto info = store.put("hello");
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->digest, Digest::of("hello"));
  EXPECT_TRUE(store.contains(info->digest, 5));
  EXPECT_FALSE(store.contains(info->digest, 6));
  EXPECT_EQ(store.read_small(info->digest).value(), "hello");
  // Only the blob is left in the directory: no temp files.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "blobs/sha256"), fs::directory_iterator()),
            1);

  // Corrupt it on disk: verified reads fail, naming the blob.
  fs::path p = store.path_of(info->digest);
  fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
  testing::write_text(p, "jello");
  EXPECT_EQ(store.read_small(info->digest).error().code(), Errc::Integrity);
  auto source = store.open(info->digest, Verify::Yes, 5);
  ASSERT_TRUE(source);
  Result<void> status;
  drain(**source, &status);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().to_string().find("digest mismatch"), std::string::npos);
  auto sized = store.open(info->digest, Verify::Yes, 3);
  drain(**sized, &status);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().to_string().find("more than the expected 3 bytes"), std::string::npos);
}

TEST_F(BlobStoreTest, WriterCommitChecksExpectedDigest) {
  BlobStore store(dir_);
  auto w = store.writer();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(std::as_bytes(std::span(std::string_view("abc")))));
  auto r = w->commit(Digest::of("abd"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Integrity);
  EXPECT_FALSE(store.contains(Digest::of("abc")));
  EXPECT_TRUE(fs::is_empty(dir_ / "blobs/sha256"));
  {
    auto dropped = store.writer();
    ASSERT_TRUE(dropped->write(std::as_bytes(std::span(std::string_view("x")))));
  }  // never committed: the temp file goes away
  EXPECT_TRUE(fs::is_empty(dir_ / "blobs/sha256"));
}

TEST_F(BlobStoreTest, ConcurrentWritersOfTheSameBlobAllSucceed) {
  // Given 8 processes writing the same 8 MiB blob at once, all succeed and one intact blob stays.
  std::string content(8u << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 2654435761u >> 13);
  BlobStore store(dir_);
  std::vector<pid_t> children;
  for (int i = 0; i < 8; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto w = store.writer();
      bool good = w.has_value();
      for (size_t off = 0; good && off < content.size(); off += 65536)
        good = w->write(std::as_bytes(std::span(content).subspan(off, 65536))).has_value();
      good = good && w->commit(Digest::of(content)).has_value();
      ::_exit(good ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(store.read_small(Digest::of(content), 16u << 20).value().size(), content.size());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "blobs/sha256"), fs::directory_iterator()),
            1);
}

TEST_F(BlobStoreTest, LayoutRoundTripTagsAndPlatforms) {
  auto layout = Layout::create(dir_ / "img");
  ASSERT_TRUE(layout) << layout.error().to_string();
  testing::write_text(dir_ / "f", "data");
  auto layer = write_layer({LayerEntry::file("f", dir_ / "f")}, {}, layout->blobs());
  ASSERT_TRUE(layer);
  std::vector<AppendedLayer> layers = {{*layer, {}}};
  auto amd = build_image(Platform{"amd64", "linux", "", "", {}}, layers, {}, layout->blobs());
  auto arm = build_image(Platform{"arm64", "linux", "v8", "", {}}, layers, {}, layout->blobs());
  ConfigChanges other;
  other.cmd = std::vector<std::string>{"x"};
  auto amd2 = build_image(Platform{"amd64", "linux", "", "", {}}, layers, other, layout->blobs());
  ASSERT_TRUE(amd && arm && amd2);
  ASSERT_TRUE(layout->add(*amd, "v1"));
  ASSERT_TRUE(layout->add(*arm, "v1"));
  ASSERT_TRUE(layout->add(*amd, "latest"));
  ASSERT_TRUE(layout->add(*amd2, "v1"));  // replaces v1 for amd64 only

  auto reopened = Layout::open(dir_ / "img");
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->tags().value(), (std::vector<std::string>{"v1", "latest", "v1"}));
  auto img = reopened->image("v1", Platform{"amd64", "linux", "", "", {}});
  ASSERT_TRUE(img) << img.error().to_string();
  EXPECT_EQ((*img)->descriptor().digest, amd2->digest);
  EXPECT_EQ((*img)->config().config.cmd, std::vector<std::string>{"x"});
  auto arm_img = reopened->image("v1", Platform{"arm64", "linux", "v8", "", {}});
  ASSERT_TRUE(arm_img);
  EXPECT_EQ((*arm_img)->descriptor().digest, arm->digest);
  EXPECT_TRUE(validate(**arm_img));
  auto missing = reopened->image("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_FALSE(Layout::open(dir_ / "not-a-layout"));

  // validate() catches a wrong diff_id (what umoci catches and oci-image-tool does not).
  ImageConfig bad = (*img)->config();
  bad.diff_ids[0] = Digest::of("wrong");
  auto bad_desc = put_image(layout->blobs(), bad, (*img)->manifest().layers);
  ASSERT_TRUE(bad_desc);
  auto bad_img = open_store_image(layout->blobs(), *bad_desc);
  ASSERT_TRUE(bad_img);
  auto v = validate(**bad_img);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().to_string().find("diff_id"), std::string::npos);
}

}  // namespace
}  // namespace envbuild::oci
