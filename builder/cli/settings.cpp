#include "builder/cli/settings.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace envbuild::builder::cli {

namespace {

namespace fs = std::filesystem;
using conda::Sourced;

// conda expands a leading ~ in the paths of its configuration.
std::string expand_home(const std::string& path) {
  if (!path.starts_with("~/")) return path;
  const char* home = std::getenv("HOME");
  return home ? std::string(home) + path.substr(1) : path;
}

// A flag given on the command line wins; else the configuration's value; else the default.
Sourced<std::string> pick(const std::string& flag, const char* flag_name,
                          const std::optional<Sourced<std::string>>& configured,
                          const std::string& fallback) {
  if (!flag.empty()) return {flag, flag_name};
  if (configured) return *configured;
  return {fallback, kDefaultSource};
}

Result<bool> parse_priority(const Sourced<std::string>& priority) {
  if (priority.value == "strict") return true;
  if (priority.value == "flexible" || priority.value == "disabled") return false;
  return fail(Errc::InvalidInput, priority.source +
                                      ": channel priority must be strict, flexible "
                                      "or disabled, not '" +
                                      priority.value + "'");
}

// conda's ssl_verify: a boolean, or the path of a CA bundle to trust instead of the system's.
Result<void> apply_ssl_verify(const Sourced<std::string>& ssl, common::TlsOptions& tls) {
  const std::string& v = ssl.value;
  if (v == "true" || v == "True" || v == "yes" || v == "1") return ok();
  if (v == "false" || v == "False" || v == "no" || v == "0") {
    tls.verify = false;
    return ok();
  }
  const std::string path = expand_home(v);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return fail(Errc::InvalidInput,
                ssl.source + ": ssl_verify '" + v + "' is neither true, false nor a CA bundle file")
        .with_hint("give ssl_verify the path of a PEM file of the CAs to trust");
  tls.ca_file = path;
  return ok();
}

// Channel names, `defaults` and --mirror, as the settings resolve them.
Result<void> set_channel_options(const SolveCliOptions& flags, EffectiveSettings& s) {
  const conda::CondaConfig& shown = s.shown;
  s.channel_options.alias = shown.channel_alias->value;
  s.channel_options.default_channels = shown.default_channels->value;
  for (const auto& [name, url] : shown.custom_channels)
    s.channel_options.custom_channels[name] = url.value;
  for (const std::string& text : flags.mirrors) {
    ENVB_ASSIGN_OR_RETURN(Mirror mirror, parse_mirror(text, s.channel_options));
    s.channel_options.mirrors.push_back(std::move(mirror));
  }
  return ok();
}

}  // namespace

Result<EffectiveSettings> effective_settings(const SolveCliOptions& flags,
                                             const conda::CondaConfig& config) {
  EffectiveSettings s;
  conda::CondaConfig& shown = s.shown;
  shown = config;
  shown.channel_alias =
      pick(flags.channel_alias, "--channel-alias", config.channel_alias, ChannelOptions{}.alias);
  if (!shown.default_channels)
    shown.default_channels =
        Sourced<std::vector<std::string>>{ChannelOptions{}.default_channels, kDefaultSource};
  // conda's `channels` is [defaults] when unset. envbuild solves from no channel nobody named:
  // `defaults` applies only where a configuration said what it means (default_channels).
  if (!shown.channels && config.default_channels)
    shown.channels = Sourced<std::vector<std::string>>{
        {"defaults"},
        "conda's default, as default_channels is set (" + config.default_channels->source + ")"};
  if (shown.channels) s.channels = shown.channels->value;
  shown.channel_priority =
      pick(flags.channel_priority, "--channel-priority", config.channel_priority, "strict");
  ENVB_ASSIGN_OR_RETURN(s.strict_channel_priority, parse_priority(*shown.channel_priority));
  if (flags.offline) shown.offline = Sourced<bool>{true, "--offline"};
  if (!shown.offline) shown.offline = Sourced<bool>{false, kDefaultSource};
  s.offline = shown.offline->value;
  if (!shown.ssl_verify) shown.ssl_verify = Sourced<std::string>{"true", kDefaultSource};
  ENVB_TRY(apply_ssl_verify(*shown.ssl_verify, s.http.tls));
  for (const auto& [key, proxy] : shown.proxy_servers) s.http.proxies[key] = proxy.value;
  if (!shown.envs_dirs)
    shown.envs_dirs = Sourced<std::vector<std::string>>{{"~/.conda/envs"}, kDefaultSource};
  ENVB_TRY(set_channel_options(flags, s));
  return s;
}

Result<fs::path> prefix_of_name(const std::string& name, const EffectiveSettings& settings) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    return fail(Errc::InvalidInput, "-n '" + name + "': an environment name is one path segment")
        .with_hint("give the directory with -p/--prefix instead");
  std::string tried;
  for (const std::string& dir : settings.shown.envs_dirs->value) {
    fs::path path = expand_home(dir);
    std::error_code ec;
    fs::create_directories(path, ec);
    if (!ec && ::access(path.c_str(), W_OK) == 0) return path / name;
    tried += (tried.empty() ? "" : ", ") + path.string();
  }
  return fail(Errc::InvalidInput, "-n " + name + ": no writable directory in envs_dirs (" + tried +
                                      ", " + settings.shown.envs_dirs->source + ")")
      .with_hint("set envs_dirs in .condarc, or give the directory with -p/--prefix");
}

Result<EffectiveSettings> effective_settings(const SolveCliOptions& flags) {
  ENVB_ASSIGN_OR_RETURN(auto config,
                        conda::load_conda_config(conda::CondaConfigEnvironment::from_process()));
  return effective_settings(flags, config);
}

void apply_fetch_settings(const EffectiveSettings& settings, PackageCacheOptions& packages) {
  packages.offline = settings.offline;
  packages.http.tls = settings.http.tls;
  packages.http.proxies = settings.http.proxies;
  packages.mirrors = settings.channel_options.mirrors;
}

}  // namespace envbuild::builder::cli
