// Proof that libsolv really runs in conda mode: repodata loaded with repo_add_conda, conda
// version constraints and build strings honoured.

#include <gtest/gtest.h>

#include "builder/solve/solv/pool.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "builder/solve/solv/internal/libc_wraps.hpp"
#include "builder/solve/solv/internal/prune.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder::solv {
namespace {

// Given a tiny channel where the newest `app` needs a `lib` that conflicts with the pinned one,
// expect the solver to pick the older `app`, and conda ordering (1.10 > 1.9) to hold.
constexpr const char* kRepodata = R"({
  "info": {"subdir": "linux-64"},
  "packages": {
    "app-2.0-h1_0.tar.bz2": {"name": "app", "version": "2.0", "build": "h1_0", "build_number": 0,
                             "depends": ["lib >=2"], "subdir": "linux-64"},
    "app-1.5-h1_0.tar.bz2": {"name": "app", "version": "1.5", "build": "h1_0", "build_number": 0,
                             "depends": ["lib >=1.9,<2", "zlib"], "subdir": "linux-64"},
    "lib-1.9-h2_0.tar.bz2": {"name": "lib", "version": "1.9", "build": "h2_0", "build_number": 0,
                             "depends": [], "subdir": "linux-64"},
    "lib-1.10-h2_0.tar.bz2": {"name": "lib", "version": "1.10", "build": "h2_0", "build_number": 0,
                              "depends": [], "subdir": "linux-64"},
    "lib-2.1-h2_0.tar.bz2": {"name": "lib", "version": "2.1", "build": "h2_0", "build_number": 0,
                             "depends": [], "subdir": "linux-64"},
    "zlib-1.3-h0_1.tar.bz2": {"name": "zlib", "version": "1.3", "build": "h0_1", "build_number": 1,
                              "depends": ["__glibc >=2.17"], "subdir": "linux-64"},
    "zlib-1.3-h0_0.tar.bz2": {"name": "zlib", "version": "1.3", "build": "h0_0", "build_number": 0,
                              "depends": [], "subdir": "linux-64"}
  }
})";

std::vector<SolvedPackage> solve_ok(Pool& pool, const std::vector<std::string>& specs) {
  auto outcome = pool.solve(specs);
  EXPECT_TRUE(outcome.has_value()) << (outcome ? "" : outcome.error().to_string());
  if (!outcome) return {};
  auto* packages = std::get_if<std::vector<SolvedPackage>>(&*outcome);
  EXPECT_NE(packages, nullptr);
  return packages ? *packages : std::vector<SolvedPackage>{};
}

TEST(LibsolvConda, PicksOlderAppWhenPinConflictsWithNewest) {
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("test", kRepodata).has_value());
  pool.add_virtual_package("__glibc", "2.36");
  auto got = solve_ok(pool, {"app", "lib <2"});
  std::vector<SolvedPackage> want = {{"app", "1.5", "h1_0", "test"},
                                     {"lib", "1.10", "h2_0", "test"},
                                     {"zlib", "1.3", "h0_1", "test"}};
  EXPECT_EQ(got, want);
}

TEST(LibsolvConda, HonoursBuildStringAndVirtualPackages) {
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("test", kRepodata).has_value());
  // Without __glibc the build-number-1 zlib is not installable; h0_0 is chosen.
  auto got = solve_ok(pool, {"zlib 1.3.*"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].build, "h0_0");
  Pool pool2;
  ASSERT_TRUE(pool2.add_repodata_json("test", kRepodata).has_value());
  auto got2 = solve_ok(pool2, {"zlib 1.3 h0_0", "app=2"});
  ASSERT_EQ(got2.size(), 3u);
  EXPECT_EQ(got2[0], (SolvedPackage{"app", "2.0", "h1_0", "test"}));
  EXPECT_EQ(got2[1], (SolvedPackage{"lib", "2.1", "h2_0", "test"}));
  EXPECT_EQ(got2[2].build, "h0_0");
}

TEST(LibsolvConda, ConflictIsExplainedNotAnError) {
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("test", kRepodata).has_value());
  auto outcome = pool.solve({"app >=2", "lib <2"});
  ASSERT_TRUE(outcome.has_value());
  auto* conflict = std::get_if<Conflict>(&*outcome);
  ASSERT_NE(conflict, nullptr);
  ASSERT_FALSE(conflict->problems.empty());
  EXPECT_NE(conflict->problems[0].find("lib"), std::string::npos) << conflict->problems[0];
}

