// pixi.lock (conda/lockfile_pixi): every real lock file of tests/data/locks/pixi-lock, versions 4
// to 7, read with the environments, kinds and counts the data set's manifest records for it.

#include "conda/lockfile_pixi.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/fs.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::conda {
namespace {

struct Expected {
  const char* file;
  int version;
  std::vector<std::string> environments;
  size_t conda, pypi, source;
};

// From ../shared/testdata/MANIFEST.tsv (counted there with PyYAML, independently of this code).
const std::vector<Expected> kFiles = {
    {"conda-lockfiles__single_package__pixi.lock", 6, {"default"}, 1, 0, 0},
    {"pixi-docker__example__pixi.lock", 4, {"default", "prod"}, 82, 1, 0},
    {"pixi-pack__webserver__pixi.lock", 6, {"default", "prod"}, 172, 0, 0},
    {"pixi__examples__docker__pixi.lock", 6, {"default", "prod"}, 79, 1, 0},
    {"pixi__tests__lock_files__dependency_overrides.lock", 6, {"default", "dev", "outdated"}, 57,
     9, 0},
    {"rattler-tests__v4__path-based-lock.yml", 4, {"default"}, 15, 18, 0},
    {"rattler-tests__v4__python-lock.yml", 4, {"default"}, 111, 0, 0},
    {"rattler-tests__v5__flat-index-lock.yml", 5, {"default"}, 13, 5, 0},
    {"rattler-tests__v6__numpy-as-pypi-lock.yml", 6, {"default"}, 19, 1, 0},
    {"rattler-tests__v6__options-lock.yml",
     6,
     {"without-options", "with-exclude-newer", "with-strategy", "with-default-strategy",
      "with-channel-priority", "with-default-channel-priority"},
     0,
     0,
     0},
    {"rattler-tests__v6__python-from-conda-only-lock.yml", 6, {"default"}, 19, 0, 0},
    {"rattler-tests__v7__conda-path-lock.yml", 7, {"default", "second"}, 0, 0, 5},
    {"rattler-tests__v7__empty-lock.yml", 7, {"default"}, 0, 0, 0},
    {"rattler-tests__v7__python-from-conda-only-lock.yml", 7, {"default"}, 19, 0, 0},
    {"rattler-tests__v7__sources-lock.yml", 7, {"default"}, 0, 0, 1},
};

Result<PixiLockFile> read(const std::string& name) {
  auto path = testing::data_dir() / "locks/pixi-lock" / name;
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(path));
  EXPECT_TRUE(looks_like_pixi_lock(text)) << name;
  return parse_pixi_lock(text, path.string());
}

TEST(PixiLockTestData, EveryFileReadsWithItsEnvironmentsAndPackages) {
  for (const auto& want : kFiles) {
    SCOPED_TRACE(want.file);
    auto lock = read(want.file);
    ASSERT_TRUE(lock) << lock.error().to_string();
    EXPECT_EQ(lock->version, want.version);
    std::vector<std::string> names;
    for (const auto& env : lock->environments) names.push_back(env.name);
    EXPECT_EQ(names, want.environments);
    size_t conda = 0, pypi = 0, source = 0;
    for (const auto& p : lock->packages) {
      switch (p.kind) {
        case PixiLockPackage::Kind::Conda:
          ++conda;
          // Every conda package has its name, version, build and subdir, written or from its URL.
          EXPECT_FALSE(p.name.empty() || p.version.empty() || p.build.empty() || p.subdir.empty())
              << p.location;
          EXPECT_TRUE(p.is_url()) << p.location;
          EXPECT_FALSE(p.sha256.empty() && p.md5.empty()) << p.location;
          break;
        case PixiLockPackage::Kind::Pypi:
          ++pypi;
          break;
        case PixiLockPackage::Kind::CondaSource:
          ++source;
          break;
      }
    }
    EXPECT_EQ(conda, want.conda);
    EXPECT_EQ(pypi, want.pypi);
    EXPECT_EQ(source, want.source);
  }
}

