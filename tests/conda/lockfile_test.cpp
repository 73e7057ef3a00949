#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"
#include "conda/match_spec.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ExplicitFileParse, Basics) {
  std::string text =
      "# platform: linux-64\n@EXPLICIT\n"
      "https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3-h0.conda#"
      "0123456789abcdef0123456789abcdef\n"
      "# a comment\n"
      "https://conda.anaconda.org/conda-forge/noarch/tzdata-2024b-h0.conda#sha256:"
      "4fde5c3008bf5d2db82f2b50204464314cc3c91c1d953652f7bd01d9e52aefdf\n";
  auto file = parse_explicit_file(text, "env.lock");
  ASSERT_TRUE(file) << file.error().to_string();
  EXPECT_EQ(file->platform(), "linux-64");
  ASSERT_EQ(file->entries.size(), 2u);
  EXPECT_EQ(file->entries[0].md5, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(file->entries[0].file_name(), "zlib-1.3-h0.conda");
  EXPECT_EQ(file->entries[0].subdir(), "linux-64");
  EXPECT_EQ(file->entries[0].channel(), "https://conda.anaconda.org/conda-forge");
  EXPECT_EQ(file->entries[1].comments_before, std::vector<std::string>{"# a comment"});
  EXPECT_EQ(file->entries[1].sha256.size(), 64u);
  EXPECT_EQ(to_string(*file), text);
}

TEST(ExplicitFileParse, Errors) {
  struct Bad {
    std::string_view text;
    std::string_view message;
  };
  for (Bad b : {Bad{"https://x/linux-64/a-1-0.conda\n", "env.lock:1:1: expected '@EXPLICIT'"},
                Bad{"# only comments\n", "no '@EXPLICIT' line"},
                Bad{"@EXPLICIT\nhttps://x/linux-64/a-1-0.conda#xyz\n", "env.lock:2:32:"},
                Bad{"@EXPLICIT\nhttps://x/linux-64/a-1-0.whl\n", "ending in .conda or .tar.bz2"},
                Bad{"@EXPLICIT\nnumpy=1.26\n", "env.lock:2:1: expected a package URL"}}) {
    SCOPED_TRACE(b.text);
    auto file = parse_explicit_file(b.text, "env.lock");
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().code(), Errc::InvalidInput);
    EXPECT_NE(file.error().message().find(b.message), std::string::npos) << file.error().message();
  }
}

TEST(ExplicitFileTestData, EveryFileRoundTripsByteForByte) {
  size_t files = 0, entries = 0;
  for (const auto& path : files_in(testing::data_dir() / "locks/explicit")) {
    SCOPED_TRACE(path.filename().string());
    std::string text = testing::read_text(path);
    auto file = parse_explicit_file(text, path.filename().string());
    ASSERT_TRUE(file) << file.error().to_string();
    EXPECT_EQ(to_string(*file), text);
    auto again = parse_explicit_file(to_string(*file), "again");
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *file);
    ++files;
    entries += file->entries.size();
  }
  EXPECT_EQ(files, 28u);
  EXPECT_GE(entries, 3500u);
  // The URL list without @EXPLICIT (conda-lock's 'explicit' render) is rejected clearly.
  auto list = testing::data_dir() / "locks/url-list/conda-lock-tests__test-lockfile__test.lock";
  auto rejected = parse_explicit_file(testing::read_text(list), "test.lock");
  ASSERT_FALSE(rejected);
  EXPECT_FALSE(rejected.error().hint().empty());
}

TEST(CondaLockParse, RoundTripAndFields) {
  std::string_view text = R"(version: 1
metadata:
  content_hash:
    linux-64: abc
  channels:
  - url: conda-forge
    used_env_vars: []
  platforms:
  - linux-64
  sources:
  - environment.yml
  time_metadata:
    created_at: '2025-08-14T22:47:07Z'
package:
- name: _libgcc_mutex
  version: '0.1'
  manager: conda
  platform: linux-64
  dependencies: {}
  url: https://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex-0.1-conda_forge.tar.bz2
  hash:
    md5: d7c89558ba9fa0495403155b64376d81
    sha256: fe51de6107f9edc7aa4f786a70f4a883943bc9d39b3bb7307c04c41410990726
  category: main
  optional: false
- name: certifi
  version: 2023.7.22
  manager: pip
  platform: linux-64
  dependencies:
    idna: '>=2.5,<4'
  url: https://files.pythonhosted.org/certifi-2023.7.22-py3-none-any.whl
  hash:
    sha256: 92d6037539857d8206b8f6ae472e8b77db8058fec5937a1ef3f54304089edbb9
  category: dev
  optional: true
)";
  auto lock = parse_conda_lock(text, "conda-lock.yml");
  ASSERT_TRUE(lock) << lock.error().to_string();
  ASSERT_EQ(lock->packages.size(), 2u);
  EXPECT_EQ(lock->packages[0].version, "0.1");
  EXPECT_EQ(lock->packages[1].manager, CondaLockPackage::Manager::Pip);
  EXPECT_TRUE(lock->packages[1].optional);
  EXPECT_EQ(lock->packages[1].dependencies[0].second, ">=2.5,<4");
  ASSERT_EQ(lock->metadata.extra.size(), 1u);
  EXPECT_EQ(lock->metadata.extra[0].first, "time_metadata");
  EXPECT_EQ(lock->packages_for("linux-64", CondaLockPackage::Manager::Conda).size(), 1u);
  std::string written = to_string(*lock);
  // Values round-trip; bytes differ only in yaml-cpp's sequence indentation and quoting.
  EXPECT_NE(written.find("  - name: certifi\n    version: '2023.7.22'\n"), std::string::npos)
      << written;
  auto again = parse_conda_lock(written, "again");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(*again, *lock);
}

TEST(CondaLockTestData, EveryFileRoundTripsOrFailsAsExpected) {
  const std::map<std::string, std::string> expected_failures = {
      // mamba's negative fixtures (MANIFEST.tsv: "invalid lockfile").
      {"mamba-tests__bad_package-lock.yaml", "missing 'metadata' mapping"},
      {"mamba-tests__bad_version-lock.yaml", "unsupported conda-lock file version '-1'"},
  };
  size_t parsed = 0, packages = 0, deps = 0;
  for (const auto& path : files_in(testing::data_dir() / "locks/conda-lock")) {
    std::string name = path.filename().string();
    SCOPED_TRACE(name);
    auto lock = parse_conda_lock(testing::read_text(path), name);
    if (auto want = expected_failures.find(name); want != expected_failures.end()) {
      ASSERT_FALSE(lock);
      EXPECT_NE(lock.error().message().find(want->second), std::string::npos)
          << lock.error().to_string();
      EXPECT_NE(lock.error().message().find(name + ":"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(lock) << lock.error().to_string();
    ++parsed;
    packages += lock->packages.size();
    auto again = parse_conda_lock(to_string(*lock), "again");
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(*again, *lock);
    EXPECT_EQ(to_string(*again), to_string(*lock));
    for (const auto& p : lock->packages) {
      if (p.manager != CondaLockPackage::Manager::Conda) continue;
      for (const auto& [dep, constraint] : p.dependencies) {
        auto spec = MatchSpec::parse(dep + " " + constraint);
        EXPECT_TRUE(spec) << dep << " " << constraint << ": " << spec.error().to_string();
        ++deps;
      }
    }
  }
  EXPECT_EQ(parsed, 20u);
  EXPECT_EQ(packages, 2899u);  // MANIFEST.tsv totals
  EXPECT_GE(deps, 5000u);
}

}  // namespace
}  // namespace envbuild::conda