TEST(LibsolvConda, BadRepodataIsAnError) {
  Pool pool;
  auto result = pool.add_repodata_json("broken", "{\"packages\": [");
  EXPECT_FALSE(result.has_value());
}

// libsolv 0.7.23 dereferences NULL on an array inside "info" (found by tests/fuzz/repodata_fuzz):
// refused before libsolv sees it, from memory and from a file; arrays elsewhere are fine.
TEST(LibsolvConda, ArrayInsideInfoIsRefusedNotACrash) {
  const std::string hostile =
      R"({"info": {"subdir": "linux-64", "x": {"depends": ["a", "b"]}}, "packages": {}})";
  Pool pool;
  auto from_memory = pool.add_repodata_json("hostile", hostile);
  ASSERT_FALSE(from_memory.has_value());
  EXPECT_NE(from_memory.error().to_string().find("\"info\" holds an array"), std::string::npos)
      << from_memory.error().to_string();
  // libsolv decodes keys: an escaped "info" is an "info" (it crashed libsolv the same way).
  for (const char* escaped : {R"({"\u0069nfo": {"a": ["x"]}, "packages": {}})",
                              R"({"packages": {}, "in\u0066o": {"a": ["x"]}})",
                              R"({"info": {"subdir": "linux-64"}, "packages": {}, "\u0069nfo": {"a": ["x"]}})"}) {
    auto refused = pool.add_repodata_json("hostile", escaped);
    ASSERT_FALSE(refused.has_value()) << escaped;
    EXPECT_NE(refused.error().to_string().find("\"info\" holds an array"), std::string::npos);
  }
  const std::string fine =
      R"({"info": {"subdir": "linux-64", "note": "[not an array]"}, "packages": {"a-1-0.tar.bz2":)"
      R"( {"name": "a", "version": "1", "build": "0", "build_number": 0, "depends": ["b"],)"
      R"( "subdir": "linux-64"}}})";
  EXPECT_TRUE(pool.add_repodata_json("fine", fine).has_value());
}

// A solve only indexes the records whose names the specs reach (pool.cpp): each solve of one
// pool marks them anew, and a name pattern, which matches names rather than naming one, keeps
// every record.
TEST(LibsolvConda, EachSolveReachesItsOwnNamesAndPatternsKeepAll) {
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("test", kRepodata).has_value());
  pool.add_virtual_package("__glibc", "2.36");
  EXPECT_EQ(solve_ok(pool, {"zlib"}),
            (std::vector<SolvedPackage>{{"zlib", "1.3", "h0_1", "test"}}));
  std::vector<SolvedPackage> app = {{"app", "2.0", "h1_0", "test"}, {"lib", "2.1", "h2_0", "test"}};
  EXPECT_EQ(solve_ok(pool, {"app"}), app);
  EXPECT_EQ(solve_ok(pool, {"ap*"}), app);
  EXPECT_EQ(solve_ok(pool, {"app", "lib <2"}),
            (std::vector<SolvedPackage>{{"app", "1.5", "h1_0", "test"},
                                        {"lib", "1.10", "h2_0", "test"},
                                        {"zlib", "1.3", "h0_1", "test"}}));
}

// Before libsolv builds its rules, a solve leaves out the records no solution can hold (a
// spec's name in builds the spec does not allow, records whose dependencies nothing left
// provides, records that constrain a spec's name out of reach, lower channels of a name under
// strict priority): the answers stay the ones of the whole pool, and a failed solve still
// explains itself with the records left out.
constexpr const char* kBest = R"({"info": {"subdir": "linux-64"}, "packages": {
  "foo-1-0.tar.bz2": {"name": "foo", "version": "1", "build": "0", "build_number": 0,
                      "depends": ["missing"], "subdir": "linux-64"},
  "python-3.8.1-0.tar.bz2": {"name": "python", "version": "3.8.1", "build": "0",
                             "build_number": 0, "depends": [], "subdir": "linux-64"},
  "python-3.11.2-0.tar.bz2": {"name": "python", "version": "3.11.2", "build": "0",
                              "build_number": 0, "depends": [], "subdir": "linux-64"},
  "app-2-py38.tar.bz2": {"name": "app", "version": "2", "build": "py38", "build_number": 0,
                         "depends": ["python >=3.8,<3.9", "tool"], "subdir": "linux-64"},
  "app-1-py311.tar.bz2": {"name": "app", "version": "1", "build": "py311", "build_number": 0,
                          "depends": ["python >=3.11,<3.12"], "subdir": "linux-64"},
  "tool-9-0.tar.bz2": {"name": "tool", "version": "9", "build": "0", "build_number": 0,
                       "depends": [], "constrains": ["python <3.9"], "subdir": "linux-64"},
  "old-1-0.tar.bz2": {"name": "old", "version": "1", "build": "0", "build_number": 0,
                      "depends": ["app 2.*"], "subdir": "linux-64"}
}})";
constexpr const char* kOther = R"({"info": {"subdir": "linux-64"}, "packages": {
  "foo-2-0.tar.bz2": {"name": "foo", "version": "2", "build": "0", "build_number": 0,
                      "depends": [], "subdir": "linux-64"}
}})";

