#include "builder/image/image_build.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "builder/image/internal/image_plan.hpp"
#include "builder/image/referrers.hpp"
#include "builder/image/registry_cache.hpp"
#include "builder/install/cache.hpp"
#include "builder/install/plan_cache.hpp"
#include "builder/install/prepare.hpp"
#include "builder/pypi/environment.hpp"
#include "builder/pypi/lock.hpp"
#include "builder/solve/channel.hpp"
#include "builder/solve/solve.hpp"
#include "common/clock.hpp"
#include "common/format.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/json.hpp"
#include "common/parallel.hpp"
#include "common/version.hpp"
#include "conda/environment_file.hpp"
#include "conda/image_contract.hpp"
#include "conda/lock_environment.hpp"
#include "conda/lockfile_conda_lock.hpp"
#include "conda/lockfile_explicit.hpp"
#include "conda/lockfile_pixi.hpp"
#include "conda/pypi/tags.hpp"
#include "oci/archive.hpp"
#include "oci/layout.hpp"
#include "oci/manifest.hpp"
#include "oci/reference.hpp"
#include "oci/registry/client.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

namespace {

using common::ms_since;

std::string last_segment(const std::string& url) {
  auto slash = url.rfind('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

// The name a depends entry is about ("python >=3.8" -> "python").
std::string depend_name(const std::string& spec) {
  size_t end = spec.find_first_of(" =<>!~[");
  std::string name = spec.substr(0, end);
  if (auto colons = name.rfind("::"); colons != std::string::npos) name = name.substr(colons + 2);
  return name;
}

using internal::layer_mtime;
using internal::Prepared;
using internal::prepare;
using internal::stage_plan;

Result<fs::path> cache_root_of(const ImageBuildOptions& o) {
  if (!o.cache_root.empty()) return o.cache_root;
  return default_cache_root();
}


std::string layer_key(const ImageBuild& build, const std::vector<size_t>& members,
                      const std::vector<size_t>& wheels, const ImageBuildOptions& o,
                      const std::optional<conda::PythonInfo>& python) {
  nlohmann::json key = nlohmann::json::object();
  key["format"] = kLayerFormat;
  key["prefix"] = o.prefix;
  key["subdir"] = o.subdir;
  key["compression"] = std::string(oci::to_string(o.compression));
  key["level"] = o.level.value_or(oci::default_level(o.compression));
  key["mtime"] = layer_mtime(o);
  nlohmann::json packages = nlohmann::json::array();
  bool noarch_python = false;
  std::vector<size_t> sorted = members;
  std::sort(sorted.begin(), sorted.end(), [&](size_t a, size_t b) {
    return package_label(build.records[a]) < package_label(build.records[b]);
  });
  for (size_t i : sorted) {
    const auto& r = build.records[i];
    noarch_python = noarch_python || r.noarch == conda::NoArchType::Python;
    packages.push_back({{"sha256", r.sha256}, {"record", conda::to_json(r)}});
  }
  key["packages"] = packages;
  if (!wheels.empty()) {
    // A wheel's files depend on the wheel, the python it is installed for, and what the
    // environment asked of it (REQUESTED, direct_url.json).
    nlohmann::json list = nlohmann::json::array();
    for (size_t i : wheels) {
      const auto& w = build.wheels[i];
      list.push_back({{"sha256", w.sha256}, {"name", w.name}, {"version", w.version},
                      {"requested", w.requested},
                      {"direct_url", w.direct_url ? common::redact_url(w.url) : std::string()}});
    }
    key["wheels"] = list;
    noarch_python = true;
  }
  if (noarch_python && python)
    key["python"] = std::to_string(python->major) + "." + std::to_string(python->minor) + ":" +
                    python->site_packages_path;
  return common::sha256_hex(oci::canonical_json(key));
}

}  // namespace

namespace internal {

int64_t layer_mtime(const ImageBuildOptions& o) {
  return o.source_date_epoch ? *o.source_date_epoch : oci::default_source_date_epoch();
}

namespace {

InstallTarget install_target(const Prepared& p, const ImageBuildOptions& o, size_t k) {
  InstallTarget target;
  target.prefix = o.prefix;
  target.subdir = o.subdir;
  target.python = p.python;
  target.staging = p.staging->path() / std::to_string(k);
  return target;
}

}  // namespace

Result<void> stage_plan(Prepared& p, const ImageBuildOptions& o, size_t k) {
  if (p.staged[k]) return ok();
  // No requested spec: the record (and so the layer) must not depend on the environment.
  ENVB_ASSIGN_OR_RETURN(
      p.plans[k], plan_package(p.build.records[k], p.extracted[k], "", install_target(p, o, k)));
  p.staged[k] = 1;
  return ok();
}

// The wheels of the pip: section, fetched and planned for the image prefix after the packages
// (a wheel may not overwrite a package's file).
Result<void> plan_wheels(Prepared& p, const EnvironmentSpec& env, const ImageBuildOptions& o,
                         const PackageCacheOptions& cache) {
  if (env.wheels.empty()) return ok();
  // Plans from the plan cache know their paths, which is all the overwrite check needs.
  p.build.wheels = env.wheels;
  std::sort(p.build.wheels.begin(), p.build.wheels.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  InstallTarget target;
  target.prefix = o.prefix;
  target.subdir = o.subdir;
  target.python = p.python;
  target.staging = p.staging->path() / "wheels";
  ENVB_ASSIGN_OR_RETURN(p.wheels,
                        pypi::fetch_and_plan_wheels(p.build.wheels, p.plans, target, cache));
  return ok();
}

namespace {

// Dependencies for layer depths: packages on packages, wheels on wheels and on python.
std::vector<std::vector<size_t>> layer_dependencies(const ImageBuild& build) {
  const size_t n = build.records.size();
  std::map<std::string, size_t> by_name;
  for (size_t k = 0; k < n; ++k) by_name[build.records[k].name] = k;
  std::vector<std::vector<size_t>> deps(n + build.wheels.size());
  for (size_t k = 0; k < n; ++k)
    for (const auto& d : build.records[k].depends)
      if (auto it = by_name.find(depend_name(d)); it != by_name.end())
        deps[k].push_back(it->second);
  std::map<std::string, size_t> wheel_index;
  for (size_t w = 0; w < build.wheels.size(); ++w) wheel_index[build.wheels[w].name] = n + w;
  for (size_t w = 0; w < build.wheels.size(); ++w) {
    if (auto python = by_name.find("python"); python != by_name.end())
      deps[n + w].push_back(python->second);
    for (const auto& [dep, spec] : build.wheels[w].dependencies)
      if (auto it = wheel_index.find(dep); it != wheel_index.end()) deps[n + w].push_back(it->second);
  }
  return deps;
}

}  // namespace

// Groups build.records (link order, `sizes` each) and build.wheels (`wheel_sizes` each,
// labelled `wheel_labels`; candidates after the packages, above python) into layers under the
// budget, then envbuild's own top layer. `key_of` names a layer's cache entry (none for an
// estimate).
Result<void> group_into_layers(
    ImageBuild& build, const std::vector<uint64_t>& sizes,
    const std::vector<std::string>& wheel_labels, const std::vector<uint64_t>& wheel_sizes,
    const ImageBuildOptions& o,
    const std::function<std::string(const std::vector<size_t>&, const std::vector<size_t>&)>&
        key_of) {
  const size_t n = build.records.size();
  const auto depths = dependency_depths(layer_dependencies(build));
  std::vector<LayerCandidate> candidates;
  for (size_t k = 0; k < n; ++k)
    candidates.push_back(
        {build.records[k].name, package_label(build.records[k]), sizes[k], depths[k]});
  for (size_t w = 0; w < wheel_sizes.size(); ++w)
    candidates.push_back(
        {"pypi:" + build.wheels[w].name, wheel_labels[w], wheel_sizes[w], depths[n + w]});
  LayeringOptions layering;
  layering.max_layers = o.max_layers;
  layering.base_layers = build.base_layers;
  layering.reserved = 1;
  if (o.max_layers < build.base_layers + 2)
    return fail(Errc::InvalidInput, "--max-layers " + std::to_string(o.max_layers) +
                                        " leaves no room: the base has " +
                                        std::to_string(build.base_layers) +
                                        " layers, and the environment needs at least 2");
  for (auto& group : plan_layers(candidates, layering)) {
    PlannedLayer layer;
    // Members in link order: a later package wins a clobbered path, as in conda.
    for (size_t m : group.members) {
      if (m < n)
        layer.packages.push_back(m);
      else
        layer.wheels.push_back(m - n);
    }
    std::sort(layer.packages.begin(), layer.packages.end());
    std::sort(layer.wheels.begin(), layer.wheels.end());
    layer.size = group.size;
    layer.reason = group.reason;
    if (key_of) layer.cache_key = key_of(layer.packages, layer.wheels);
    build.layers.push_back(std::move(layer));
  }
  PlannedLayer top;
  top.reason = "environment files (history, state, relocation index)";
  build.layers.push_back(std::move(top));
  return ok();
}

Result<Prepared> prepare(const EnvironmentSpec& env, const ImageBuildOptions& o) {
  if (o.prefix.empty() || o.prefix.front() != '/' || o.prefix == "/")
    return fail(Errc::InvalidInput, "prefix '" + o.prefix + "' must be an absolute path below /");
  if (env.records.empty()) return fail(Errc::InvalidInput, "the environment has no packages");
  auto progress = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  Prepared p;
  ENVB_ASSIGN_OR_RETURN(p.cache_root, cache_root_of(o));
  ENVB_ASSIGN_OR_RETURN(p.build.platform, oci_platform_for_subdir(o.subdir));
  if (o.base) {
    p.build.base_layers = o.base->manifest().layers.size();
    const auto& bc = o.base->config();
    if (bc.architecture != p.build.platform.architecture || bc.os != p.build.platform.os)
      return fail(Errc::InvalidInput, "base image is " + bc.os + "/" + bc.architecture +
                                          ", the environment is " + o.subdir + " (" +
                                          p.build.platform.to_string() + ")");
  }
  p.build.store = oci::BlobStore(p.cache_root / "oci");

  // 1. Fetch through the package cache.
  auto start = std::chrono::steady_clock::now();
  std::vector<PackageRef> refs;
  for (const auto& r : env.records) refs.push_back({r.url, r.fn, r.sha256, r.md5, r.size});
  PackageCacheOptions cache_options = o.packages;
  if (cache_options.root.empty()) cache_options.root = p.cache_root;
  PackageCache cache(cache_options);
  ENVB_ASSIGN_OR_RETURN(auto cached, cache.fetch(refs).context("fetching packages"));
  p.build.fetch_ms = ms_since(start);
  size_t downloaded = 0, extracted = 0;
  for (const auto& c : cached) {
    downloaded += c.downloaded ? 1 : 0;
    extracted += c.extracted_now ? 1 : 0;
  }
  progress("fetched " + std::to_string(cached.size()) + " packages (" + std::to_string(downloaded) +
           " downloaded, " + std::to_string(extracted) + " extracted)");

  // 2. Complete the records, order them, plan every package for the image prefix.
  start = std::chrono::steady_clock::now();
  std::vector<conda::PackageRecord> records;
  for (size_t i = 0; i < env.records.size(); ++i) {
    ENVB_ASSIGN_OR_RETURN(auto record, complete_record(env.records[i], refs[i], cached[i]));
    records.push_back(std::move(record));
  }
  ENVB_ASSIGN_OR_RETURN(p.python, python_of(records));
  const std::vector<size_t> order = topological_order(records);
  ENVB_TRY(common::make_dirs(p.cache_root / "tmp"));
  ENVB_ASSIGN_OR_RETURN(auto staging, common::TempDir::create(p.cache_root / "tmp", "build-"));
  p.staging = std::make_unique<common::TempDir>(std::move(staging));
  p.plans.resize(order.size());
  for (size_t i : order) p.build.records.push_back(records[i]);
  p.extracted.resize(order.size());
  p.staged.assign(order.size(), 0);
  for (size_t k = 0; k < order.size(); ++k) p.extracted[k] = cached[order[k]].extracted;
  // Packages planned before come from the plan cache, unstaged; the others are planned now.
  const PlanCache plan_cache(p.cache_root / "plans");
  std::vector<uint64_t> sizes(order.size(), 0);
  ENVB_TRY(common::for_each_index(order.size(), o.jobs, [&](size_t k) -> Result<void> {
    const conda::PackageRecord& record = p.build.records[k];
    std::error_code ec;
    const bool python_matters = record.noarch == conda::NoArchType::Python ||
                                fs::exists(p.extracted[k] / "info" / "link.json", ec);
    const std::string key = plan_key(record, install_target(p, o, k), python_matters);
    if (auto hit = plan_cache.load(key, record)) {
      p.plans[k] = std::move(hit->plan);
      sizes[k] = hit->size;
      return ok();
    }
    ENVB_TRY(stage_plan(p, o, k));
    for (const auto& f : p.plans[k].files) {
      struct stat st {};
      if (f.kind == PlannedFile::Kind::File && ::lstat(f.source.c_str(), &st) == 0)
        sizes[k] += static_cast<uint64_t>(st.st_size);
    }
    return plan_cache.store(key, p.plans[k], sizes[k])
        .context("remembering the plan of " + package_label(record));
  }));
  ENVB_TRY(plan_wheels(p, env, o, cache_options));
  p.build.plan_ms = ms_since(start);
  for (char staged : p.staged) (staged ? p.build.plans_staged : p.build.plans_cached)++;

  // 3. Layers under the budget.
  std::vector<std::string> wheel_labels;
  std::vector<uint64_t> wheel_sizes;
  for (const auto& w : p.wheels) {
    wheel_labels.push_back(w.content.label);
    wheel_sizes.push_back(w.size);
  }
  ENVB_TRY(group_into_layers(
      p.build, sizes, wheel_labels, wheel_sizes, o,
      [&](const std::vector<size_t>& packages, const std::vector<size_t>& wheels) {
        return layer_key(p.build, packages, wheels, o, p.python);
      }));
  p.build.explicit_lock = compact_explicit_lock(p.build.records, o.subdir);
  p.build.requirements = virtual_requirements(p.build.records, p.build.wheels);
  return p;
}

}  // namespace internal

namespace {

Result<std::optional<oci::LayerInfo>> cached_layer(const fs::path& file,
                                                   const oci::BlobStore& store) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::optional<oci::LayerInfo>();
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file));
  ENVB_ASSIGN_OR_RETURN(auto json, common::parse_json(text, file.string()));
  try {
    if (json.at("format") != kLayerFormat) return std::optional<oci::LayerInfo>();
    oci::LayerInfo info;
    ENVB_ASSIGN_OR_RETURN(info.descriptor, oci::descriptor_from_json(json.at("descriptor")));
    ENVB_ASSIGN_OR_RETURN(info.diff_id, oci::Digest::parse(json.at("diff_id").get<std::string>()));
    info.uncompressed_size = json.at("uncompressed_size").get<int64_t>();
    if (!store.contains(info.descriptor.digest, info.descriptor.size))
      return std::optional<oci::LayerInfo>();
    // What `envbuild cache prune --older-than` goes by.
    touch_used(file);
    touch_used(store.path_of(info.descriptor.digest));
    return std::optional<oci::LayerInfo>(info);
  } catch (const nlohmann::json::exception&) {
    return std::optional<oci::LayerInfo>();  // a damaged entry: rebuild it
  }
}

Result<void> remember_layer(const fs::path& file, const oci::LayerInfo& info) {
  nlohmann::json desc;
  oci::to_json(desc, info.descriptor);
  nlohmann::json json = {{"format", kLayerFormat},
                         {"descriptor", desc},
                         {"diff_id", info.diff_id.to_string()},
                         {"uncompressed_size", info.uncompressed_size}};
  ENVB_TRY(common::make_dirs(file.parent_path()));
  return common::write_file_atomic(file, json.dump(2) + "\n");
}

std::string in_layer(const std::string& prefix, const std::string& path) {
  return prefix.substr(1) + "/" + path;
}

// Every member of a layer: "numpy-1.26.4-py311_0, rich-13.7.1 (wheel)" (`envbuild inspect`
// reads a layer's packages from its history).
std::string layer_members(const ImageBuild& build, const PlannedLayer& layer) {
  std::string text;
  for (size_t i : layer.packages)
    text += (text.empty() ? "" : ", ") + package_label(build.records[i]);
  for (size_t i : layer.wheels)
    text += (text.empty() ? "" : ", ") + pypi::wheel_label(build.wheels[i]);
  return text;
}

std::string history_text(const ImageBuild& build, const PlannedLayer& layer) {
  if (layer.packages.empty() && layer.wheels.empty()) return "envbuild: environment files";
  return std::string(layer.packages.empty() ? conda::kPypiLayerHistory
                                             : conda::kCondaLayerHistory) +
         layer_members(build, layer);
}

std::string created_time(const ImageBuild& build, const ImageBuildOptions& o) {
  if (o.source_date_epoch) return oci::rfc3339_utc(*o.source_date_epoch);
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
    char* end = nullptr;
    long long v = std::strtoll(sde, &end, 10);
    if (end && *end == '\0' && v >= 0) return oci::rfc3339_utc(v);
  }
  int64_t newest = 0;
  for (const auto& r : build.records)
    if (r.timestamp) newest = std::max<int64_t>(newest, *r.timestamp);
  // Repodata timestamps are milliseconds (older ones seconds).
  if (newest > 100000000000LL) newest /= 1000;
  return oci::rfc3339_utc(newest);
}

}  // namespace

