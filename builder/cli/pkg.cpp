// `envbuild pkg info FILE` and `envbuild pkg extract FILE DIR`: look inside a conda package.

#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "conda/extract.hpp"
#include "conda/package_metadata.hpp"

namespace envbuild::builder::cli {

namespace {

struct PkgOptions {
  std::string package;
  std::string destination;
  bool json = false;
};

Result<int> run_info(const PkgOptions& options) {
  ENVB_ASSIGN_OR_RETURN(conda::PackageMetadata meta, conda::read_package_metadata(options.package));
  std::map<std::string, int> by_type;
  int text = 0;
  int binary = 0;
  int no_link = 0;
  for (const auto& p : meta.paths) {
    ++by_type[std::string(conda::to_string(p.path_type))];
    if (!p.prefix_placeholder.empty()) ++(p.file_mode == conda::FileMode::Binary ? binary : text);
    if (p.no_link) ++no_link;
  }
  std::string license = meta.index.license;
  if (license.empty() && meta.about) license = meta.about->license;
  if (options.json) {
    nlohmann::json j;
    j["index"] = conda::to_json(meta.index);
    j["license"] = license;
    j["paths"] = {{"count", meta.paths.size()},
                  {"by_type", by_type},
                  {"placeholders", {{"text", text}, {"binary", binary}}},
                  {"no_link", no_link},
                  {"legacy", meta.paths_from_legacy}};
    if (meta.link) {
      nlohmann::json eps = nlohmann::json::array();
      for (const auto& ep : meta.link->entry_points) eps.push_back(ep.to_string());
      j["link"] = {{"noarch", meta.link->noarch_type}, {"entry_points", eps}};
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  const auto& i = meta.index;
  std::cout << "name:         " << i.name << "\n"
            << "version:      " << i.version << "\n"
            << "build:        " << i.build << " (number " << i.build_number << ")\n"
            << "subdir:       " << (i.subdir.empty() ? "(none)" : i.subdir) << "\n"
            << "noarch:       " << (i.noarch.empty() ? "no" : i.noarch) << "\n"
            << "license:      " << (license.empty() ? "(unknown)" : license) << "\n"
            << "depends:      " << i.depends.size() << "\n"
            << "paths:        " << meta.paths.size()
            << (meta.paths_from_legacy ? " (from legacy info/files)" : "") << "\n";
  for (const auto& [type, count] : by_type) std::cout << "  " << type << ": " << count << "\n";
  std::cout << "placeholders: text " << text << ", binary " << binary << "\n";
  if (no_link) std::cout << "no_link:      " << no_link << "\n";
  if (meta.link && !meta.link->entry_points.empty()) {
    std::cout << "entry points:\n";
    for (const auto& ep : meta.link->entry_points) std::cout << "  " << ep.to_string() << "\n";
  }
  return 0;
}

Result<int> run_extract(const PkgOptions& options) {
  conda::ExtractOptions extract;
  ENVB_ASSIGN_OR_RETURN(extract.limits, common::UnpackLimits::from_environment("ENVBUILD"));
  ENVB_ASSIGN_OR_RETURN(conda::ExtractStats stats,
                        conda::extract_package(options.package, options.destination, extract));
  if (options.json) {
    nlohmann::json j{{"files", stats.files},
                     {"directories", stats.directories},
                     {"symlinks", stats.symlinks},
                     {"hardlinks", stats.hardlinks},
                     {"bytes", stats.bytes}};
    std::cout << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

void register_pkg(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<PkgOptions>();
  CLI::App* pkg =
      app.add_subcommand("pkg", "Inspect or extract a conda package (.conda, .tar.bz2)");
  pkg->require_subcommand(1);

  CLI::App* info = pkg->add_subcommand("info", "Show index.json and a summary of paths.json");
  info->add_option("FILE", options->package, "Package file")->required();
  info->add_flag("--json", options->json, "Print JSON");
  info->callback([options, &outcome] { outcome.result = run_info(*options); });

  CLI::App* extract = pkg->add_subcommand(
      "extract", "Extract a package into DIR (atomically; DIR must not exist or be empty)");
  extract->add_option("FILE", options->package, "Package file")->required();
  extract->add_option("DIR", options->destination, "Destination directory")->required();
  extract->add_flag("--json", options->json, "Print what was extracted as JSON");
  extract->callback([options, &outcome] { outcome.result = run_extract(*options); });
}

}  // namespace envbuild::builder::cli