TEST(LibsolvConda, RecordsNoSolutionCanHoldAreLeftOutWithTheSameAnswers) {
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("best", kBest, 2).has_value());
  ASSERT_TRUE(pool.add_repodata_json("other", kOther, 1).has_value());
  auto names = [](const RecordOutcome& outcome) {
    std::vector<std::string> out;
    if (const auto* records = std::get_if<std::vector<SolvedRecord>>(&outcome))
      for (const SolvedRecord& r : *records) out.push_back(r.name + "-" + r.version);
    return out;
  };
  // python 3.8 goes (the spec), app 2 with it (its python), tool by its constraint (old is
  // not reachable from these specs at all).
  auto py311 = pool.solve_records({{"python 3.11.*", "app"}, true});
  ASSERT_TRUE(py311.has_value()) << py311.error().to_string();
  EXPECT_EQ(names(*py311), (std::vector<std::string>{"app-1", "python-3.11.2"}));
  EXPECT_EQ(pool.last_phases().dropped_records, 3u);
  // Strict priority: the best channel has foo, and its only build cannot be installed; a
  // lower channel's foo does not step in (it does with flexible priority).
  auto strict = pool.solve_records({{"foo"}, true});
  ASSERT_TRUE(strict.has_value());
  EXPECT_TRUE(std::holds_alternative<Conflict>(*strict));
  auto flexible = pool.solve_records({{"foo"}, false});
  ASSERT_TRUE(flexible.has_value());
  EXPECT_EQ(names(*flexible), (std::vector<std::string>{"foo-2"}));
  // Unsatisfiable: the explanation names the records the narrowed solve left out.
  auto conflict = pool.solve_records({{"python 3.11.*", "old"}, true});
  ASSERT_TRUE(conflict.has_value());
  const auto* why = std::get_if<Conflict>(&*conflict);
  ASSERT_NE(why, nullptr);
  std::string text;
  for (const auto& details : why->details)
    for (const std::string& d : details) text += d + "\n";
  EXPECT_NE(text.find("app-2-py38"), std::string::npos) << text;
  EXPECT_EQ(pool.last_phases().dropped_records, 0u);
}

// A build that no spec allows and no reachable record's dependency accepts can never be
// installed (nothing pulls it in): it is left out before libsolv pairs it with every other
// build of its name, and the answer stays.
TEST(LibsolvConda, BuildsNothingRequiresAreLeftOut) {
  constexpr const char* kRepo = R"({"info": {"subdir": "linux-64"}, "packages": {
    "a-1-0.tar.bz2": {"name": "a", "version": "1", "build": "0", "build_number": 0,
                      "depends": ["b >=2"]},
    "b-1-0.tar.bz2": {"name": "b", "version": "1", "build": "0", "build_number": 0, "depends": []},
    "b-2-0.tar.bz2": {"name": "b", "version": "2", "build": "0", "build_number": 0,
                      "depends": ["c"]},
    "b-3-0.tar.bz2": {"name": "b", "version": "3", "build": "0", "build_number": 0,
                      "depends": ["c 1.*"]},
    "c-1-0.tar.bz2": {"name": "c", "version": "1", "build": "0", "build_number": 0, "depends": []},
    "c-2-0.tar.bz2": {"name": "c", "version": "2", "build": "0", "build_number": 0, "depends": []}
  }})";
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("ch", kRepo, 1).has_value());
  auto solved = pool.solve_records({{"a"}, true});
  ASSERT_TRUE(solved.has_value()) << solved.error().to_string();
  const auto* records = std::get_if<std::vector<SolvedRecord>>(&*solved);
  ASSERT_NE(records, nullptr);
  std::vector<std::string> got;
  for (const SolvedRecord& r : *records) got.push_back(r.name + "-" + r.version);
  EXPECT_EQ(got, (std::vector<std::string>{"a-1", "b-3", "c-1"}));
  // b-1 (below "b >=2"); c-2 stays: b-2's plain "c" accepts it.
  EXPECT_EQ(pool.last_phases().dropped_records, 1u);
  // A spec that allows b-1 brings it back into play.
  auto pinned = pool.solve_records({{"a", "b 1.*"}, true});
  ASSERT_TRUE(pinned.has_value());
  EXPECT_TRUE(std::holds_alternative<Conflict>(*pinned));
}

