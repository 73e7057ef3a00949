#include "builder/install/plan_cache.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "builder/install/cache.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/json.hpp"
#include "conda/prefix_replace.hpp"
#include "oci/manifest.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

nlohmann::json body_of(const PackagePlan& plan, uint64_t size) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : plan.files)
    files.push_back({f.path, f.kind == PlannedFile::Kind::Symlink ? "l" : "f", f.target,
                     f.private_copy, f.no_link});
  nlohmann::json relocations = nlohmann::json::array();
  for (const auto& r : plan.relocations) relocations.push_back(conda::to_json(r));
  return {{"files", files},
          {"relocations", relocations},
          {"link_scripts", plan.link_scripts},
          {"noarch_python", plan.noarch_python},
          {"size", size}};
}

Result<CachedPlan> plan_from_body(const nlohmann::json& body) {
  CachedPlan out;
  for (const auto& f : body.at("files")) {
    PlannedFile file;
    file.path = f.at(0).get<std::string>();
    const auto kind = f.at(1).get<std::string>();
    if (kind != "f" && kind != "l") return fail(Errc::Integrity, "unknown file kind " + kind);
    file.kind = kind == "l" ? PlannedFile::Kind::Symlink : PlannedFile::Kind::File;
    file.target = f.at(2).get<std::string>();
    file.private_copy = f.at(3).get<bool>();
    file.no_link = f.at(4).get<bool>();
    out.plan.files.push_back(std::move(file));
  }
  for (const auto& r : body.at("relocations")) {
    ENVB_ASSIGN_OR_RETURN(auto record, conda::relocation_record_from_json(r));
    out.plan.relocations.push_back(std::move(record));
  }
  out.plan.link_scripts = body.at("link_scripts").get<std::vector<std::string>>();
  out.plan.noarch_python = body.at("noarch_python").get<bool>();
  out.size = body.at("size").get<uint64_t>();
  return out;
}

}  // namespace

std::string plan_key(const conda::PackageRecord& record, const InstallTarget& target,
                     bool python_matters) {
  nlohmann::json key = {{"format", kPlanFormat},
                        {"sha256", record.sha256},
                        {"record", conda::to_json(record)},
                        {"prefix", target.prefix},
                        {"subdir", target.subdir}};
  if (python_matters && target.python)
    key["python"] = std::to_string(target.python->major) + "." +
                    std::to_string(target.python->minor) + ":" + target.python->site_packages_path;
  return common::sha256_hex(oci::canonical_json(key));
}

std::optional<CachedPlan> PlanCache::load(const std::string& key,
                                          const conda::PackageRecord& record) const {
  auto text = common::read_file(path_of(key));
  if (!text) return std::nullopt;
  const size_t newline = text->find('\n');
  if (newline == std::string::npos) return std::nullopt;
  const std::string_view body(text->data() + newline + 1, text->size() - newline - 1);
  // A damaged entry (nullopt below): plan the package again.
  auto header = common::parse_json(std::string_view(*text).substr(0, newline), "plan header");
  if (!header) return std::nullopt;
  try {
    if (header->at("format") != kPlanFormat || header->at("key") != key ||
        header->at("sha256") != common::sha256_hex(body))
      return std::nullopt;
    auto parsed_body = common::parse_json(body, "plan");
    if (!parsed_body) return std::nullopt;
    auto plan = plan_from_body(*parsed_body);
    if (!plan) return std::nullopt;
    plan->plan.record = record;
    touch_used(path_of(key));
    return std::move(*plan);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

Result<void> PlanCache::store(const std::string& key, const PackagePlan& plan,
                              uint64_t size) const {
  const std::string body = body_of(plan, size).dump() + "\n";
  const nlohmann::json header = {
      {"format", kPlanFormat}, {"key", key}, {"sha256", common::sha256_hex(body)}};
  const fs::path file = path_of(key);
  ENVB_TRY(common::make_dirs(dir_));
  const fs::path temp = common::temp_sibling(file);
  auto written = common::write_scratch_file(temp, header.dump() + "\n" + body);
  if (written && std::rename(temp.c_str(), file.c_str()) != 0)
    written = common::errno_error("rename", temp.string(), errno);
  if (!written) {
    std::error_code ec;
    fs::remove(temp, ec);
  }
  return written;
}

}  // namespace envbuild::builder