namespace internal {

std::vector<std::pair<std::string, std::string>> environment_files_of(
    Prepared& p, const EnvironmentSpec& env, const ImageBuildOptions& o) {
  ImageBuild& build = p.build;
  // Clobbers across the whole environment (the upper layer wins, as the later package does);
  // no link script runs in an image build, so every one is pending.
  const PreparedEnvironment prepared = prepare_environment(p.plans);
  std::string clobbers;
  for (const Clobber& clobber : prepared.clobbers) {
    clobbers += clobber.note() + "\n";
    build.warnings.push_back("clobber: " + clobber.path + " is in " + clobber.earlier + " and " +
                             clobber.later);
  }
  std::string pending;
  for (const LinkScript& script : prepared.link_scripts) pending += script.note() + "\n";
  if (!pending.empty() && o.link_scripts == LinkScripts::Run)
    build.warnings.push_back(
        "link scripts are not run in image builds; recorded in "
        "conda-meta/envbuild-pending-scripts");

  // What belongs to no package (an OCI image's top layer).
  PrefixInstallOptions env_options;
  env_options.environment_name = env.name;
  env_options.requested_specs = env.specs;
  for (const auto& [k, v] : env.variables) env_options.variables[k] = v;
  for (const auto& w : p.wheels)  // their relocation records join the index
    env_options.wheels.push_back({w.content.label, {}, w.content.relocations, {}});
  auto files = environment_files(p.plans, o.prefix, env_options);
  if (!clobbers.empty()) files.emplace_back("conda-meta/envbuild-clobbers", clobbers);
  if (!pending.empty()) files.emplace_back("conda-meta/envbuild-pending-scripts", pending);
  return files;
}

oci::ConfigChanges environment_config(const ImageBuild& build, const EnvironmentSpec& env,
                                      const ImageBuildOptions& o) {
  const std::string created = created_time(build, o);
  oci::ConfigChanges changes = o.config;
  std::string base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (o.base)
    for (const auto& e : o.base->config().config.env)
      if (e.rfind("PATH=", 0) == 0 && e.size() > 5) base_path = e.substr(5);
  changes.env.insert(changes.env.begin(),
                     {{"PATH", o.prefix + "/bin:" + base_path},
                      {"CONDA_PREFIX", o.prefix},
                      {"CONDA_DEFAULT_ENV", env.name.empty() ? "base" : env.name}});
  for (const auto& [k, v] : env.variables) changes.env.emplace_back(k, v);
  changes.created = created;
  changes.platform = build.platform;
  std::string name = o.image_name;
  auto labels = changes.labels;  // the user's win over ours
  changes.labels = {{"org.opencontainers.image.created", created},
                    {std::string(conda::kPrefixLabel), o.prefix},
                    {std::string(conda::kPlatformLabel), o.subdir},
                    {std::string(conda::kLockLabel), build.explicit_lock},
                    {std::string(conda::kVersionLabel), std::string(kVersion)}};
  if (!build.requirements.empty())
    changes.labels[std::string(conda::kRequirementsLabel)] = build.requirements;
  if (!name.empty()) {
    auto colon = name.rfind(':');
    bool has_tag = colon != std::string::npos && name.find('/', colon) == std::string::npos;
    changes.labels["org.opencontainers.image.title"] = has_tag ? name.substr(0, colon) : name;
    if (has_tag) changes.labels["org.opencontainers.image.version"] = name.substr(colon + 1);
  }
  for (const auto& [k, v] : labels) changes.labels[k] = v;
  return changes;
}

}  // namespace internal