// Builds of one version that differ only in their build (same dependencies, constraints and
// track features) are interchangeable in every rule: libsolv always takes the better-ranked one,
// so the others are left out before it pairs them with every build of their name. A name that
// a spec, dependency or constraint selects by build string keeps all its builds.
TEST(LibsolvConda, RedundantBuildsAreLeftOutUnlessSelectedByBuild) {
  constexpr const char* kRepo = R"({"info": {"subdir": "linux-64"}, "packages": {
    "a-1-0.tar.bz2": {"name": "a", "version": "1", "build": "0", "build_number": 0,
                      "depends": ["b"]},
    "b-1-h0_0.tar.bz2": {"name": "b", "version": "1", "build": "h0_0", "build_number": 0,
                         "depends": ["z"]},
    "b-1-h1_1.tar.bz2": {"name": "b", "version": "1", "build": "h1_1", "build_number": 1,
                         "depends": ["z"]},
    "b-1-h2_0.tar.bz2": {"name": "b", "version": "1", "build": "h2_0", "build_number": 0,
                         "depends": ["z"], "track_features": "f"},
    "z-1-0.tar.bz2": {"name": "z", "version": "1", "build": "0", "build_number": 0, "depends": []},
    "c-1-0.tar.bz2": {"name": "c", "version": "1", "build": "0", "build_number": 0,
                      "depends": ["b * h0*"]},
    "d-1-0.tar.bz2": {"name": "d", "version": "1", "build": "0", "build_number": 0,
                      "depends": [], "constrains": ["b * h0_0"]}
  }})";
  auto solve = [&](std::vector<std::string> specs) -> std::pair<std::vector<std::string>, size_t> {
    Pool pool;
    EXPECT_TRUE(pool.add_repodata_json("ch", kRepo, 1).has_value());
    auto solved = pool.solve_records({std::move(specs), true});
    EXPECT_TRUE(solved.has_value());
    std::vector<std::string> got;
    if (const auto* records = solved ? std::get_if<std::vector<SolvedRecord>>(&*solved) : nullptr)
      for (const SolvedRecord& r : *records) got.push_back(r.name + "-" + r.build);
    return {got, pool.last_phases().dropped_records};
  };
  // b h0_0 is h1_1 with a lower build number; h2_0 tracks a feature, so it is not the same.
  auto [plain, plain_dropped] = solve({"a"});
  EXPECT_EQ(plain, (std::vector<std::string>{"a-0", "b-h1_1", "z-0"}));
  EXPECT_EQ(plain_dropped, 1u);
  // Selected by build string: by the spec, by a dependency, by a constraint.
  EXPECT_EQ(solve({"b 1 h0_0"}).first, (std::vector<std::string>{"b-h0_0", "z-0"}));
  EXPECT_EQ(solve({"c"}).first, (std::vector<std::string>{"b-h0_0", "c-0", "z-0"}));
  EXPECT_EQ(solve({"a", "d"}).first, (std::vector<std::string>{"a-0", "b-h0_0", "d-0", "z-0"}));
}

