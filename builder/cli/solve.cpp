// `envbuild solve -f environment.yml`: fetch repodata, solve for each platform, print the
// packages as a table or JSON.

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/solve.hpp"
#include "conda/environment_file.hpp"

namespace envbuild::builder::cli {

namespace {

struct SolveOptions {
  std::string file;
  std::vector<std::string> platforms;
  std::vector<std::string> channels;
  std::vector<std::string> virtual_packages;
  std::vector<std::string> specs;
  std::string cache_dir;
  std::string channel_alias = "https://conda.anaconda.org";
  std::string channel_priority = "strict";
  bool json = false;
  bool offline = false;
  bool no_solv_cache = false;
};

std::vector<std::string> split_commas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const std::string& s : in) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      if (comma > start) out.push_back(s.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

std::string human_size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  return buf;
}

Result<int> run_solve(const SolveOptions& o) {
  SolveRequest request;
  request.platforms = split_commas(o.platforms);
  request.channels = o.channels;
  request.specs = o.specs;
  if (!o.file.empty()) {
    auto target = conda::Platform::parse(request.platforms.empty() ? host_platform()
                                                                   : request.platforms.front());
    if (!target) return std::move(target).error();
    ENVB_ASSIGN_OR_RETURN(conda::EnvironmentFile env,
                          conda::read_environment_file(o.file, *target));
    for (const auto& w : env.warnings) std::cerr << "warning: " << w << "\n";
    if (!env.pip.empty())
      std::cerr << "warning: " << o.file << ": " << env.pip.size()
                << " pip requirement(s) are not solved by 'envbuild solve'\n";
    if (o.channels.empty()) {
      for (const auto& c : env.channels) request.channels.push_back(c.location());
      if (env.nodefaults) request.channels.push_back("nodefaults");
    }
    for (const auto& spec : env.dependencies) {
      std::string text = spec.to_libsolv_string();
      if (spec.channel()) text = spec.channel()->location() + "::" + text;
      request.specs.push_back(text);
    }
    if (request.platforms.empty())
      for (const auto& p : env.platforms) request.platforms.push_back(p.to_string());
  }
  if (request.channels.empty())
    return fail(Errc::InvalidInput, "no channels: give --channel or list them in the file");
  for (const std::string& text : o.virtual_packages) {
    ENVB_ASSIGN_OR_RETURN(VirtualPackage vp, parse_virtual_package(text));
    request.virtual_packages.push_back(vp);
  }
  if (o.channel_priority != "strict" && o.channel_priority != "flexible")
    return fail(Errc::InvalidInput, "--channel-priority must be strict or flexible");
  request.strict_channel_priority = o.channel_priority == "strict";
  request.use_solv_cache = !o.no_solv_cache;
  request.channel_options.alias = o.channel_alias;
  request.repodata.offline = o.offline;
  if (!o.cache_dir.empty()) request.repodata.cache_dir = o.cache_dir;

  ENVB_ASSIGN_OR_RETURN(auto solutions, solve_environment(request));
  if (o.json) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& s : solutions) {
      nlohmann::json pkgs = nlohmann::json::array();
      for (const auto& r : s.records) {
        pkgs.push_back({{"name", r.name},
                        {"version", r.version},
                        {"build", r.build},
                        {"build_number", r.build_number},
                        {"channel", r.channel},
                        {"subdir", r.subdir},
                        {"url", r.url},
                        {"fn", r.fn},
                        {"md5", r.md5},
                        {"sha256", r.sha256},
                        {"size", r.size},
                        {"depends", r.depends},
                        {"constrains", r.constrains},
                        {"license", r.license},
                        {"timestamp", r.timestamp},
                        {"track_features", r.track_features}});
      }
      nlohmann::json vps = nlohmann::json::array();
      for (const auto& v : s.virtual_packages)
        vps.push_back(v.name + "=" + v.version + "=" + v.build);
      out[s.platform] = {{"packages", pkgs},
                         {"virtual_packages", vps},
                         {"stats",
                          {{"fetch_ms", s.stats.fetch_ms},
                           {"load_ms", s.stats.load_ms},
                           {"solve_ms", s.stats.solve_ms},
                           {"records", s.stats.records_loaded},
                           {"solv_hits", s.stats.solv_hits}}}};
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& s : solutions) {
    uint64_t total = 0;
    std::printf("# %s: %zu packages (%zu records, fetch %.0f ms, load %.0f ms, solve %.0f ms)\n",
                s.platform.c_str(), s.records.size(), s.stats.records_loaded, s.stats.fetch_ms,
                s.stats.load_ms, s.stats.solve_ms);
    std::printf("%-32s %-16s %-28s %-24s %10s\n", "name", "version", "build", "channel", "size");
    for (const auto& r : s.records) {
      total += r.size;
      std::printf("%-32s %-16s %-28s %-24s %10s\n", r.name.c_str(), r.version.c_str(),
                  r.build.c_str(), r.channel.c_str(), human_size(r.size).c_str());
    }
    std::printf("# total download %s\n", human_size(total).c_str());
  }
  return 0;
}

}  // namespace

void register_solve(CLI::App& app, Outcome& outcome) {
  auto options = std::make_shared<SolveOptions>();
  CLI::App* cmd = app.add_subcommand("solve", "Solve an environment.yml and print the packages");
  cmd->add_option("-f,--file", options->file, "environment.yml");
  cmd->add_option("specs", options->specs, "extra match specs");
  cmd->add_option("-p,--platform", options->platforms, "target platforms (comma separated)");
  cmd->add_option("-c,--channel", options->channels, "channels (replace the file's)");
  cmd->add_option("--virtual-package", options->virtual_packages, "__name=version[=build]");
  cmd->add_option("--cache-dir", options->cache_dir, "repodata cache directory");
  cmd->add_option("--channel-alias", options->channel_alias, "base URL for channel names");
  cmd->add_option("--channel-priority", options->channel_priority, "strict (default) or flexible");
  cmd->add_flag("--json", options->json, "print JSON records");
  cmd->add_flag("--offline", options->offline, "use cached repodata only");
  cmd->add_flag("--no-solv-cache", options->no_solv_cache, "always parse repodata JSON");
  cmd->callback([options, &outcome] { outcome.result = run_solve(*options); });
}

}  // namespace envbuild::builder::cli