Result<oci::Platform> oci_platform_for_subdir(const std::string& subdir) {
  static const std::map<std::string, std::pair<std::string, std::string>> kArch = {
      {"linux-64", {"amd64", ""}},        {"linux-aarch64", {"arm64", "v8"}},
      {"linux-ppc64le", {"ppc64le", ""}}, {"linux-s390x", {"s390x", ""}},
      {"linux-armv7l", {"arm", "v7"}},    {"linux-32", {"386", ""}},
  };
  auto it = kArch.find(subdir);
  if (it == kArch.end())
    return fail(Errc::Unsupported, "no OCI platform for conda platform '" + subdir + "'")
        .with_hint("images are built for linux-64, linux-aarch64, linux-ppc64le, linux-s390x");
  oci::Platform p;
  p.os = "linux";
  p.architecture = it->second.first;
  p.variant = it->second.second;
  return p;
}

std::string virtual_requirements(const std::vector<conda::PackageRecord>& records,
                                 const std::vector<pypi::WheelToInstall>& wheels) {
  std::vector<std::string> depends;
  for (const auto& r : records) depends.insert(depends.end(), r.depends.begin(), r.depends.end());
  // A manylinux wheel needs the glibc of its tag (the oldest of its tags).
  for (const auto& w : wheels) {
    auto name = conda::pypi::WheelFilename::parse(w.filename);
    if (!name) continue;
    std::optional<std::pair<int, int>> needs;
    for (const auto& tag : name->tags)
      if (auto glibc = conda::pypi::manylinux_glibc(tag.platform); glibc && (!needs || *glibc < *needs))
        needs = glibc;
    if (needs)
      depends.push_back("__glibc >=" + std::to_string(needs->first) + "." + std::to_string(needs->second));
  }
  return conda::requirements_label(conda::host_requirements(depends));
}