/// A bare libsolv pool holding one conda repo, with every record in its `considered` map: for
/// the steps of builder/solve/solv/internal that work on the pool itself.
class RawCondaPool {
 public:
  explicit RawCondaPool(std::string repodata) {
    pool_setdisttype(pool_, DISTTYPE_CONDA);
    ::Repo* repo = repo_create(pool_, "ch");
    std::unique_ptr<FILE, decltype(&fclose)> fp(
        fmemopen(repodata.data(), repodata.size(), "r"), &fclose);
    loaded_ = fp && repo_add_conda(repo, fp.get(), 0) == 0;
    map_init(&considered_, pool_->nsolvables);
    map_setall(&considered_);
    pool_->considered = &considered_;
  }
  ~RawCondaPool() {
    pool_->considered = nullptr;
    map_free(&considered_);
    pool_free(pool_);
  }
  RawCondaPool(const RawCondaPool&) = delete;
  RawCondaPool& operator=(const RawCondaPool&) = delete;
  [[nodiscard]] bool loaded() const { return loaded_; }
  ::Pool* get() { return pool_; }
  ::Map* considered() { return &considered_; }

 private:
  ::Pool* pool_ = pool_create();
  ::Map considered_{};
  bool loaded_ = false;
};

/// Records of `a`: versions 1.0 to 1.29, three builds each (h0..h2, build numbers 0..2).
std::string a_builds() {
  std::string out;
  for (int v = 0; v < 30; ++v)
    for (int b = 0; b < 3; ++b)
      out += (v || b ? "," : "") + std::string("\"a-1.") + std::to_string(v) + "-h" +
             std::to_string(b) + ".tar.bz2\": {\"name\": \"a\", \"version\": \"1." +
             std::to_string(v) + "\", \"build\": \"h" + std::to_string(b) +
             "\", \"build_number\": " + std::to_string(b) + ", \"depends\": []}";
  return out;
}

// A build selected under a name pattern (libsolv matches `b*` against every name) leaves every
// name's builds alone: which names it selects is not known.
TEST(LibsolvConda, RedundantBuildsStayWhenAPatternSelectsBuilds) {
  std::string repo = R"({"info": {"subdir": "linux-64"}, "packages": {
    "b-1-h0_0.tar.bz2": {"name": "b", "version": "1", "build": "h0_0", "build_number": 0, "depends": []},
    "b-1-h1_1.tar.bz2": {"name": "b", "version": "1", "build": "h1_1", "build_number": 1, "depends": []}
  }})";
  RawCondaPool raw(repo);
  ASSERT_TRUE(raw.loaded());
  ::Pool* p = raw.get();
  for (const char* spec : {"b* 1 h0_0", "^b$ 1 h0_0", "b 1", "b 1 h0_0"}) {
    SCOPED_TRACE(spec);
    map_setall(raw.considered());
    const std::string_view text = spec;
    // Only a plain version spec lets the lower build go.
    EXPECT_EQ(internal::drop_equivalent_builds(p, {pool_conda_matchspec(p, spec)}, nullptr,
                                               raw.considered()),
              text == "b 1" ? 1u : 0u);
  }
}

// The providers carried across the pool's second whatprovides index (after the records a solve
// cannot use are dropped) are the ones libsolv works out again over the records left.
TEST(LibsolvConda, CarriedRelProvidersAreWhatLibsolvWorksOutAgain) {
  RawCondaPool raw(R"({"info": {"subdir": "linux-64"}, "packages": {)" + a_builds() + "}}");
  ASSERT_TRUE(raw.loaded());
  ::Pool* p = raw.get();
  ::Map& considered = *raw.considered();
  pool_createwhatprovides(p);
  std::vector<Id> deps;
  for (const char* spec : {"a", "a >=1.10", "a 1.2*", "a <1.5|>1.25", "a * h1", "a 1.7 h2",
                           "a >=9", "a *"})
    deps.push_back(pool_conda_matchspec(p, spec));
  for (Id d : deps) (void)pool_whatprovides(p, d);
  const auto known = internal::known_rel_providers(p);
  size_t before = 0;
  for (const auto& [d, providers] : known.lists) before += providers.size();
  EXPECT_GE(known.lists.size(), 6u);
  EXPECT_GT(before, 150u);
  for (Id s = 2; s < p->nsolvables; s += 2) MAPCLR(&considered, s);  // every other record goes
  pool_createwhatprovides(p);
  internal::restore_rel_providers(p, known, &considered);
  size_t after = 0;
  for (Id d : deps) {
    SCOPED_TRACE(pool_dep2str(p, d));
    std::vector<Id> carried;
    for (Id* q = pool_whatprovides_ptr(p, d); *q; ++q) carried.push_back(*q);
    if (ISRELDEP(d)) p->whatprovides_rel[GETRELID(d)] = 0;  // worked out again by libsolv
    std::vector<Id> again;
    for (Id* q = pool_whatprovides_ptr(p, d); *q; ++q) again.push_back(*q);
    EXPECT_EQ(carried, again);
    after += again.size();
  }
  EXPECT_GT(after, 50u);
  EXPECT_LT(after, before);
}

