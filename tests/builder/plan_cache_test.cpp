// The plan cache: a stored plan loads back the same (without staged sources); a damaged,
// truncated, foreign or misplaced entry is a miss; the key follows every input of a plan.

#include "builder/install/plan_cache.hpp"

#include <gtest/gtest.h>

#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::TempDirTest;
using testing::write_text;

conda::PackageRecord make_record() {
  conda::PackageRecord r;
  r.name = "demo";
  r.version = *conda::Version::parse("1.0");
  r.build = "h0_0";
  r.sha256 = std::string(64, 'a');
  return r;
}

PackagePlan make_plan() {
  PackagePlan plan;
  plan.record = make_record();
  plan.files = {
      {"bin/demo", PlannedFile::Kind::File, "/staging/0/files/bin/demo", {}, true, false},
      {"conda-meta/demo-1.0-h0_0.json", PlannedFile::Kind::File, "/staging/m", {}, true, false},
      {"lib/libdemo.so", PlannedFile::Kind::Symlink, {}, "libdemo.so.1", false, false},
      {"lib/libdemo.so.1", PlannedFile::Kind::File, "/pkgs/demo/lib/libdemo.so.1", {}, false, true},
  };
  conda::RelocationRecord text;
  text.path = "bin/demo";
  text.placeholder = "/opt/placeholder";
  text.room = 16;
  text.offsets = {12, 40};
  text.shebang_template = "#!/opt/placeholder/bin/python";
  text.first_line_length = 22;
  conda::RelocationRecord binary;
  binary.path = "lib/libdemo.so.1";
  binary.file_mode = conda::FileMode::Binary;
  binary.placeholder = "/opt/placeholder";
  binary.room = 16;
  binary.strings = {{100, 30, {0, 15}}};
  plan.relocations = {text, binary};
  plan.link_scripts = {"bin/.demo-post-link.sh"};
  plan.staging = "/staging/0";
  return plan;
}

InstallTarget make_target() {
  InstallTarget t;
  t.prefix = "/opt/conda";
  t.subdir = "linux-64";
  t.python = *conda::PythonInfo::from_version("3.11.4");
  return t;
}

class PlanCacheTest : public TempDirTest {
 protected:
  PlanCache cache() { return PlanCache(dir_ / "plans"); }
};

TEST_F(PlanCacheTest, StoredPlanLoadsBackWithoutStagedFiles) {
  const PackagePlan plan = make_plan();
  ASSERT_TRUE(cache().store("k1", plan, 1234));
  auto hit = cache().load("k1", make_record());
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->size, 1234u);
  EXPECT_EQ(hit->plan.record.name, "demo");
  ASSERT_EQ(hit->plan.files.size(), plan.files.size());
  for (size_t i = 0; i < plan.files.size(); ++i) {
    EXPECT_EQ(hit->plan.files[i].path, plan.files[i].path);
    EXPECT_EQ(hit->plan.files[i].kind, plan.files[i].kind);
    EXPECT_EQ(hit->plan.files[i].target, plan.files[i].target);
    EXPECT_EQ(hit->plan.files[i].private_copy, plan.files[i].private_copy);
    EXPECT_EQ(hit->plan.files[i].no_link, plan.files[i].no_link);
    EXPECT_TRUE(hit->plan.files[i].source.empty()) << hit->plan.files[i].path;
  }
  EXPECT_EQ(hit->plan.relocations, plan.relocations);
  EXPECT_EQ(hit->plan.link_scripts, plan.link_scripts);
  EXPECT_FALSE(hit->plan.noarch_python);
  EXPECT_TRUE(hit->plan.staging.empty());
  EXPECT_FALSE(cache().load("k2", make_record()));  // no entry
  // No temp files are left beside the entry.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "plans")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(PlanCacheTest, DamagedEntriesAreMisses) {
  ASSERT_TRUE(cache().store("k1", make_plan(), 1234));
  const fs::path entry = cache().path_of("k1");
  const std::string good = read_text(entry);
  ASSERT_TRUE(cache().load("k1", make_record()));

  // A flipped byte in the body (still valid JSON): the body's sha256 no longer matches.
  std::string flipped = good;
  auto at = flipped.find("libdemo.so.1");
  ASSERT_NE(at, std::string::npos);
  flipped[at] = 'L';
  write_text(entry, flipped);
  EXPECT_FALSE(cache().load("k1", make_record()));

  // Truncated, at any length.
  for (size_t len : {size_t{0}, size_t{10}, good.find('\n'), good.find('\n') + 1, good.size() / 2,
                     good.size() - 2}) {
    write_text(entry, good.substr(0, len));
    EXPECT_FALSE(cache().load("k1", make_record())) << "truncated at " << len;
  }
  // Garbage, and another format.
  write_text(entry, "{not json\n{}");
  EXPECT_FALSE(cache().load("k1", make_record()));
  std::string other = good;
  other.replace(other.find("envbuild-package-plan-v1"), 24, "envbuild-package-plan-v0");
  write_text(entry, other);
  EXPECT_FALSE(cache().load("k1", make_record()));

  // An entry under another key's name (copied or renamed by hand).
  write_text(entry, good);
  fs::copy_file(entry, cache().path_of("k2"));
  EXPECT_FALSE(cache().load("k2", make_record()));
  EXPECT_TRUE(cache().load("k1", make_record()));

  // Storing again replaces a damaged entry.
  write_text(entry, good.substr(0, good.size() / 2));
  ASSERT_TRUE(cache().store("k1", make_plan(), 1234));
  EXPECT_TRUE(cache().load("k1", make_record()));
}

TEST(PlanKey, FollowsEveryInput) {
  const conda::PackageRecord record = make_record();
  const InstallTarget target = make_target();
  const std::string key = plan_key(record, target, false);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, plan_key(record, target, false));  // stable

  conda::PackageRecord other_sha = record;
  other_sha.sha256 = std::string(64, 'b');
  EXPECT_NE(plan_key(other_sha, target, false), key);
  conda::PackageRecord other_build = record;
  other_build.build_number = 1;
  EXPECT_NE(plan_key(other_build, target, false), key);
  InstallTarget other_prefix = target;
  other_prefix.prefix = "/opt/other";
  EXPECT_NE(plan_key(record, other_prefix, false), key);
  InstallTarget other_subdir = target;
  other_subdir.subdir = "linux-aarch64";
  EXPECT_NE(plan_key(record, other_subdir, false), key);
  // The python counts only for a (possibly) noarch: python package.
  InstallTarget other_python = target;
  other_python.python = *conda::PythonInfo::from_version("3.12.1");
  EXPECT_EQ(plan_key(record, other_python, false), key);
  EXPECT_NE(plan_key(record, other_python, true), plan_key(record, target, true));
  // The staging dir is not an input.
  InstallTarget other_staging = target;
  other_staging.staging = "/elsewhere";
  EXPECT_EQ(plan_key(record, other_staging, false), key);
}

}  // namespace
}  // namespace envbuild::builder
