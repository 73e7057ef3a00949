#include "builder/install/prepare.hpp"

#include <map>

namespace envbuild::builder {

std::string package_label(const conda::PackageRecord& record) {
  return record.name + "-" + record.version.to_string() + "-" + record.build;
}

Result<conda::PackageRecord> complete_record(const conda::PackageRecord& given,
                                             const PackageRef& ref, const CachedPackage& cached) {
  ENVB_ASSIGN_OR_RETURN(auto index, extracted_index_record(cached.extracted));
  if (!given.name.empty() && given.name != index.name)
    return fail(Errc::Integrity, archive_name(ref) + ": expected package '" + given.name +
                                     "' but its info/index.json says '" + index.name + "'");
  return installed_record(given, index, cached);
}

std::string Clobber::note() const {
  return path + ": " + earlier + ", then " + later + " (kept)";
}

std::string LinkScript::kind() const {
  return path.ends_with("-pre-link.sh") ? "pre-link" : "post-link";
}

std::string LinkScript::note() const {
  return package + ": " + kind() + " (" + path + ")";
}

PreparedEnvironment prepare_environment(const std::vector<PackagePlan>& plans) {
  PreparedEnvironment prepared;
  std::map<std::string, std::string> owner;  // path -> label of the package that has it now
  for (const auto& plan : plans) {
    const std::string label = package_label(plan.record);
    for (const auto& file : plan.files) {
      auto [it, inserted] = owner.emplace(file.path, label);
      if (inserted || it->second == label) continue;
      prepared.clobbers.push_back({file.path, it->second, label});
      it->second = label;
    }
    for (const auto& script : plan.link_scripts)
      prepared.link_scripts.push_back({plan.record.name, script});
  }
  return prepared;
}

}  // namespace envbuild::builder