// Providers worked out ahead of libsolv (each spec matched once per version, not per build) are
// the lists libsolv works out itself; specs it must read itself (a build part, a glob name) are
// left to it.
TEST(LibsolvConda, VersionProvidersWorkedOutAheadAreLibsolvsOwn) {
  std::string repo = R"({"info": {"subdir": "linux-64"}, "packages": {)" + a_builds();
  std::string depends = R"(["a", "a >=1.10", "a 1.2*", "a <1.5|>1.25", "a * h1", "a 1.7 h2",
      "a >=9", "a *", "A >=1.3", "a* >=1.3", "a 1.1.*", "a ==1.20", "a !=1.3,<1.6", "b >=1.2"])";
  repo += R"(, "b-1.5-0.tar.bz2": {"name": "b", "version": "1.5", "build": "0", "depends": []})";
  repo += R"(, "user-1-0.tar.bz2": {"name": "user", "version": "1", "build": "0", "depends": )" +
          depends + "}}}";
  RawCondaPool raw(repo);
  ASSERT_TRUE(raw.loaded());
  ::Pool* p = raw.get();
  ::Map& considered = *raw.considered();
  MAPCLR(&considered, 5);  // a record left out of the solve is no provider
  pool_createwhatprovides(p);
  // Not "a" (a name), "a * h1" and "a 1.7 h2" (builds), "a* >=1.3" (a glob); "A" is read as "a".
  EXPECT_EQ(internal::work_out_version_providers(p, &considered), 10u);
  const ::Solvable* user = p->solvables + (p->nsolvables - 1);
  ASSERT_STREQ(pool_id2str(p, user->name), "user");
  size_t total = 0;
  for (const Id* dp = user->repo->idarraydata + user->dep_requires; *dp; ++dp) {
    SCOPED_TRACE(pool_dep2str(p, *dp));
    std::vector<Id> ahead;
    for (Id* q = pool_whatprovides_ptr(p, *dp); *q; ++q) ahead.push_back(*q);
    if (ISRELDEP(*dp)) p->whatprovides_rel[GETRELID(*dp)] = 0;  // worked out again by libsolv
    std::vector<Id> libsolv;
    for (Id* q = pool_whatprovides_ptr(p, *dp); *q; ++q) libsolv.push_back(*q);
    EXPECT_EQ(ahead, libsolv);
    EXPECT_EQ(std::count(libsolv.begin(), libsolv.end(), 5), 0);
    total += libsolv.size();
  }
  EXPECT_GT(total, 300u);
}