std::string compact_explicit_lock(const std::vector<conda::PackageRecord>& records,
                                  const std::string& subdir) {
  std::string out = "# platform: " + subdir + "\n@EXPLICIT\n";
  for (const auto& r : records)
    out += r.url + (r.sha256.empty() ? (r.md5.empty() ? "" : "#" + r.md5) : "#sha256:" + r.sha256) +
           "\n";
  return out;
}

Result<EnvironmentRequest> environment_request(
    const fs::path& file, const std::vector<std::string>& specs, const std::string& subdir,
    SolveRequest base, const std::function<void(const std::string&)>& warn,
    const std::vector<std::string>& configured_channels) {
  EnvironmentRequest out;
  out.solve = std::move(base);
  out.file = file;
  if (!file.empty()) {
    ENVB_ASSIGN_OR_RETURN(auto target, conda::Platform::parse(subdir));
    ENVB_ASSIGN_OR_RETURN(auto env, conda::read_environment_file(file, target));
    if (warn)
      for (const auto& w : env.warnings) warn(w);
    out.pip = env.pip;
    out.environment.variables = env.variables;
    out.environment.name = env.name;
    for (const auto& spec : env.dependencies) out.environment.specs.push_back(spec.to_string());
    if (out.solve.platforms.empty())
      for (const auto& p : env.platforms) out.solve.platforms.push_back(p.to_string());
    add_environment(env, out.solve);
  }
  // The command line's specs read as a file's: `xz[version='>=5']` is `xz >=5` to libsolv.
  for (const std::string& text : specs) {
    ENVB_ASSIGN_OR_RETURN(auto spec, conda::MatchSpec::parse(text));
    out.environment.specs.push_back(spec.to_string());
    out.solve.specs.push_back(solver_spec(spec));
  }
  if (out.solve.channels.empty()) out.solve.channels = configured_channels;
  if (out.solve.channels.empty())
    return fail(Errc::InvalidInput,
                (file.empty() ? std::string() : file.string() + ": ") +
                    "no channels: give -c CHANNEL, list them under channels:, or set channels "
                    "in .condarc");
  return out;
}

