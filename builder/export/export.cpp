#include "builder/export/export.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "builder/install/install.hpp"
#include "builder/pypi/lock.hpp"
#include "common/fs.hpp"
#include "conda/lock_environment.hpp"
#include "conda/lockfile_pixi.hpp"
#include "conda/image_contract.hpp"
#include "conda/package_record.hpp"
#include "oci/layer_reader.hpp"

namespace envbuild::builder {

namespace {

namespace fs = std::filesystem;

// Bounds on what an untrusted prefix or lock may make us read.
constexpr size_t kMaxRecords = 100000;
constexpr size_t kMaxRecordBytes = 64u << 20;
constexpr size_t kMaxLockBytes = 256u << 20;

// "numpy-1.26.4-py311h_0.conda" -> {"numpy", "1.26.4", "py311h_0"}; names may hold dashes.
Result<std::vector<std::string>> split_file_name(std::string_view file, std::string_view what) {
  std::string stem(file);
  for (std::string_view ext : {".conda", ".tar.bz2"})
    if (stem.size() > ext.size() && stem.ends_with(ext)) stem.resize(stem.size() - ext.size());
  size_t build_dash = stem.rfind('-');
  size_t version_dash = build_dash == std::string::npos || build_dash == 0
                            ? std::string::npos
                            : stem.rfind('-', build_dash - 1);
  if (version_dash == std::string::npos || version_dash == 0)
    return fail(Errc::InvalidInput, std::string(what) + ": '" + std::string(file) +
                                        "' is not <name>-<version>-<build>.conda/.tar.bz2");
  return std::vector<std::string>{stem.substr(0, version_dash),
                                  stem.substr(version_dash + 1, build_dash - version_dash - 1),
                                  stem.substr(build_dash + 1)};
}

std::string spec_name(const std::string& spec) {
  std::string name = spec.substr(0, spec.find_first_of(" =<>!~[@"));
  if (size_t colons = name.rfind("::"); colons != std::string::npos) name.erase(0, colons + 2);
  return name;
}

// `# update specs: numpy` (envbuild) or `# update specs: ['numpy', 'python=3.11']` (conda);
// a later request for a name replaces the earlier one, `# remove specs:` drops it.
std::vector<std::string> requested_specs_of_history(const std::string& history) {
  std::vector<std::pair<std::string, std::string>> specs;  // name -> spec, first-request order
  auto items = [](std::string rest) {
    std::vector<std::string> out;
    if (rest.starts_with("[")) {
      rest = rest.substr(
          1, rest.rfind(']') == std::string::npos ? std::string::npos : rest.rfind(']') - 1);
      std::stringstream in(rest);
      for (std::string item; std::getline(in, item, ',');) {
        item.erase(0, item.find_first_not_of(" '\""));
        item.erase(item.find_last_not_of(" '\"") + 1);
        if (!item.empty()) out.push_back(item);
      }
    } else if (!rest.empty()) {
      out.push_back(rest);
    }
    return out;
  };
  std::stringstream in(history);
  for (std::string line; std::getline(in, line);) {
    bool update = line.starts_with("# update specs: ");
    bool remove = line.starts_with("# remove specs: ");
    if (!update && !remove) continue;
    for (const auto& spec : items(line.substr(line.find(':') + 2))) {
      std::string name = spec_name(spec);
      auto it = std::find_if(specs.begin(), specs.end(), [&](auto& s) { return s.first == name; });
      if (remove) {
        if (it != specs.end()) specs.erase(it);
      } else if (it != specs.end()) {
        it->second = spec;
      } else {
        specs.emplace_back(name, spec);
      }
    }
  }
  std::vector<std::string> out;
  for (auto& [name, spec] : specs) out.push_back(spec);
  return out;
}

void add_channel(std::vector<std::string>& channels, const std::string& channel) {
  if (!channel.empty() && std::find(channels.begin(), channels.end(), channel) == channels.end())
    channels.push_back(channel);
}

void finish(ExportedEnvironment& env) {
  std::sort(env.packages.begin(), env.packages.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  // A lock's own channel list is authoritative (its packages' URLs would repeat
  // `conda-forge` as https://conda.anaconda.org/conda-forge); prefixes and @EXPLICIT have none.
  if (!env.channels.empty()) return;
  for (const auto& p : env.packages) add_channel(env.channels, p.channel);
}

ExportedPackage exported_of_record(const conda::PackageRecord& r) {
  return {r.name,   r.version.to_string(), r.build, r.channel, r.subdir, r.url, r.md5, r.sha256,
          r.depends};
}

// The conda-meta records: regular files <name>-<version>-<build>.json (envbuild's own
// envbuild-*.json indexes are not packages); a symlink is not followed out of the prefix.
Result<std::vector<ExportedPackage>> read_conda_meta(const fs::path& meta) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(meta, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.ends_with(".json") || name.starts_with("envbuild-")) continue;
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    if (files.size() == kMaxRecords)
      return fail(Errc::InvalidInput, meta.string() + ": more than " + std::to_string(kMaxRecords) +
                                          " package records");
    files.push_back(it->path());
  }
  if (ec) return common::errno_error("opendir", meta.string(), ec.value());
  std::sort(files.begin(), files.end());
  std::vector<ExportedPackage> out;
  for (const auto& file : files) {
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file, kMaxRecordBytes));
    auto record = conda::parse_prefix_record(text, file.string());
    if (!record)
      return std::move(record).error().with_hint(
          "the prefix's package record is damaged: reinstall the environment, or remove " +
          file.string() + " if that package is gone");
    out.push_back(exported_of_record(record->record));
  }
  return out;
}