// Conda's order of preferences where libsolv's conda policy has another (docs/design.md,
// "Solving", issue 20). Builds of one version and build number: the newer timestamp wins, the
// build string does not decide ("hb" sorts above "ha"), unless the builds pin one dependency
// differently. Track features: `app`'s newer build needs the featured `mutex`; conda minimizes
// features over the whole solution, before dependencies' versions and after requested packages'
// versions.
constexpr const char* kPreferences = R"({
  "info": {"subdir": "linux-64"},
  "packages": {
    "tie-1.0-hb_4.tar.bz2": {"name": "tie", "version": "1.0", "build": "hb_4", "build_number": 4,
                             "timestamp": 1510178605778, "depends": []},
    "tie-1.0-ha_4.tar.bz2": {"name": "tie", "version": "1.0", "build": "ha_4", "build_number": 4,
                             "timestamp": 1510351119846, "depends": []},
    "num-1.0-ha_5.tar.bz2": {"name": "num", "version": "1.0", "build": "ha_5", "build_number": 5,
                             "timestamp": 1000, "depends": []},
    "num-1.0-hb_4.tar.bz2": {"name": "num", "version": "1.0", "build": "hb_4", "build_number": 4,
                             "timestamp": 1510351119846, "depends": []},
    "notime-1.0-hb_0.tar.bz2": {"name": "notime", "version": "1.0", "build": "hb_0",
                                "build_number": 0, "depends": []},
    "notime-1.0-ha_0.tar.bz2": {"name": "notime", "version": "1.0", "build": "ha_0",
                                "build_number": 0, "timestamp": 1000, "depends": []},
    "ver-2.0-h_0.tar.bz2": {"name": "ver", "version": "2.0", "build": "h_0", "build_number": 0,
                            "timestamp": 1000, "depends": []},
    "ver-1.0-h_0.tar.bz2": {"name": "ver", "version": "1.0", "build": "h_0", "build_number": 0,
                            "timestamp": 2000, "depends": []},
    "mutex-1.0-plain.tar.bz2": {"name": "mutex", "version": "1.0", "build": "plain",
                                "build_number": 0, "timestamp": 1000, "depends": []},
    "mutex-1.0-feat.tar.bz2": {"name": "mutex", "version": "1.0", "build": "feat",
                               "build_number": 0, "timestamp": 2000, "depends": [],
                               "track_features": "feat"},
    "app-1.0-a_0.tar.bz2": {"name": "app", "version": "1.0", "build": "a_0", "build_number": 0,
                            "timestamp": 1000, "depends": ["mutex * plain"]},
    "app-1.0-b_0.tar.bz2": {"name": "app", "version": "1.0", "build": "b_0", "build_number": 0,
                            "timestamp": 2000, "depends": ["mutex * feat"]},
    "pin-1.0-b_0.tar.bz2": {"name": "pin", "version": "1.0", "build": "b_0", "build_number": 0,
                            "timestamp": 1000, "depends": ["ver 2.0"]},
    "pin-1.0-a_0.tar.bz2": {"name": "pin", "version": "1.0", "build": "a_0", "build_number": 0,
                            "timestamp": 2000, "depends": ["ver 1.0"]},
    "featonly-1.0-h_0.tar.bz2": {"name": "featonly", "version": "1.0", "build": "h_0",
                                 "build_number": 0, "depends": ["mutex * feat"]},
    "up-2.0-h_0.tar.bz2": {"name": "up", "version": "2.0", "build": "h_0", "build_number": 0,
                           "depends": ["mutex * feat"]},
    "up-1.0-h_0.tar.bz2": {"name": "up", "version": "1.0", "build": "h_0", "build_number": 0,
                           "depends": ["mutex * plain"]}
  }
})";

struct PreferenceCase {
  const char* why;
  std::vector<std::string> specs;
  std::vector<std::string> want;  // "name version build", by name
};

const std::vector<PreferenceCase>& preference_cases() {
  static const std::vector<PreferenceCase> cases = {
      {"same version and build number: the newer timestamp", {"tie"}, {"tie 1.0 ha_4"}},
      {"a higher build number before a newer timestamp", {"num"}, {"num 1.0 ha_5"}},
      {"no timestamp counts as the oldest", {"notime"}, {"notime 1.0 ha_0"}},
      {"a higher version before a newer timestamp", {"ver"}, {"ver 2.0 h_0"}},
      {"builds pinning different versions of a dependency: not the newer timestamp",
       {"pin"},
       {"pin 1.0 b_0", "ver 2.0 h_0"}},
      {"a dependency's track feature loses (b_0 is newer and the larger build string)",
       {"app"},
       {"app 1.0 a_0", "mutex 1.0 plain"}},
      {"a feature the request needs stays", {"featonly"}, {"featonly 1.0 h_0", "mutex 1.0 feat"}},
      {"a requested version before fewer features", {"up"}, {"mutex 1.0 feat", "up 2.0 h_0"}},
  };
  return cases;
}

std::vector<std::string> triples(const RecordOutcome& outcome) {
  std::vector<std::string> out;
  if (const auto* records = std::get_if<std::vector<SolvedRecord>>(&outcome))
    for (const SolvedRecord& r : *records) out.push_back(r.name + " " + r.version + " " + r.build);
  return out;
}

TEST(LibsolvConda, Issue20CondasOrderOfPreferences) {
  Pool pool;
  ASSERT_TRUE(pool.add_repodata_json("test", kPreferences).has_value());
  for (const auto& c : preference_cases()) {
    SCOPED_TRACE(c.why);
    auto got = pool.solve_records({c.specs, true});
    ASSERT_TRUE(got.has_value()) << got.error().to_string();
    EXPECT_EQ(triples(*got), c.want);
  }
  // The build number reported is the record's own, not the rank it got for the tie.
  auto tie = pool.solve_records({{"tie"}, true});
  ASSERT_TRUE(tie.has_value());
  const auto* records = std::get_if<std::vector<SolvedRecord>>(&*tie);
  ASSERT_NE(records, nullptr);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].build_number, 4u);
  EXPECT_EQ((*records)[0].timestamp, 1510351119000u);  // libsolv keeps seconds
}