pypi::PipSolveOptions pip_solve_options(const EnvironmentRequest& request,
                                        const PlatformSolution& solution) {
  pypi::PipSolveOptions pip;
  pip.subdir = solution.platform;
  pip.glibc = pypi::glibc_version(solution.virtual_packages);
  pip.cache = request.packages;
  pip.cache.offline = pip.cache.offline || request.solve.repodata.offline;
  pip.cache.credentialed_channels =
      credentialed_base_urls(request.solve.channels, request.solve.channel_options);
  pip.base_dir = fs::absolute(request.file).parent_path();
  pip.file_name = request.file.string();
  pip.find_links = request.pip_find_links;
  return pip;
}

Result<EnvironmentSpec> environment_of(const EnvironmentRequest& request,
                                       const PlatformSolution& solution) {
  EnvironmentSpec out = request.environment;
  out.credentialed_channels =
      credentialed_base_urls(request.solve.channels, request.solve.channel_options);
  for (const auto& solved : solution.records) {
    ENVB_ASSIGN_OR_RETURN(auto record, to_package_record(solved));
    out.records.push_back(std::move(record));
  }
  if (request.pip.empty()) return out;
  // Conda first, then the pip: section; wheels only (no build backend runs for an image).
  ENVB_ASSIGN_OR_RETURN(auto solved, pypi::solve_pip_section(request.pip, out.records,
                                                             pip_solve_options(request, solution)));
  out.wheels = std::move(solved.wheels);
  out.credentialed_channels.insert(out.credentialed_channels.end(),
                                   solved.credentialed_origins.begin(),
                                   solved.credentialed_origins.end());
  return out;
}