void sort_wheels(ExportedEnvironment& env) {
  std::sort(env.wheels.begin(), env.wheels.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
}

// One .dist-info directory: `name-1.0.dist-info` -> "name==1.0" when a pip: section (not a
// conda package, whose INSTALLER says conda) put it there.
void add_wheel(ExportedEnvironment& env, const fs::path& dist_info) {
  std::string stem = dist_info.filename().string();
  stem.resize(stem.size() - std::string_view(".dist-info").size());
  size_t dash = stem.find('-');
  if (dash == std::string::npos || dash == 0) return;
  auto installer = common::read_file(dist_info / "INSTALLER", 4096);
  if (!installer || installer->starts_with("conda")) return;
  pypi::WheelToInstall wheel;
  // The project's normalized name (PEP 503), as pip list shows it: "demo_metrics" -> "demo-metrics".
  wheel.name = stem.substr(0, dash);
  std::replace(wheel.name.begin(), wheel.name.end(), '_', '-');
  wheel.version = stem.substr(dash + 1);
  std::error_code ec;
  wheel.requested = fs::is_regular_file(fs::symlink_status(dist_info / "REQUESTED", ec));
  env.wheels.push_back(std::move(wheel));
}

// lib/python*/site-packages/*.dist-info, without following links out of the prefix.
void read_wheels(ExportedEnvironment& env, const fs::path& prefix) {
  std::error_code ec;
  size_t seen = 0;
  for (fs::directory_iterator lib(prefix / "lib", ec), end; !ec && lib != end; lib.increment(ec)) {
    if (!lib->path().filename().string().starts_with("python") || lib->is_symlink(ec)) continue;
    const fs::path site = lib->path() / "site-packages";
    if (!fs::is_directory(fs::symlink_status(site, ec))) continue;
    std::error_code site_ec;
    for (fs::directory_iterator it(site, site_ec); !site_ec && it != end && seen < kMaxRecords;
         it.increment(site_ec), ++seen)
      if (it->path().extension() == ".dist-info" && !it->is_symlink(site_ec) &&
          it->is_directory(site_ec))
        add_wheel(env, it->path());
  }
  sort_wheels(env);
}

Result<std::vector<std::pair<std::string, std::string>>> variables_of_state(const fs::path& state) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!fs::is_regular_file(fs::symlink_status(state))) return out;
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(state, kMaxRecordBytes));
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return fail(Errc::InvalidInput, state.string() + ": not a JSON object");
  auto vars = json.find("env_vars");
  if (vars == json.end()) return out;
  if (!vars->is_object())
    return fail(Errc::InvalidInput, state.string() + ": env_vars is not an object");
  for (const auto& [k, v] : vars->items()) {
    if (!v.is_string())
      return fail(Errc::InvalidInput, state.string() + ": env_vars." + k + " is not a string");
    out.emplace_back(k, v.get<std::string>());
  }
  return out;
}

