#pragma once

// Helpers of the solve tests (reach, shards): a local copy of the real 2018 defaults channel,
// and what identifies a solved package.

#include <filesystem>
#include <string>
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
