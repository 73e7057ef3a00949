// The resolver over a source in memory: candidates, pip's rules (pre-releases, yanked files,
// tags, Requires-Python, extras, markers for the target), backtracking, conda first, and the
// explanation when nothing fits; then cross-checked against Debian's pip on a real index
// (tests/testing/pypi_server.py) with the test wheels.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "builder/pypi/resolver.hpp"
#include "conda/pypi/name.hpp"
#include "tests/testing/pypi.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder::pypi {
namespace {

namespace fs = std::filesystem;
using conda::pypi::PipEntry;
using testing::PypiServer;

// Projects as (filename -> METADATA) in memory; counts metadata reads.
class MemorySource final : public DistributionSource {
 public:
  // `requires` are Requires-Dist lines; `extra_headers` more header lines.
  void add(const std::string& filename, const std::vector<std::string>& depends = {},
           const std::string& extra_headers = "", bool yanked = false,
           const std::string& requires_python = "") {
    std::string name = filename.substr(0, filename.find('-'));
    std::string rest = filename.substr(filename.find('-') + 1);
    std::string version = rest.substr(0, rest.find('-'));
    if (version.ends_with(".tar.gz")) version.resize(version.size() - 7);
    std::string meta = "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n" +
                       extra_headers;
    for (const auto& r : depends) meta += "Requires-Dist: " + r + "\n";
    DistributionFile f;
    f.filename = filename;
    f.url = "https://files.example/" + filename;
    f.sha256 = std::string(64, 'a');
    f.yanked = yanked;
    f.requires_python = requires_python;
    files_[conda::pypi::normalize_name(name)].push_back(f);
    metadata_[filename] = meta;
  }
  Result<std::vector<DistributionFile>> files(const std::string& project) override {
    auto it = files_.find(project);
    return it == files_.end() ? std::vector<DistributionFile>() : it->second;
  }
  Result<conda::pypi::CoreMetadata> metadata(const DistributionFile& wheel) override {
    ++reads;
    return conda::pypi::parse_core_metadata(metadata_.at(wheel.filename), wheel.filename);
  }
  size_t reads = 0;

 private:
  std::map<std::string, std::vector<DistributionFile>> files_;
  std::map<std::string, std::string> metadata_;
};

std::vector<PipEntry> entries(std::initializer_list<std::string> lines) {
  std::vector<PipEntry> out;
  int n = 1;
  for (const auto& line : lines) {
    PipEntry e;
    e.requirement = *conda::pypi::Requirement::parse(line);
    e.origin = "environment.yml:" + std::to_string(n++);
    out.push_back(std::move(e));
  }
  return out;
}

ResolveOptions linux_311() {
  ResolveOptions o;
  o.target = *conda::pypi::PythonTarget::make("3.11.9", "", "linux-64", "2.17");
  return o;
}

std::string summary(const Resolution& r) {
  std::string out;
  for (const auto& w : r.wheels)
    out += (out.empty() ? "" : " ") + w.name + "==" + w.version.to_string();
  return out;
}

TEST(PypiResolve, PicksNewestThatFitsAndFollowsDependencies) {
  MemorySource source;
  source.add("app-1.0-py3-none-any.whl", {"lib>=1.0", "util; python_version < '3.8'"});
  source.add("app-2.0-py3-none-any.whl", {"lib>=2.0"});
  source.add("lib-1.5-py3-none-any.whl");
  source.add("lib-2.1-py3-none-any.whl");
  source.add("lib-3.0b1-py3-none-any.whl");  // a pre-release: not without --pre
  source.add("util-1.0-py3-none-any.whl");
  auto r = resolve(entries({"app"}), source, linux_311());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "app==2.0 lib==2.1");
  EXPECT_TRUE(r->wheels[0].requested);
  EXPECT_FALSE(r->wheels[1].requested);
  EXPECT_EQ(r->wheels[0].dependencies,
            (std::vector<std::pair<std::string, std::string>>{{"lib", ">=2.0"}}));
  ResolveOptions pre = linux_311();
  pre.pre = true;
  EXPECT_EQ(summary(*resolve(entries({"app"}), source, pre)), "app==2.0 lib==3.0b1");
}

TEST(PypiResolve, BacktracksToAnOlderVersion) {
  // Given app 2.0 needing lib>=2 and other needing lib<2, expect app 1.0 (what pip answers).
  MemorySource source;
  source.add("app-1.0-py3-none-any.whl", {"lib>=1"});
  source.add("app-2.0-py3-none-any.whl", {"lib>=2"});
  source.add("other-1.0-py3-none-any.whl", {"lib<2"});
  source.add("lib-1.0-py3-none-any.whl");
  source.add("lib-2.0-py3-none-any.whl");
  auto r = resolve(entries({"app", "other"}), source, linux_311());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "app==1.0 lib==1.0 other==1.0");
  EXPECT_GT(r->backtracks, 0u);
}