ExportedPackage exported_of_url(std::vector<std::string> nvb, const std::string& url,
                                const std::string& md5, const std::string& sha256) {
  ExportedPackage p;
  p.name = std::move(nvb[0]);
  p.version = std::move(nvb[1]);
  p.build = std::move(nvb[2]);
  p.url = url;
  p.channel = channel_of_url(url);
  std::string_view dir = std::string_view(url).substr(0, url.rfind('/'));
  p.subdir = std::string(dir.substr(dir.rfind('/') + 1));
  p.md5 = md5;
  p.sha256 = sha256;
  return p;
}

void apply(ExportedEnvironment& env, const conda::LockedEnvironment& locked) {
  if (!locked.name.empty()) env.name = locked.name;
  env.requested_specs = locked.specs;
  env.variables = locked.variables;
}

Result<ExportedEnvironment> from_explicit(const std::string& text, const std::string& file) {
  ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_explicit_file(text, file));
  ExportedEnvironment env;
  env.platform = lock.platform().value_or("");
  for (const auto& e : lock.entries) {
    ENVB_ASSIGN_OR_RETURN(auto nvb, split_file_name(e.file_name(), file));
    env.packages.push_back(exported_of_url(std::move(nvb), e.url, e.md5, e.sha256));
  }
  ENVB_ASSIGN_OR_RETURN(auto locked, conda::locked_environment(lock, file));
  apply(env, locked);
  return env;
}

Result<std::string> pick_platform(const std::vector<std::string>& platforms,
                                  const std::string& wanted, const std::string& file) {
  if (platforms.empty())
    return fail(Errc::InvalidInput, file + " locks no platform: there is nothing to export");
  std::string all;
  for (const auto& p : platforms) all += (all.empty() ? "" : ", ") + p;
  if (wanted.empty()) {
    if (platforms.size() == 1) return platforms.front();
    return fail(Errc::InvalidInput, file + " locks several platforms (" + all + ")")
        .with_hint("pick one with --platform");
  }
  if (std::find(platforms.begin(), platforms.end(), wanted) == platforms.end())
    return fail(Errc::NotFound, file + " has no platform '" + wanted + "' (it has " + all + ")");
  return wanted;
}

Result<ExportedEnvironment> from_conda_lock(const std::string& text, const std::string& file,
                                            const std::string& platform) {
  ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_conda_lock(text, file));
  ExportedEnvironment env;
  ENVB_ASSIGN_OR_RETURN(env.platform, pick_platform(lock.metadata.platforms, platform, file));
  for (const auto& c : lock.metadata.channels) add_channel(env.channels, c.url);
  for (const auto* p : lock.packages_for(env.platform, conda::CondaLockPackage::Manager::Conda)) {
    ENVB_ASSIGN_OR_RETURN(auto nvb, split_file_name(p->url.substr(p->url.rfind('/') + 1), file));
    auto exported = exported_of_url(std::move(nvb), p->url, p->md5, p->sha256);
    for (const auto& [name, constraint] : p->dependencies)
      exported.depends.push_back(constraint.empty() ? name : name + " " + constraint);
    env.packages.push_back(std::move(exported));
  }
  for (const auto* p : lock.packages_for(env.platform, conda::CondaLockPackage::Manager::Pip))
    env.wheels.push_back(pypi::locked_wheel(*p, lock.metadata));
  sort_wheels(env);
  ENVB_ASSIGN_OR_RETURN(auto locked, conda::locked_environment(lock, env.platform, file));
  apply(env, locked);
  return env;
}