// Spot checks of what an install takes from a lock: the packages of one environment and platform,
// with the fields versions 4 (written out) and 6 (from the URL) give.
TEST(PixiLockTestData, EnvironmentPlatformPackagesHaveTheirFields) {
  auto v6 = read("pixi__examples__docker__pixi.lock");
  ASSERT_TRUE(v6) << v6.error().to_string();
  auto env = v6->environment("default");
  ASSERT_TRUE(env) << env.error().to_string();
  EXPECT_EQ((*env)->channels, std::vector<std::string>{"https://conda.anaconda.org/conda-forge/"});
  EXPECT_EQ((*env)->indexes, std::vector<std::string>{"https://pypi.org/simple"});
  auto linux = v6->packages_for(**env, "linux-64");
  ASSERT_TRUE(linux) << linux.error().to_string();
  ASSERT_EQ(linux->size(), 45u);
  const PixiLockPackage* openmp = (*linux)[1];
  EXPECT_EQ(openmp->name, "_openmp_mutex");
  EXPECT_EQ(openmp->version, "4.5");
  EXPECT_EQ(openmp->build, "2_gnu");
  EXPECT_EQ(openmp->subdir, "linux-64");
  EXPECT_EQ(openmp->build_number, 16);
  EXPECT_EQ(openmp->sha256, "fbe2c5e56a653bebb982eda4876a9178aedfc2b545f25d0ce9c4c0b508253d22");
  EXPECT_EQ(openmp->md5, "73aaf86a425cc6e73fcf236a5a46396d");
  EXPECT_EQ(openmp->size, 23621);
  EXPECT_EQ(openmp->depends,
            (std::vector<std::string>{"_libgcc_mutex 0.1 conda_forge", "libgomp >=7.5.0"}));
  const PixiLockPackage* local = linux->back();
  EXPECT_EQ(local->kind, PixiLockPackage::Kind::Pypi);
  EXPECT_EQ(local->location, "./");
  EXPECT_FALSE(local->is_url());
  EXPECT_EQ(local->name, "docker-project");

  auto v4 = read("pixi-docker__example__pixi.lock");
  ASSERT_TRUE(v4) << v4.error().to_string();
  auto prod = v4->environment("prod");
  ASSERT_TRUE(prod);
  auto packages = v4->packages_for(**prod, "linux-64");
  ASSERT_TRUE(packages) << packages.error().to_string();
  ASSERT_FALSE(packages->empty());
  EXPECT_EQ(packages->front()->name, "_libgcc_mutex");
  EXPECT_EQ(packages->front()->version, "0.1");
  EXPECT_EQ(packages->front()->build, "conda_forge");

  auto missing = v4->environment("staging");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_NE(missing.error().hint().find("default, prod"), std::string::npos)
      << missing.error().hint();
  auto windows = v6->packages_for(**env, "win-64");
  ASSERT_FALSE(windows);
  EXPECT_NE(windows.error().hint().find("linux-64"), std::string::npos) << windows.error().hint();
}

TEST(PixiLockParse, BadFilesNameTheirProblem) {
  struct Case {
    const char* text;
    Errc code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"version: 3\nenvironments: {}\n", Errc::Unsupported, "pixi.lock version 3 is not supported"},
      {"version: 8\nenvironments: {}\n", Errc::Unsupported, "pixi.lock version 8"},
      {"version: 6\n", Errc::InvalidInput, "missing 'environments'"},
      {"version: 6\nenvironments:\n  default:\n    packages:\n      linux-64:\n"
       "      - conda: https://x/linux-64/a-1-0.conda\npackages: []\n",
       Errc::InvalidInput, "is not in 'packages'"},
      {"version: 6\nenvironments: {}\npackages:\n- conda: https://x/linux-64/nothing.zip\n",
       Errc::InvalidInput, "is not a .conda or .tar.bz2 package"},
      {"version: 6\nenvironments: {}\npackages:\n- license: MIT\n", Errc::InvalidInput,
       "a package without"},
      {"version: 6\nenvironments: {}\npackages:\n- conda: https://x/linux-64/a-1-0.conda\n"
       "  size: big\n",
       Errc::InvalidInput, "'size' is not an integer"},
  };
  for (const auto& c : cases) {
    auto r = parse_pixi_lock(c.text, "pixi.lock");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code(), c.code) << r.error().to_string();
    EXPECT_NE(r.error().to_string().find(c.message), std::string::npos) << r.error().to_string();
    EXPECT_NE(r.error().to_string().find("pixi.lock:"), std::string::npos)
        << r.error().to_string();
  }
  EXPECT_FALSE(looks_like_pixi_lock("version: 1\nmetadata: {}\npackage: []\n"));
}

}  // namespace
}  // namespace envbuild::conda