TEST(PypiResolve, TagsRequiresPythonAndYankedDecide) {
  MemorySource source;
  source.add("native-3.0-cp312-cp312-manylinux2014_x86_64.whl");  // another python
  source.add("native-2.0-cp311-cp311-manylinux_2_28_x86_64.whl");  // needs a newer glibc
  source.add("native-1.5-cp311-cp311-manylinux2014_x86_64.whl", {}, "", true);  // yanked
  source.add("native-1.0-cp311-cp311-manylinux2014_x86_64.whl");
  source.add("native-1.0-py3-none-any.whl");  // same version, a worse tag
  source.add("modern-2.0-py3-none-any.whl", {}, "", false, ">=3.12");
  source.add("modern-1.0-py3-none-any.whl", {}, "Requires-Python: >=3.8\n");
  auto r = resolve(entries({"native", "modern"}), source, linux_311());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "modern==1.0 native==1.0");
  EXPECT_EQ(r->wheels[1].file.filename, "native-1.0-cp311-cp311-manylinux2014_x86_64.whl");
  // A pin takes a yanked release when only it matches.
  EXPECT_EQ(summary(*resolve(entries({"native==1.5"}), source, linux_311())), "native==1.5");
}

TEST(PypiResolve, ExtrasAddTheirDependencies) {
  MemorySource source;
  source.add("web-1.0-py3-none-any.whl", {"core", "socks; extra == 'proxy'", "tls; extra == 'Secure'"},
             "Provides-Extra: proxy\nProvides-Extra: secure\n");
  source.add("core-1.0-py3-none-any.whl");
  source.add("socks-1.0-py3-none-any.whl");
  source.add("tls-1.0-py3-none-any.whl");
  auto r = resolve(entries({"web[proxy]"}), source, linux_311());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "core==1.0 socks==1.0 web==1.0");
  EXPECT_EQ(r->wheels.back().extras, std::vector<std::string>{"proxy"});
  EXPECT_EQ(summary(*resolve(entries({"web[secure]"}), source, linux_311())),
            "core==1.0 tls==1.0 web==1.0");
}

TEST(PypiResolve, CondaFirst) {
  // Given numpy from conda, a wheel needing numpy takes conda's; one needing another numpy
  // is a conflict that names the conda package.
  MemorySource source;
  source.add("numpy-2.0.0-cp311-cp311-manylinux2014_x86_64.whl");
  source.add("pandas-2.2.0-py3-none-any.whl", {"numpy>=1.23"});
  source.add("oldlib-1.0-py3-none-any.whl", {"numpy<1.20"});
  ResolveOptions o = linux_311();
  o.conda_installed["numpy"] = {*conda::pypi::Version::parse("1.26.4"),
                                "numpy-1.26.4-py311h64a7726_0", ""};
  auto r = resolve(entries({"pandas"}), source, o);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "pandas==2.2.0");
  EXPECT_EQ(r->from_conda, std::vector<std::string>{"numpy 1.26.4 (conda numpy-1.26.4-py311h64a7726_0)"});
  auto conflict = resolve(entries({"oldlib"}), source, o);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code(), Errc::Unsatisfiable);
  EXPECT_NE(conflict.error().message().find("numpy<1.20 (required by oldlib 1.0)"), std::string::npos)
      << conflict.error().message();
  EXPECT_NE(conflict.error().message().find("conda installs numpy 1.26.4 (numpy-1.26.4-py311h64a7726_0)"),
            std::string::npos)
      << conflict.error().message();
}

TEST(PypiResolve, ExplainsWhatIsThere) {
  MemorySource source;
  source.add("tool-1.0-py3-none-any.whl");
  source.add("tool-2.0.tar.gz");  // an sdist only: never built
  source.add("tool-3.0-cp312-cp312-manylinux2014_x86_64.whl");
  auto r = resolve(entries({"tool>=2"}), source, linux_311());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Unsatisfiable);
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("tool>=2 (required by the pip: section (environment.yml:1))"), std::string::npos) << m;
  EXPECT_NE(m.find("wheels for this target: 1.0"), std::string::npos) << m;
  EXPECT_NE(m.find("only as source distributions (envbuild installs wheels only, no build backend "
                   "runs): 2.0"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("wheels only for other platforms or pythons: 3.0"), std::string::npos) << m;
  // Two parents that disagree are both named.
  MemorySource clash;
  clash.add("a-1.0-py3-none-any.whl", {"c<2"});
  clash.add("b-1.0-py3-none-any.whl", {"c>=2"});
  clash.add("c-1.0-py3-none-any.whl");
  clash.add("c-2.0-py3-none-any.whl");
  auto both = resolve(entries({"a", "b"}), clash, linux_311());
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().message().find("c<2 (required by a 1.0)"), std::string::npos)
      << both.error().message();
  EXPECT_NE(both.error().message().find("c>=2 (required by b 1.0)"), std::string::npos)
      << both.error().message();
}