Result<ExportedEnvironment> from_pixi(const std::string& text, const std::string& file,
                                      const std::string& platform, const std::string& name) {
  ENVB_ASSIGN_OR_RETURN(auto lock, conda::parse_pixi_lock(text, file));
  auto found = lock.environment(name);
  if (!found) return std::move(found).error().with_context(file);
  const conda::PixiLockEnvironment* pixi_env = *found;
  std::vector<std::string> platforms;
  for (const auto& p : pixi_env->platforms) platforms.push_back(p.name);
  ExportedEnvironment env;
  env.name = name;
  ENVB_ASSIGN_OR_RETURN(env.platform, pick_platform(platforms, platform, file));
  env.channels = pixi_env->channels;
  ENVB_ASSIGN_OR_RETURN(auto packages, lock.packages_for(*pixi_env, env.platform));
  std::vector<const conda::PixiLockPackage*> pypi_packages;
  for (const auto* p : packages)
    if (p->kind == conda::PixiLockPackage::Kind::Pypi) pypi_packages.push_back(p);
  if (auto wheels = pypi::pixi_wheels(pypi_packages, fs::path(file).parent_path(), file)) {
    env.wheels = std::move(*wheels);
  } else {
    // Source distributions and editables: still named, with no URL to lock.
    for (const auto* p : pypi_packages) {
      pypi::WheelToInstall named;
      named.name = p->name;
      named.version = p->version;
      env.wheels.push_back(std::move(named));
    }
  }
  sort_wheels(env);
  for (const auto* p : packages) {
    if (p->kind != conda::PixiLockPackage::Kind::Conda) continue;
    ExportedPackage exported =
        exported_of_url({p->name, p->version, p->build}, p->location, p->md5, p->sha256);
    exported.subdir = p->subdir;
    exported.depends = p->depends;
    env.packages.push_back(std::move(exported));
  }
  return env;
}

}  // namespace

std::pair<std::string, std::string> split_dependency(const std::string& dep) {
  size_t end = dep.find_first_of(" <>=!~[");
  if (end == std::string::npos) return {dep, ""};
  std::string rest = dep.substr(end);
  size_t start = rest.find_first_not_of(' ');
  return {dep.substr(0, end), start == std::string::npos ? "" : rest.substr(start)};
}

Result<ExportedEnvironment> read_prefix_environment(const fs::path& prefix) {
  const fs::path meta = prefix / "conda-meta";
  if (!fs::is_directory(fs::symlink_status(meta)))
    return fail(Errc::NotFound, prefix.string() + " is not a conda environment (no conda-meta/)")
        .with_hint("give the prefix of an installed environment: envbuild export -p PREFIX");
  ExportedEnvironment env;
  env.name = fs::absolute(prefix).lexically_normal().filename().string();
  if (env.name.empty()) env.name = fs::absolute(prefix).lexically_normal().parent_path().filename();
  ENVB_ASSIGN_OR_RETURN(env.packages, read_conda_meta(meta));
  if (!env.packages.empty()) env.platform = env.packages.front().subdir;
  for (const auto& p : env.packages)
    if (p.subdir != "noarch" && !p.subdir.empty()) env.platform = p.subdir;
  const fs::path history = meta / "history";
  if (fs::is_regular_file(fs::symlink_status(history))) {
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(history, kMaxRecordBytes));
    env.requested_specs = requested_specs_of_history(text);
  }
  ENVB_ASSIGN_OR_RETURN(env.variables, variables_of_state(meta / "state"));
  read_wheels(env, prefix);
  finish(env);
  return env;
}

