// `envbuild inspect IMAGE`: what an envbuild image holds, read from its manifest and config
// alone (nothing is unpacked, a registry image's layers are not downloaded): the packages with
// their channels (the lock label), the host requirements, and the layers with their packages
// (the config's history). A table, or --json. Labels are untrusted text: they are only printed.

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/cli/image_source.hpp"
#include "builder/cli/solve_options.hpp"
#include "builder/install/cache.hpp"
#include "common/format.hpp"
#include "conda/image_contract.hpp"
#include "conda/lockfile_explicit.hpp"
#include "oci/archive.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "oci/registry/auth.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;

struct InspectOptions {
  std::string image;
  std::string cache_dir;
  ImageSourceCliOptions source;
  bool json = false;
};


// "xz-5.2.6-h166bdaf_0.tar.bz2" -> name, version, build (conda's file names end so).
nlohmann::json package_of(const conda::ExplicitEntry& entry) {
  std::string stem(entry.file_name());
  for (std::string_view ext : {".tar.bz2", ".conda"})
    if (stem.ends_with(ext)) stem.resize(stem.size() - ext.size());
  const size_t build_at = stem.rfind('-');
  const size_t version_at =
      build_at == std::string::npos ? build_at : stem.rfind('-', build_at - 1);
  nlohmann::json out = {{"channel", std::string(entry.channel())},
                        {"subdir", std::string(entry.subdir())},
                        {"url", entry.url}};
  if (version_at == std::string::npos || version_at == 0) {
    out["name"] = stem;
    return out;
  }
  out["name"] = stem.substr(0, version_at);
  out["version"] = stem.substr(version_at + 1, build_at - version_at - 1);
  out["build"] = stem.substr(build_at + 1);
  return out;
}

// The packages of the lock label (empty when the image has none: not built by envbuild).
Result<nlohmann::json> packages_of(const std::map<std::string, std::string>& labels) {
  nlohmann::json out = nlohmann::json::array();
  auto it = labels.find(std::string(conda::kLockLabel));
  if (it == labels.end()) return out;
  ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_explicit_file(it->second, "the lock label"));
  for (const auto& entry : lock.entries) out.push_back(package_of(entry));
  return out;
}

// Each layer with the history entry that made it: an envbuild package layer names its packages.
nlohmann::json layers_of(const oci::Image& image) {
  std::vector<std::string> made_by;
  for (const auto& h : image.config().history)
    if (!h.empty_layer) made_by.push_back(h.created_by);
  nlohmann::json out = nlohmann::json::array();
  const auto& layers = image.manifest().layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string by = i < made_by.size() ? made_by[i] : "";
    nlohmann::json packages = nlohmann::json::array();
    for (std::string_view history : {conda::kCondaLayerHistory, conda::kPypiLayerHistory}) {
      if (!by.starts_with(history)) continue;
      std::string_view rest = std::string_view(by).substr(history.size());
      while (!rest.empty()) {
        const size_t end = rest.find(", ");
        packages.push_back(std::string(rest.substr(0, end)));
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
      }
    }
    out.push_back({{"digest", layers[i].digest.to_string()},
                   {"size", layers[i].size},
                   {"media_type", layers[i].media_type},
                   {"created_by", by},
                   {"packages", packages}});
  }
  return out;
}

Result<nlohmann::json> describe(const oci::Image& image) {
  const auto& labels = image.config().config.labels;
  auto label = [&](std::string_view key) -> nlohmann::json {
    auto it = labels.find(std::string(key));
    return it == labels.end() ? nlohmann::json(nullptr) : nlohmann::json(it->second);
  };
  std::vector<std::string> requirements;
  if (auto it = labels.find(std::string(conda::kRequirementsLabel)); it != labels.end())
    requirements = conda::split_requirements_label(it->second);
  ENVB_ASSIGN_OR_RETURN(nlohmann::json packages, packages_of(labels));
  return nlohmann::json{{"digest", image.descriptor().digest.to_string()},
                        {"platform", image.config().platform().to_string()},
                        {"conda_platform", label(conda::kPlatformLabel)},
                        {"prefix", label(conda::kPrefixLabel)},
                        {"envbuild_version", label(conda::kVersionLabel)},
                        {"requirements", requirements},
                        {"packages", packages},
                        {"layers", layers_of(image)}};
}

std::string text_of(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : "-";
}

void print_table(const nlohmann::json& d) {
  std::printf("image     %s\nplatform  %s (%s)\nprefix    %s\nrequires  ",
              text_of(d["digest"]).c_str(), text_of(d["platform"]).c_str(),
              text_of(d["conda_platform"]).c_str(), text_of(d["prefix"]).c_str());
  std::string requires_text;
  for (const auto& r : d["requirements"])
    requires_text += (requires_text.empty() ? "" : "; ") + r.get<std::string>();
  std::printf("%s\n\n%zu packages\n", requires_text.empty() ? "-" : requires_text.c_str(),
              d["packages"].size());
  for (const auto& p : d["packages"])
    std::printf("  %-32s %-16s %-24s %s\n", text_of(p["name"]).c_str(),
                text_of(p.value("version", nlohmann::json())).c_str(),
                text_of(p.value("build", nlohmann::json())).c_str(), text_of(p["channel"]).c_str());
  std::printf("\n%-5s %-10s %-14s %s\n", "LAYER", "SIZE", "DIGEST", "PACKAGES");
  size_t n = 0;
  for (const auto& l : d["layers"]) {
    std::string what;
    for (const auto& p : l["packages"]) what += (what.empty() ? "" : " ") + p.get<std::string>();
    if (what.empty()) what = "(" + l["created_by"].get<std::string>() + ")";
    std::printf("%-5zu %-10s %-14s %s\n", ++n, human_bytes(l["size"].get<uint64_t>()).c_str(),
                l["digest"].get<std::string>().substr(7, 12).c_str(), what.c_str());
  }
}

Result<int> run_inspect(const InspectOptions& o) {
  ENVB_ASSIGN_OR_RETURN(CacheLease cache, open_cache(o.cache_dir));
  ENVB_ASSIGN_OR_RETURN(auto image,
                        open_image_source(o.image, o.source, cache.root(), RegistryLayers::Skip)
                            .context("inspecting " + o.image));
  ENVB_ASSIGN_OR_RETURN(nlohmann::json d, describe(*image).context("inspecting " + o.image));
  if (o.json) {
    std::cout << d.dump(2) << "\n";
  } else {
    print_table(d);
  }
  return 0;
}

}  // namespace

void register_inspect(CLI::App& app, Outcome& outcome) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Show an image's packages (with channels), requirements and layers, without unpacking it");
  cmd->add_option("IMAGE", o->image,
                  "oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE or docker://REF")
      ->required();
  add_cache_option(cmd, o->cache_dir);
  cmd->add_option("--platform", o->source.platform,
                  "of an index: OS/ARCH[/VARIANT] (default: the host's)");
  add_registry_read_options(cmd, o->source);
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->footer("Example: envbuild inspect docker://ghcr.io/org/env:1 --json");
  cmd->callback([o, &outcome] { outcome.result = run_inspect(*o); });
}

}  // namespace envbuild::builder::cli
