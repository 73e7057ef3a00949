#include "builder/pypi/environment.hpp"

#include <algorithm>

#include "builder/install/prepare.hpp"
#include "builder/pypi/index.hpp"
#include "common/fs.hpp"
#include "common/parallel.hpp"
#include "common/root_dir.hpp"
#include "conda/package_metadata.hpp"
#include "conda/pypi/installed.hpp"
#include "conda/pypi/metadata.hpp"
#include "conda/pypi/name.hpp"

namespace envbuild::builder::pypi {

namespace fs = std::filesystem;
using conda::pypi::PipEntry;

namespace {

constexpr size_t kMaxMetadata = size_t{16} << 20;

// A package that can install Python distributions: it depends on python, or is noarch: python.
bool may_install_distributions(const conda::PackageRecord& r) {
  if (r.noarch == conda::NoArchType::Python) return true;
  return std::any_of(r.depends.begin(), r.depends.end(), [](const std::string& d) {
    return d == "python" || d.starts_with("python ") || d.starts_with("python>") ||
           d.starts_with("python<") || d.starts_with("python=");
  });
}

// The package's files (info/paths.json, else info/files), read beneath its extracted root.
Result<std::vector<std::string>> package_paths(const common::RootDir& root, const std::string& label) {
  std::vector<std::string> out;
  ENVB_ASSIGN_OR_RETURN(auto paths_json, root.read_regular("info/paths.json"));
  if (paths_json) {
    ENVB_ASSIGN_OR_RETURN(auto entries, conda::parse_paths_json(*paths_json, label + " paths.json"));
    for (const auto& e : entries) out.push_back(e.path);
    return out;
  }
  ENVB_ASSIGN_OR_RETURN(auto files, root.read_regular("info/files"));
  if (!files) return out;
  size_t start = 0;
  while (start < files->size()) {
    size_t end = files->find('\n', start);
    if (end == std::string::npos) end = files->size();
    if (end > start) out.push_back(files->substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<void> refuse_source_trees(const std::vector<PipEntry>& entries) {
  for (const auto& e : entries) {
    if (e.kind == PipEntry::Kind::Requirement) continue;
    const char* what = e.kind == PipEntry::Kind::Editable ? "an editable install (-e)"
                       : e.kind == PipEntry::Kind::Vcs    ? "a VCS checkout"
                                                          : "a source tree or sdist";
    return fail(Errc::Unsupported, e.origin + ": '" + e.location + "' is " + what +
                                       ": it needs a build backend, and images and lock files "
                                       "take wheels only")
        .with_hint("build a wheel of it (python -m build --wheel) and list the .whl, or use "
                   "`envbuild install`, where the environment's own pip builds it");
  }
  return ok();
}

}  // namespace

std::string glibc_version(const std::vector<conda::VirtualPackage>& virtual_packages) {
  for (const auto& v : virtual_packages)
    if (v.name == "__glibc") return v.version;
  return "";
}

Result<conda::pypi::PythonTarget> python_target(const std::vector<conda::PackageRecord>& records,
                                                const std::string& subdir,
                                                const std::string& glibc) {
  for (const auto& r : records)
    if (r.name == "python")
      return conda::pypi::PythonTarget::make(r.version.to_string(), r.build, subdir, glibc);
  return fail(Errc::InvalidInput, "the pip: section needs python among the conda dependencies")
      .with_hint("add python (e.g. python 3.11.*) to the environment's dependencies");
}

Result<std::map<std::string, CondaDistribution>> conda_distributions(
    const std::vector<conda::PackageRecord>& records, const std::vector<fs::path>& extracted) {
  std::map<std::string, CondaDistribution> out;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string label = package_label(records[i]);
    ENVB_ASSIGN_OR_RETURN(auto root, common::RootDir::open(extracted[i]));
    ENVB_ASSIGN_OR_RETURN(auto paths, package_paths(root, label));
    for (const auto& found : conda::pypi::distribution_metadata_paths(paths)) {
      ENVB_ASSIGN_OR_RETURN(auto text, root.read_regular(found.path, kMaxMetadata));
      CondaDistribution d;
      d.package = label;
      std::string name = found.name_hint;
      if (text) {
        if (auto meta = conda::pypi::parse_core_metadata(*text, label + " " + found.path)) {
          name = conda::pypi::normalize_name(meta->name);
          d.version = meta->version;
          d.metadata = std::move(*text);
          out[name] = std::move(d);
          continue;
        }
      }
      // Metadata that does not parse: the directory name says enough to not install it twice.
      auto version = conda::pypi::Version::parse(found.version_hint);
      if (!version) continue;
      d.version = *version;
      out[name] = std::move(d);
    }
  }
  return out;
}

Result<PipSolution> solve_pip_section(const std::vector<conda::PipRequirement>& lines,
                                      const std::vector<conda::PackageRecord>& records,
                                      const PipSolveOptions& o) {
  PipSolution out;
  conda::pypi::PipSectionContext context;
  context.base_dir = o.base_dir;
  context.file_name = o.file_name;
  ENVB_ASSIGN_OR_RETURN(out.section, conda::pypi::parse_pip_section(lines, context));
  if (!o.allow_source_trees) ENVB_TRY(refuse_source_trees(out.section.entries));
  for (const auto& e : out.section.entries)
    if (e.kind != PipEntry::Kind::Requirement) out.source_entries.push_back(e);
  ENVB_ASSIGN_OR_RETURN(auto target, python_target(records, o.subdir, o.glibc));

  // Conda first: what the conda packages install is installed.
  std::vector<conda::PackageRecord> candidates;
  std::vector<PackageRef> refs;
  for (const auto& r : records) {
    if (!may_install_distributions(r)) continue;
    candidates.push_back(r);
    refs.push_back({r.url, r.fn, r.sha256, r.md5, r.size});
  }
  ResolveOptions resolve_options;
  resolve_options.target = target;
  resolve_options.pre = out.section.options.pre;
  resolve_options.no_deps = out.section.options.no_deps;
  if (!refs.empty()) {
    PackageCache cache(o.cache);
    ENVB_ASSIGN_OR_RETURN(auto fetched,
                          cache.fetch(refs).context("fetching the conda packages that may install "
                                                    "Python distributions"));
    std::vector<fs::path> extracted;
    for (const auto& f : fetched) extracted.push_back(f.extracted);
    ENVB_ASSIGN_OR_RETURN(resolve_options.conda_installed, conda_distributions(candidates, extracted));
  }

  IndexOptions index_options;
  index_options.index_urls.clear();
  const auto& options = out.section.options;
  if (!options.no_index) {
    index_options.index_urls.push_back(options.index_url.value_or(std::string(kDefaultIndexUrl)));
    for (const auto& url : options.extra_index_urls) index_options.index_urls.push_back(url);
  }
  index_options.find_links = o.find_links.empty() ? options.find_links : o.find_links;
  index_options.cache = o.cache;
  PackageIndex index(index_options);
  ENVB_ASSIGN_OR_RETURN(out.resolution, resolve(out.section.entries, index, resolve_options)
                                            .context("resolving the pip: section of " + o.file_name));
  for (const auto& w : out.resolution.wheels) {
    ENVB_ASSIGN_OR_RETURN(PackageRef ref, package_ref(w.file, o.cache));
    out.wheels.push_back({w.name, w.version.to_string(), w.file.filename, w.file.url, ref.sha256,
                          w.requested, w.direct_url, w.dependencies});
  }
  out.credentialed_origins = index.credentialed_origins();
  return out;
}

Result<std::vector<WheelPlan>> fetch_and_plan_wheels(const std::vector<WheelToInstall>& wheels,
                                                     const std::vector<PackagePlan>& packages,
                                                     const InstallTarget& target,
                                                     const PackageCacheOptions& cache_options) {
  std::vector<PackageRef> refs;
  for (const auto& w : wheels) {
    // Only a wheel on this machine may come without a sha256 (pixi.lock paths): hashed here.
    DistributionFile file;
    file.url = w.url;
    file.filename = w.filename;
    file.sha256 = w.sha256;
    ENVB_ASSIGN_OR_RETURN(PackageRef ref, package_ref(file, cache_options));
    refs.push_back(std::move(ref));
  }
  PackageCache cache(cache_options);
  ENVB_ASSIGN_OR_RETURN(auto fetched, cache.fetch(refs).context("fetching wheels"));
  std::vector<WheelPlan> plans(wheels.size());
  ENVB_TRY(common::for_each_index(wheels.size(), cache_options.jobs, [&](size_t i) -> Result<void> {
    InstallTarget own = target;
    own.staging = target.staging / ("wheel-" + std::to_string(i));
    ENVB_ASSIGN_OR_RETURN(plans[i], plan_wheel(wheels[i], fetched[i].extracted, own)
                                        .context("installing " + wheel_label(wheels[i])));
    return ok();
  }));
  ENVB_TRY(check_overwrites(packages, plans));
  return plans;
}

}  // namespace envbuild::builder::pypi