namespace {

// A lock's name, specs and variables (conda/lock_environment.hpp) become the environment's.
void adopt(conda::LockedEnvironment locked, EnvironmentSpec& out) {
  out.name = std::move(locked.name);
  out.specs = std::move(locked.specs);
  out.variables = std::move(locked.variables);
}

// A pixi.lock's environment for `subdir`: its conda packages as records (what the lock says of
// them; the installed record comes from the package itself), its pypi packages as pins.
Result<EnvironmentSpec> environment_from_pixi_lock(std::string_view text, const fs::path& file,
                                                   const std::string& subdir,
                                                   const std::string& environment) {
  ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_pixi_lock(text, file.string()));
  ENVB_ASSIGN_OR_RETURN(const conda::PixiLockEnvironment* env,
                        lock.environment(environment).context(file.string()));
  ENVB_ASSIGN_OR_RETURN(auto packages, lock.packages_for(*env, subdir).context(file.string()));
  EnvironmentSpec out;
  out.name = environment;
  for (const conda::PixiLockPackage* p : packages) {
    if (p->kind == conda::PixiLockPackage::Kind::CondaSource)
      return fail(Errc::Unsupported, file.string() + ": " + p->location +
                                         " is a source package that pixi builds itself")
          .with_hint("build it into a channel (pixi build, rattler-build) and lock that");
    if (p->kind == conda::PixiLockPackage::Kind::Pypi) continue;
    conda::PackageRecord r;
    r.name = p->name;
    ENVB_ASSIGN_OR_RETURN(r.version, conda::Version::parse(p->version)
                                         .context(file.string() + ": " + p->location));
    r.build = p->build;
    r.build_number = static_cast<uint64_t>(std::max<int64_t>(0, p->build_number.value_or(0)));
    r.subdir = p->subdir;
    r.url = p->location;
    r.fn = last_segment(p->location);
    r.channel = channel_of_url(r.url);
    r.md5 = p->md5;
    r.sha256 = p->sha256;
    if (p->size) r.size = static_cast<uint64_t>(*p->size);
    r.depends = p->depends;
    r.constrains = p->constrains;
    out.records.push_back(std::move(r));
  }
  ENVB_ASSIGN_OR_RETURN(out.wheels, pypi::pixi_wheels(packages, fs::absolute(file).parent_path(),
                                                      file.string()));
  if (out.records.empty())
    return fail(Errc::InvalidInput, file.string() + ": environment '" + environment +
                                        "' has no conda packages for platform " + subdir);
  return out;
}

}  // namespace

Result<EnvironmentSpec> environment_from_lock(const fs::path& file, const std::string& subdir,
                                              const std::string& environment) {
  EnvironmentSpec out;
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file));
  if (conda::looks_like_pixi_lock(text))
    return environment_from_pixi_lock(text, file, subdir, environment);
  if (text.find("@EXPLICIT") != std::string::npos) {
    ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_explicit_file(text, file.string()));
    if (auto p = lock.platform(); p && *p != subdir)
      return fail(Errc::InvalidInput, file.string() + " is for platform " + *p + ", not " + subdir)
          .with_hint("give --platform " + *p);
    ENVB_ASSIGN_OR_RETURN(auto locked, conda::locked_environment(lock, file.string()));
    adopt(std::move(locked), out);
    for (const auto& e : lock.entries) {
      conda::PackageRecord r;
      r.url = e.url;
      r.fn = std::string(e.file_name());
      r.md5 = e.md5;
      r.sha256 = e.sha256;
      r.channel = std::string(e.channel());
      r.subdir = std::string(e.subdir());
      out.records.push_back(std::move(r));
    }
    return out;
  }
  ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_conda_lock(text, file.string()));
  ENVB_ASSIGN_OR_RETURN(auto locked, conda::locked_environment(lock, subdir, file.string()));
  adopt(std::move(locked), out);
  for (const auto* p : lock.packages_for(subdir, conda::CondaLockPackage::Manager::Conda)) {
    conda::PackageRecord r;
    r.name = p->name;
    r.url = p->url;
    r.fn = last_segment(p->url);
    r.md5 = p->md5;
    r.sha256 = p->sha256;
    out.records.push_back(std::move(r));
  }
  for (const auto* p : lock.packages_for(subdir, conda::CondaLockPackage::Manager::Pip))
    out.wheels.push_back(pypi::locked_wheel(*p, lock.metadata));
  if (out.records.empty())
    return fail(Errc::InvalidInput, file.string() + ": no conda packages for platform " + subdir);
  return out;
}

Result<ImageBuild> plan_environment_image(const EnvironmentSpec& env,
                                          const ImageBuildOptions& options) {
  ENVB_ASSIGN_OR_RETURN(auto prepared, prepare(env, options));
  return std::move(prepared.build);
}

Result<std::optional<ImageBuild>> estimate_environment_image(const EnvironmentSpec& env,
                                                             const ImageBuildOptions& options) {
  std::vector<uint64_t> sizes;
  // A wheel's installed size is known once it is planned.
  if (!env.wheels.empty()) return std::optional<ImageBuild>();
  for (const auto& r : env.records)
    if (!r.size || r.name.empty()) return std::optional<ImageBuild>();
  if (env.records.empty()) return fail(Errc::InvalidInput, "the environment has no packages");
  ImageBuild build;
  ENVB_ASSIGN_OR_RETURN(build.platform, oci_platform_for_subdir(options.subdir));
  if (options.base) build.base_layers = options.base->manifest().layers.size();
  for (size_t i : topological_order(env.records)) {
    build.records.push_back(env.records[i]);
    sizes.push_back(*env.records[i].size);
  }
  ENVB_TRY(internal::group_into_layers(build, sizes, {}, {}, options, nullptr));
  build.explicit_lock = compact_explicit_lock(build.records, options.subdir);
  build.requirements = virtual_requirements(build.records);
  return std::optional<ImageBuild>(std::move(build));
}

