// The prepare step install and image builds share: which paths two packages both install (the
// later in link order keeps them), which link scripts the packages carry, and the record a
// fetched package is installed with.

#include "builder/install/prepare.hpp"

#include <gtest/gtest.h>

#include "tests/testing/testing.hpp"

namespace envbuild::builder {
namespace {

namespace fs = std::filesystem;
using testing::TempDirTest;
using testing::write_text;

PackagePlan plan_of(const std::string& name, std::vector<std::string> paths,
                    std::vector<std::string> scripts = {}) {
  PackagePlan plan;
  plan.record.name = name;
  plan.record.version = *conda::Version::parse("1.0");
  plan.record.build = "h0_0";
  for (auto& path : paths) {
    PlannedFile file;
    file.path = std::move(path);
    plan.files.push_back(std::move(file));
  }
  plan.link_scripts = std::move(scripts);
  return plan;
}

std::vector<std::string> clobber_notes(const PreparedEnvironment& prepared) {
  std::vector<std::string> notes;
  for (const auto& c : prepared.clobbers) notes.push_back(c.note());
  return notes;
}

std::vector<std::string> script_notes(const PreparedEnvironment& prepared) {
  std::vector<std::string> notes;
  for (const auto& s : prepared.link_scripts) notes.push_back(s.note());
  return notes;
}

TEST(PrepareEnvironmentTest, ClobbersAndLinkScriptsInLinkOrder) {
  struct Case {
    std::string name;
    std::vector<PackagePlan> plans;
    std::vector<std::string> clobbers;
    std::vector<std::string> scripts;
  };
  const std::vector<Case> cases = {
      {"nothing shared", {plan_of("a", {"bin/a"}), plan_of("b", {"bin/b"})}, {}, {}},
      {"the later package keeps a shared path",
       {plan_of("a", {"bin/x", "lib/a"}), plan_of("b", {"bin/x"})},
       {"bin/x: a-1.0-h0_0, then b-1.0-h0_0 (kept)"},
       {}},
      {"three owners are two clobbers, each against the one before",
       {plan_of("a", {"x"}), plan_of("b", {"x"}), plan_of("c", {"x"})},
       {"x: a-1.0-h0_0, then b-1.0-h0_0 (kept)", "x: b-1.0-h0_0, then c-1.0-h0_0 (kept)"},
       {}},
      {"a path twice in one package is no clobber", {plan_of("a", {"x", "x"})}, {}, {}},
      {"each package's clobbers in its plan's order",
       {plan_of("a", {"p", "q"}), plan_of("b", {"p", "q"})},
       {"p: a-1.0-h0_0, then b-1.0-h0_0 (kept)", "q: a-1.0-h0_0, then b-1.0-h0_0 (kept)"},
       {}},
      {"link scripts by kind, in link order",
       {plan_of("a", {"bin/.a-post-link.sh"}, {"bin/.a-pre-link.sh", "bin/.a-post-link.sh"}),
        plan_of("b", {}, {"bin/.b-post-link.sh"})},
       {},
       {"a: pre-link (bin/.a-pre-link.sh)", "a: post-link (bin/.a-post-link.sh)",
        "b: post-link (bin/.b-post-link.sh)"}},
      {"no plans", {}, {}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const PreparedEnvironment prepared = prepare_environment(c.plans);
    EXPECT_EQ(clobber_notes(prepared), c.clobbers);
    EXPECT_EQ(script_notes(prepared), c.scripts);
  }
}

TEST(PrepareEnvironmentTest, ClobberNamesBothPackages) {
  const auto prepared =
      prepare_environment({plan_of("zlib", {"lib/libz.so"}), plan_of("libzlib", {"lib/libz.so"})});
  ASSERT_EQ(prepared.clobbers.size(), 1u);
  EXPECT_EQ(prepared.clobbers[0].path, "lib/libz.so");
  EXPECT_EQ(prepared.clobbers[0].earlier, "zlib-1.0-h0_0");
  EXPECT_EQ(prepared.clobbers[0].later, "libzlib-1.0-h0_0");
}

class CompleteRecordTest : public TempDirTest {
 protected:
  // An extracted package whose info/index.json says `name`.
  CachedPackage extracted(const std::string& name) {
    const fs::path root = dir_ / name;
    write_text(root / "info" / "index.json",
               R"({"name": ")" + name +
                   R"(", "version": "1.2", "build": "h1_0", "build_number": 0,)"
                   R"( "subdir": "linux-64", "depends": ["libc >=2"]})");
    CachedPackage cached;
    cached.extracted = root;
    cached.sha256 = std::string(64, 'b');
    cached.md5 = std::string(32, 'c');
    cached.size = 42;
    return cached;
  }
};

TEST_F(CompleteRecordTest, RecordComesFromTheArchiveAndWhereItWasFetched) {
  struct Case {
    std::string name;
    std::string given_name;  // "" as a URL-only lock entry
  };
  for (const Case& c : std::vector<Case>{{"named", "demo"}, {"url only", ""}}) {
    SCOPED_TRACE(c.name);
    conda::PackageRecord given;
    given.name = c.given_name;
    given.url = "https://conda.example/chan/linux-64/demo-1.2-h1_0.conda";
    given.fn = "demo-1.2-h1_0.conda";
    const PackageRef ref{given.url, given.fn, "", "", std::nullopt};
    auto record = complete_record(given, ref, extracted("demo"));
    ASSERT_TRUE(record) << record.error().to_string();
    EXPECT_EQ(record->name, "demo");
    EXPECT_EQ(record->version.to_string(), "1.2");
    EXPECT_EQ(record->build, "h1_0");
    EXPECT_EQ(record->sha256, std::string(64, 'b'));
    EXPECT_EQ(record->size, std::optional<uint64_t>(42));
    EXPECT_EQ(record->channel, "https://conda.example/chan");
  }
}

TEST_F(CompleteRecordTest, AnArchiveOfAnotherNameIsAnIntegrityErrorNamingIt) {
  conda::PackageRecord given;
  given.name = "demo";
  given.url = "https://conda.example/chan/linux-64/evil-1.2-h1_0.conda";
  given.fn = "evil-1.2-h1_0.conda";
  const PackageRef ref{given.url, given.fn, "", "", std::nullopt};
  auto record = complete_record(given, ref, extracted("evil"));
  ASSERT_FALSE(record);
  EXPECT_EQ(record.error().code(), Errc::Integrity);
  const std::string message = record.error().to_string();
  EXPECT_NE(message.find("evil-1.2-h1_0.conda"), std::string::npos) << message;
  EXPECT_NE(message.find("expected package 'demo'"), std::string::npos) << message;
  EXPECT_NE(message.find("says 'evil'"), std::string::npos) << message;
}

}  // namespace
}  // namespace envbuild::builder