TEST(PypiResolve, NoDepsAndMarkersForTheTarget) {
  MemorySource source;
  source.add("app-1.0-py3-none-any.whl", {"lib", "winonly; sys_platform == 'win32'"});
  source.add("lib-1.0-py3-none-any.whl");
  ResolveOptions o = linux_311();
  o.no_deps = true;
  EXPECT_EQ(summary(*resolve(entries({"app"}), source, o)), "app==1.0");
  // A requirement whose marker is false for the target is left out.
  EXPECT_EQ(summary(*resolve(entries({"app", "lib; python_version < '3'"}), source, o)), "app==1.0");
  auto r = resolve(entries({"app"}), source, linux_311());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "app==1.0 lib==1.0");
}

TEST(PypiResolve, DirectUrlIsTheOnlyCandidate) {
  MemorySource source;
  source.add("lib-1.0-py3-none-any.whl");
  source.add("lib-2.0-py3-none-any.whl");
  source.add("app-1.0-py3-none-any.whl", {"lib"});
  auto pinned = entries({"app"});
  PipEntry url;
  url.requirement = *conda::pypi::Requirement::parse("lib @ https://files.example/lib-1.0-py3-none-any.whl");
  url.origin = "environment.yml:9";
  pinned.push_back(url);
  auto r = resolve(pinned, source, linux_311());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(summary(*r), "app==1.0 lib==1.0");
  EXPECT_TRUE(r->wheels[1].direct_url);
}

// The resolver and pip on the same index, python 3.11 on linux-64 with glibc 2.17: the same
// distributions, versions and files.
class PipAgreementTest : public testing::TempDirTest {};

TEST_F(PipAgreementTest, SameAnswersAsPip) {
  const fs::path& wheels = testing::pypi_test_wheels();
  PypiServer server(wheels, dir_ / "index.log");
  ASSERT_NE(server.port(), 0);
  auto target = conda::pypi::PythonTarget::make("3.11", "", "linux-64", "2.17");
  ASSERT_TRUE(target);
  const auto platforms = conda::pypi::platform_tags(*target);
  struct Case {
    std::vector<std::string> requirements;
    bool pre = false;
  };
  const std::vector<Case> cases = {
      {{"alpha"}},                   // newest wheel, a newer sdist-only version, a dependency
      {{"alpha<2", "beta"}},         // a pin and a free requirement
      {{"delta"}},                   // platform wheels: right python and glibc only
      {{"epsilon[fast]"}},           // an extra whose dependency's newest needs python 3.12
      {{"app", "other"}},            // backtracking to app 1.0
      {{"beta>=2.1b1"}},             // a specifier naming a pre-release
      {{"beta"}, true},              // --pre
      {{"tool", "delta==1.0"}},      // a chain with a pin
      {{"alpha>=3"}},                // only an sdist: nobody finds one
  };
  size_t agreed = 0;
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& r : c.requirements) joined += r + " ";
    SCOPED_TRACE(joined + (c.pre ? "--pre" : ""));
    std::string pip_error;
    auto want = testing::pip_dry_run(server.simple_url(), c.requirements, "3.11", platforms,
                                     pip_error, c.pre ? std::vector<std::string>{"--pre"}
                                                      : std::vector<std::string>{});
    std::vector<conda::pypi::PipEntry> entries;
    for (const auto& r : c.requirements) {
      conda::pypi::PipEntry e;
      e.requirement = *conda::pypi::Requirement::parse(r);
      entries.push_back(e);
    }
    IndexOptions index_options;
    index_options.index_urls = {server.simple_url()};
    index_options.cache.root = dir_ / "cache";
    PackageIndex index(index_options);
    ResolveOptions o;
    o.target = *target;
    o.pre = c.pre;
    auto got = resolve(entries, index, o);
    if (want.empty()) {
      ASSERT_FALSE(got) << "pip found nothing: " << pip_error;
      EXPECT_EQ(got.error().code(), Errc::Unsatisfiable);
      continue;
    }
    ASSERT_TRUE(got) << got.error().to_string();
    std::vector<testing::PipChoice> ours;
    for (const auto& w : got->wheels) ours.push_back({w.name, w.version.to_string(), w.file.filename});
    EXPECT_EQ(ours, want);
    ++agreed;
  }
  EXPECT_EQ(agreed, cases.size() - 1);  // every case but the sdist-only one has an answer
}

}  // namespace
}  // namespace envbuild::builder::pypi
