#pragma once

// Helpers of the solve tests (reach, shards): a local copy of the real 2018 defaults channel,
// and what identifies a solved package.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "builder/solve/solv/pool.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::builder::testing {

/// `dir`/{linux-64,noarch}/repodata.json: conda's index4 test data (a subset of the 2018
/// defaults channel), split by subdir; `indent` as json::dump takes it.
inline std::filesystem::path write_index4_channel(const std::filesystem::path& dir,
                                                  int indent = -1) {
  using nlohmann::json;
  json flat = json::parse(envbuild::testing::read_text(envbuild::testing::data_dir() /
                                                       "repodata/defaults/index4-subset.json"));
  json out = {{"linux-64", {{"info", {{"subdir", "linux-64"}}}, {"packages", json::object()}}},
              {"noarch", {{"info", {{"subdir", "noarch"}}}, {"packages", json::object()}}}};
  for (auto& [fn, rec] : flat.items())
    out[rec.value("subdir", "") == "noarch" ? "noarch" : "linux-64"]["packages"][fn] = rec;
  for (auto& [subdir, doc] : out.items())
    envbuild::testing::write_text(dir / subdir / "repodata.json", doc.dump(indent));
  return dir;
}

/// `dir`/{linux-64,noarch}/repodata.json whose records depend on names libsolv reads as
/// patterns or behind a channel: app on "lib*", app2 on "^zlib(ng)?$", app3 on
/// "somechannel:dep3 >=1", app4 on "LIB*" (libsolv compares names in lower case); libfoo,
/// zlibng, dep3 and other provide. The name each app brings in: patterned_dependencies().
inline std::filesystem::path write_patterned_dependency_channel(const std::filesystem::path& dir) {
  using nlohmann::json;
  json linux = {{"info", {{"subdir", "linux-64"}}}, {"packages", json::object()}};
  auto add = [&](const std::string& name, json depends) {
    linux["packages"][name + "-1-0.tar.bz2"] = {
        {"name", name},       {"version", "1"},     {"build", "0"},
        {"build_number", 0},  {"depends", depends}, {"subdir", "linux-64"}};
  };
  add("app", {"lib*"});
  add("app2", {"^zlib(ng)?$"});
  add("app3", {"somechannel:dep3 >=1"});
  add("app4", {"LIB*"});
  for (const char* name : {"libfoo", "zlibng", "dep3", "other"}) add(name, json::array());
  envbuild::testing::write_text(dir / "linux-64" / "repodata.json", linux.dump());
  envbuild::testing::write_text(dir / "noarch" / "repodata.json",
                                R"({"info": {"subdir": "noarch"}, "packages": {}})");
  return dir;
}

/// The root spec and the name it brings in, of write_patterned_dependency_channel.
inline std::vector<std::pair<std::string, std::string>> patterned_dependencies() {
  return {{"app", "libfoo"}, {"app2", "zlibng"}, {"app3", "dep3"}, {"app4", "libfoo"}};
}

/// Whether the solution holds a package named `name`.
inline bool holds_package(const std::vector<solv::SolvedRecord>& records, const std::string& name) {
  for (const auto& r : records)
    if (r.name == name) return true;
  return false;
}

/// What identifies a solved package (its URL too when `with_url`: the same channel).
inline std::vector<std::string> identities(const std::vector<solv::SolvedRecord>& records,
                                           bool with_url = false) {
  std::vector<std::string> out;
  for (const auto& r : records)
    out.push_back(r.name + " " + r.version + " " + r.build + " " + r.fn + " " + r.sha256 + " " +
                  r.md5 + " " + std::to_string(r.size) + " " + r.subdir +
                  (with_url ? " " + r.url : ""));
  return out;
}

}  // namespace envbuild::builder::testing