namespace {

// Whether read_prefix_environment reads `path` ("opt/conda/conda-meta/x.json", a layer entry's
// normalized path) of a prefix at `prefix` ("opt/conda"): conda-meta's files and the markers
// of lib/python*/site-packages/*.dist-info.
bool read_by_export(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix) || path.size() <= prefix.size() || path[prefix.size()] != '/')
    return false;
  std::vector<std::string_view> parts;
  std::string_view rest = path.substr(prefix.size() + 1);
  while (!rest.empty() && parts.size() < 6) {
    const size_t slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (!rest.empty()) return false;
  if (parts.size() == 2) return parts[0] == "conda-meta";
  return parts.size() == 5 && parts[0] == "lib" && parts[1].starts_with("python") &&
         parts[2] == "site-packages" && parts[3].ends_with(".dist-info") &&
         (parts[4] == "INSTALLER" || parts[4] == "REQUESTED");
}

std::string image_env_var(const oci::Image& image, std::string_view key) {
  for (const auto& kv : image.config().config.env)
    if (kv.size() > key.size() && kv.starts_with(key) && kv[key.size()] == '=')
      return kv.substr(key.size() + 1);
  return {};
}

}  // namespace

Result<ExportedEnvironment> read_image_environment(const oci::Image& image,
                                                   const fs::path& scratch_root,
                                                   std::string prefix) {
  const auto& labels = image.config().config.labels;
  if (prefix.empty()) {
    auto it = labels.find(std::string(conda::kPrefixLabel));
    prefix = it != labels.end() ? it->second : std::string(conda::kDefaultImagePrefix);
  }
  const fs::path relative = fs::path(prefix).lexically_normal().relative_path();
  std::string below = relative.generic_string();
  while (below.ends_with('/')) below.pop_back();
  if (!fs::path(prefix).is_absolute() || below.empty() || below.starts_with(".."))
    return fail(Errc::InvalidInput, "the image's prefix '" + prefix + "' is not a folder below /")
        .with_hint("give the environment's folder in the image: --image-prefix /opt/conda");
  ENVB_TRY(common::make_dirs(scratch_root));
  ENVB_ASSIGN_OR_RETURN(auto scratch, common::TempDir::create(scratch_root, "export-"));
  oci::ExtractOptions extract;
  extract.select = [&below](std::string_view path) { return read_by_export(path, below); };
  const auto& layers = image.manifest().layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    extract.compressed_size = static_cast<uint64_t>(layers[i].size);
    const std::string what = "layer " + std::to_string(i + 1) + " (" +
                             layers[i].digest.short_string() + ") of the image";
    ENVB_ASSIGN_OR_RETURN(auto blob, image.open_blob(layers[i]).context("reading " + what));
    ENVB_TRY(oci::extract_layer(*blob, scratch.path(), extract).context("reading " + what));
  }
  const fs::path at = scratch.path() / below;
  if (!fs::is_directory(fs::symlink_status(at / "conda-meta")))
    return fail(Errc::NotFound, "the image has no conda environment at " + prefix +
                                    " (no conda-meta/ in its layers)")
        .with_hint("give the environment's folder in the image: --image-prefix PATH");
  ENVB_ASSIGN_OR_RETURN(ExportedEnvironment env,
                        read_prefix_environment(at).context("the environment at " + prefix +
                                                            " in the image"));
  env.name = image_env_var(image, "CONDA_DEFAULT_ENV");
  if (env.name.empty()) env.name = relative.filename().string();
  if (auto it = labels.find(std::string(conda::kPlatformLabel));
      it != labels.end() && env.platform.empty())
    env.platform = it->second;
  return env;
}

Result<ExportedEnvironment> read_lock_environment(const fs::path& file, const std::string& platform,
                                                  const std::string& pixi_environment) {
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file, kMaxLockBytes));
  const std::string name = file.string();
  Result<ExportedEnvironment> env = [&]() -> Result<ExportedEnvironment> {
    if (conda::looks_like_pixi_lock(text)) return from_pixi(text, name, platform, pixi_environment);
    if (text.find("@EXPLICIT") != std::string::npos) return from_explicit(text, name);
    return from_conda_lock(text, name, platform);
  }();
  if (env) finish(*env);
  return env;
}