namespace {

// Package layer `layer` of the build: from the local layer cache, else from --cache-from
// (its bytes fetched only when an output needs them here), else written from the plans of its
// packages and wheels (a later package wins a path, as a later layer does).
Result<void> write_package_layer(Prepared& p, const ImageBuildOptions& o,
                                 const oci::LayerOptions& layer_options, PlannedLayer& layer,
                                 std::mutex& progress_mutex) {
  ImageBuild& build = p.build;
  const fs::path entry = p.cache_root / "layers" / (layer.cache_key + ".json");
  ENVB_ASSIGN_OR_RETURN(auto hit, cached_layer(entry, build.store));
  std::optional<oci::LayerInfo> remote;
  if (!hit && o.cache_from) remote = o.cache_from->lookup(layer.cache_key);
  if (hit) {
    layer.info = *hit;
    layer.reused = true;
  } else if (remote) {
    if (o.fetch_cached_layers) {
      ENVB_TRY(o.cache_from->fetch(remote->descriptor, build.store));
      ENVB_TRY(remember_layer(entry, *remote));
    }
    layer.info = *remote;
    layer.reused = true;
    layer.from_registry = true;
  } else {
    for (size_t k : layer.packages) ENVB_TRY(stage_plan(p, o, k));
    std::map<std::string, oci::LayerEntry> entries;  // path -> entry; later packages win
    auto add = [&](const std::vector<PlannedFile>& files) {
      for (const auto& f : files) {
        std::string path = in_layer(o.prefix, f.path);
        entries.insert_or_assign(path, f.kind == PlannedFile::Kind::Symlink
                                           ? oci::LayerEntry::symlink(path, f.target)
                                           : oci::LayerEntry::file(path, f.source));
      }
    };
    for (size_t k : layer.packages) add(p.plans[k].files);
    for (size_t w : layer.wheels) add(p.wheels[w].content.files);
    std::vector<oci::LayerEntry> list;
    for (auto& [_, e] : entries) list.push_back(std::move(e));
    ENVB_ASSIGN_OR_RETURN(auto info, oci::write_layer(std::move(list), layer_options, build.store)
                                         .context("writing the layer of " +
                                                  layer_members(build, layer)));
    ENVB_TRY(remember_layer(entry, info));
    layer.info = info;
  }
  if (o.progress) {
    std::lock_guard<std::mutex> lock(progress_mutex);
    o.progress(std::string(layer.from_registry ? "cached"
                           : layer.reused      ? "reused"
                                               : "wrote") +
               " layer " + layer.info->descriptor.digest.short_string() + " " +
               layer_members(build, layer));
  }
  return ok();
}

}  // namespace

Result<ImageBuild> build_environment_image(const EnvironmentSpec& env, const ImageBuildOptions& o) {
  ENVB_ASSIGN_OR_RETURN(auto p, prepare(env, o));
  ImageBuild& build = p.build;
  auto start = std::chrono::steady_clock::now();
  oci::LayerOptions layer_options;
  layer_options.compression = o.compression;
  layer_options.level = o.level;
  layer_options.mtime = layer_mtime(o);
  std::mutex progress_mutex;

  // Package layers, in parallel; each through the layer cache.
  const size_t package_layers = build.layers.size() - 1;
  ENVB_TRY(common::for_each_index(package_layers, o.jobs, [&](size_t l) -> Result<void> {
    return write_package_layer(p, o, layer_options, build.layers[l], progress_mutex);
  }));
  build.plans_staged = std::count(p.staged.begin(), p.staged.end(), 1);
  for (size_t l = 0; l < package_layers; ++l) {
    const PlannedLayer& layer = build.layers[l];
    (layer.reused ? build.layers_reused : build.layers_written)++;
    if (layer.from_registry) ++build.layers_from_registry;
    if (layer.from_registry &&
        !build.store.contains(layer.info->descriptor.digest, layer.info->descriptor.size))
      build.remote_blobs.insert(layer.info->descriptor.digest);
  }

  auto files = internal::environment_files_of(p, env, o);
  std::vector<oci::LayerEntry> top_entries;
  fs::path top_dir = p.staging->path() / "top";
  for (const auto& [path, content] : files) {
    ENVB_TRY(common::make_dirs((top_dir / path).parent_path()));
    ENVB_TRY(common::write_scratch_file(top_dir / path, content));
    top_entries.push_back(oci::LayerEntry::file(in_layer(o.prefix, path), top_dir / path));
  }
  PlannedLayer& top = build.layers.back();
  for (const auto& [_, content] : files) top.size += content.size();
  ENVB_ASSIGN_OR_RETURN(top.info,
                        oci::write_layer(std::move(top_entries), layer_options, build.store)
                            .context("writing the environment layer"));
  build.layers_ms = ms_since(start);

  // Config and manifest.
  oci::ConfigChanges changes = internal::environment_config(build, env, o);
  const std::string created = *changes.created;
  const std::string name = o.image_name;
  std::vector<oci::AppendedLayer> appended;
  for (const auto& layer : build.layers) {
    oci::History h;
    h.created = created;
    h.created_by = history_text(build, layer);
    h.comment = layer.reason;
    appended.push_back(
        {*layer.info, h, build.remote_blobs.count(layer.info->descriptor.digest) > 0});
  }
  oci::Descriptor manifest;
  if (o.base) {
    ENVB_ASSIGN_OR_RETURN(manifest, oci::append_layers(*o.base, appended, changes, build.store));
  } else {
    ENVB_ASSIGN_OR_RETURN(manifest,
                          oci::build_image(build.platform, appended, changes, build.store));
  }
  // Manifest annotations (mutate writes none): rewrite the manifest with them.
  oci::Annotations annotations = {{"org.opencontainers.image.created", created},
                                  {std::string(conda::kLockDigestAnnotation),
                                   "sha256:" + common::sha256_hex(build.explicit_lock)}};
  if (!name.empty())
    annotations["org.opencontainers.image.title"] =
        changes.labels.at("org.opencontainers.image.title");
  for (const auto& [k, v] : o.annotations) annotations[k] = v;
  ENVB_ASSIGN_OR_RETURN(auto image, oci::open_store_image(build.store, manifest));
  ENVB_ASSIGN_OR_RETURN(
      manifest, oci::put_image(build.store, image->config(), image->manifest().layers, annotations,
                               build.remote_blobs));
  build.manifest = manifest;
  return std::move(p.build);
}