class LibsolvCondaCache : public envbuild::testing::TempDirTest {};

// The ranking is made once, when the JSON is read, and the .solv cache keeps it.
TEST_F(LibsolvCondaCache, Issue20PreferencesSurviveTheSolvCache) {
  const auto json = dir_ / "repodata.json";
  envbuild::testing::write_text(json, kPreferences);
  const auto solv = dir_ / "repodata.solv";
  {
    Pool cold;
    auto id = cold.add_repo_json_file(RepoInfo{"test", "linux-64", "", 0, 1}, json);
    ASSERT_TRUE(id.has_value()) << id.error().to_string();
    ASSERT_TRUE(cold.write_repo_solv(*id, solv).has_value());
  }
  Pool warm;
  ASSERT_TRUE(warm.add_repo_solv_file(RepoInfo{"test", "linux-64", "", 0, 1}, solv).has_value());
  for (const auto& c : preference_cases()) {
    SCOPED_TRACE(c.why);
    auto got = warm.solve_records({c.specs, true});
    ASSERT_TRUE(got.has_value()) << got.error().to_string();
    EXPECT_EQ(triples(*got), c.want);
  }
}


// libsolv's sorts (qsort_r, wrapped at link time) give exactly glibc's order: both are stable,
// so elements that compare equal keep their order. Keys in a small range make many ties; the
// rest of each element tells them apart.
TEST(StableQsort, SameBytesAsGlibcForEverySize) {
  auto by_key = [](const void* a, const void* b, void* calls) {
    ++*static_cast<size_t*>(calls);
    const unsigned char ka = *static_cast<const unsigned char*>(a);
    const unsigned char kb = *static_cast<const unsigned char*>(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
  std::mt19937 random(7);
  for (size_t size : {4, 8, 12, 16, 20, 24, 28, 32, 40}) {
    for (size_t count : {0, 1, 2, 7, 100, 5000}) {
      SCOPED_TRACE("size " + std::to_string(size) + ", count " + std::to_string(count));
      std::vector<unsigned char> input(size * count);
      for (auto& byte : input) byte = static_cast<unsigned char>(random());
      for (size_t i = 0; i < count; ++i) input[i * size] %= 5;  // the key: many ties
      std::vector<unsigned char> wrapped = input, glibc = input;
      size_t calls = 0;
      __wrap_qsort_r(wrapped.data(), count, size, by_key, &calls);
      __real_qsort_r(glibc.data(), count, size, by_key, &calls);
      EXPECT_EQ(wrapped, glibc);
      for (size_t i = 1; i < count; ++i) ASSERT_LE(wrapped[(i - 1) * size], wrapped[i * size]);
    }
  }
}

// The link really sends libsolv's solv_sort to the wrapper: its comparisons are the wrapper's,
// not glibc's (the two sorts compare in different orders).
TEST(StableQsort, LibsolvSortsGoThroughTheWrapper) {
  using Calls = std::vector<std::pair<int, int>>;
  auto logged = [](const void* a, const void* b, void* log) {
    const int x = *static_cast<const int*>(a), y = *static_cast<const int*>(b);
    static_cast<Calls*>(log)->emplace_back(x, y);
    return (x % 97) - (y % 97);
  };
  std::vector<int> input(1000);
  for (int i = 0; i < 1000; ++i) input[i] = (i * 7919) % 1000;
  Calls by_libsolv, by_wrapper, by_glibc;
  std::vector<int> a = input, b = input, c = input;
  solv_sort(a.data(), a.size(), sizeof(int), logged, &by_libsolv);
  __wrap_qsort_r(b.data(), b.size(), sizeof(int), logged, &by_wrapper);
  __real_qsort_r(c.data(), c.size(), sizeof(int), logged, &by_glibc);
  EXPECT_EQ(a, c);
  EXPECT_EQ(by_libsolv, by_wrapper);
  EXPECT_NE(by_libsolv, by_glibc);
}

}  // namespace
}  // namespace envbuild::builder::solv