std::string to_environment_yml(const ExportedEnvironment& env, const EnvironmentYmlOptions& o) {
  std::vector<std::string> channels;
  for (const auto& c : o.extra_channels) add_channel(channels, c);
  if (!o.override_channels)
    for (const auto& c : env.channels) add_channel(channels, c);
  if (o.override_channels || env.channels.empty()) add_channel(channels, "nodefaults");
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (!env.name.empty()) out << YAML::Key << "name" << YAML::Value << env.name;
  out << YAML::Key << "channels" << YAML::Value << YAML::BeginSeq;
  for (const auto& c : channels) out << c;
  out << YAML::EndSeq << YAML::Key << "dependencies" << YAML::Value << YAML::BeginSeq;
  if (o.from_history) {
    for (const auto& spec : env.requested_specs) out << spec;
  } else {
    for (const auto& p : env.packages)
      out << (p.name + "=" + p.version + (o.no_builds ? "" : "=" + p.build));
  }
  std::vector<std::string> wheels;
  for (const auto& w : env.wheels)
    if (w.requested || !o.from_history) wheels.push_back(w.name + "==" + w.version);
  if (!wheels.empty()) {
    out << YAML::BeginMap << YAML::Key << "pip" << YAML::Value << YAML::BeginSeq;
    for (const auto& w : wheels) out << w;
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq;
  if (!env.variables.empty()) {
    out << YAML::Key << "variables" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : env.variables) out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Result<conda::ExplicitFile> to_explicit_file(const ExportedEnvironment& env, bool md5) {
  conda::ExplicitFile file;
  file.header = {"# This file may be used to create an environment using:",
                 "# $ envbuild install --lock <file> -p <prefix>"};
  if (!env.platform.empty()) file.header.push_back("# platform: " + env.platform);
  conda::put_environment(file, {env.name, env.requested_specs, env.variables});
  for (const auto& p : env.packages) {
    if (p.url.empty())
      return fail(Errc::InvalidInput, p.name + "-" + p.version + "-" + p.build +
                                          ": no URL recorded, so no @EXPLICIT line");
    conda::ExplicitEntry entry;
    entry.url = p.url;
    if (md5 ? !p.md5.empty() : p.sha256.empty())
      entry.md5 = p.md5;
    else
      entry.sha256 = p.sha256;
    file.entries.push_back(std::move(entry));
  }
  return file;
}

Result<conda::CondaLockFile> to_conda_lock(const std::vector<ExportedEnvironment>& envs,
                                           size_t* wheels_left_out) {
  conda::CondaLockFile lock;
  std::vector<pypi::WheelToInstall> locked_wheels;
  for (const auto& env : envs) {
    lock.metadata.platforms.push_back(env.platform);
    for (const auto& c : env.channels)
      if (std::none_of(lock.metadata.channels.begin(), lock.metadata.channels.end(),
                       [&](const auto& known) { return known.url == c; }))
        lock.metadata.channels.push_back({c, {}});
    conda::put_environment(lock, env.platform, {env.name, env.requested_specs, env.variables});
    for (const auto& p : env.packages) {
      if (p.url.empty() || (p.md5.empty() && p.sha256.empty()))
        return fail(Errc::InvalidInput, p.name + "-" + p.version + "-" + p.build +
                                            ": a conda-lock.yml package needs a URL and a hash");
      conda::CondaLockPackage package;
      package.name = p.name;
      package.version = p.version;
      package.platform = env.platform;
      for (const auto& d : p.depends) {
        auto [name, constraint] = split_dependency(d);
        if (!name.starts_with("__")) package.dependencies.emplace_back(name, constraint);
      }
      package.url = p.url;
      package.md5 = p.md5;
      package.sha256 = p.sha256;
      lock.packages.push_back(std::move(package));
    }
    for (const auto& w : env.wheels) {
      if (w.url.empty() || w.sha256.empty()) {
        if (wheels_left_out) ++*wheels_left_out;
        continue;
      }
      lock.packages.push_back(pypi::lock_entry(w, env.platform));
      locked_wheels.push_back(w);
    }
  }
  pypi::add_requested(lock.metadata, locked_wheels);
  return lock;
}

}  // namespace envbuild::builder