std::string format_layer_table(const ImageBuild& build) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-5s %-10s %-8s %-20s %s\n", "LAYER", "SIZE", "PKGS", "DIGEST",
                "PACKAGES");
  out += line;
  if (build.base_layers) out += "(base: " + std::to_string(build.base_layers) + " layers)\n";
  for (size_t l = 0; l < build.layers.size(); ++l) {
    const auto& layer = build.layers[l];
    std::string names;
    for (size_t i : layer.packages)
      names += (names.empty() ? "" : " ") + package_label(build.records[i]);
    for (size_t i : layer.wheels)
      names += (names.empty() ? "" : " ") + pypi::wheel_label(build.wheels[i]);
    if (names.empty()) names = "(" + layer.reason + ")";
    std::string digest = layer.info ? layer.info->descriptor.digest.short_string().substr(7) +
                                          (layer.from_registry ? " ^"
                                           : layer.reused      ? " ="
                                                               : " +")
                                    : "-";
    std::snprintf(line, sizeof line, "%-5zu %-10s %-8zu %-20s ", build.base_layers + l + 1,
                  human_bytes(layer.size).c_str(), layer.packages.size() + layer.wheels.size(),
                  digest.c_str());
    out += line + names + "\n";
  }
  return out;
}

namespace {

}  // namespace

oci::registry::RegistryOptions registry_options(const OutputOptions& options) {
  oci::registry::RegistryOptions registry;
  registry.transport.tls.verify = options.tls_verify;
  registry.transport.tls.cert_dir = options.cert_dir;
  registry.credentials = options.credentials;
  registry.mount_from = options.mount_from;
  registry.mountable = options.mountable;
  registry.on_bytes = options.on_bytes;
  registry.on_blob = options.on_blob;
  return registry;
}

oci::registry::WriteOptions write_options(const OutputOptions& options,
                                          const std::string& name_and_tag) {
  oci::registry::WriteOptions write;
  write.registry = registry_options(options);
  write.scratch_dir = options.scratch_dir;
  auto colon = name_and_tag.rfind(':');
  const bool tagged = colon != std::string::npos && name_and_tag.find('/', colon) == std::string::npos;
  write.name = tagged ? name_and_tag.substr(0, colon) : name_and_tag;
  if (tagged) write.tag = name_and_tag.substr(colon + 1);
  write.add_to_layout = [&options](const oci::Layout& layout) -> Result<void> {
    for (const auto& a : options.artifacts)
      ENVB_TRY(add_artifact_to_layout(*options.artifacts_store, a, layout));
    return ok();
  };
  return write;
}

Result<void> finish_output(const OutputOptions& options, const oci::ImageReference& ref,
                           const oci::registry::WriteOptions& write,
                           const oci::registry::TransferReport& report) {
  if (ref.transport != oci::Transport::Registry) return ok();
  if (options.progress)
    options.progress("pushed " + ref.to_string() + ": " + std::to_string(report.blobs) +
                     " blobs (" + std::to_string(report.uploaded) + " uploaded, " +
                     std::to_string(report.mounted) + " mounted, " +
                     std::to_string(report.existed) + " already there), " +
                     std::to_string(report.requests) + " requests (" +
                     std::to_string(report.put_requests) + " PUT, " +
                     std::to_string(report.patch_requests) + " PATCH, " +
                     std::to_string(report.post_requests) + " POST)");
  oci::ImageReference pushed = ref;
  if (pushed.tag.empty() && !pushed.digest.valid()) pushed.tag = write.tag;
  return push_output_artifacts(options, pushed, write.registry);
}

Result<void> write_image_output(const oci::Image& image, const std::string& output,
                                const std::string& name_and_tag, const OutputOptions& options) {
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(output));
  const oci::registry::WriteOptions write = write_options(options, name_and_tag);
  ENVB_ASSIGN_OR_RETURN(auto report, oci::registry::write_image(image, ref, write));
  return finish_output(options, ref, write, report);
}

Result<void> push_output_artifacts(const OutputOptions& options, const oci::ImageReference& ref,
                                   const oci::registry::RegistryOptions& registry) {
  for (const auto& artifact : options.artifacts)
    ENVB_TRY(push_artifact(*options.artifacts_store, artifact, ref, registry));
  return ok();
}

}  // namespace envbuild::builder
