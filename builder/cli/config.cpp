// `envbuild config --show`: the settings solve, lock, install and build use (.condarc files and
// CONDA_* variables, conda/condarc.hpp, over envbuild's defaults: builder/cli/settings.hpp), each
// value with the file, variable or default it comes from.

#include <iostream>
#include <nlohmann/json.hpp>

#include "builder/cli/cli.hpp"
#include "builder/cli/settings.hpp"
#include "common/http.hpp"
#include "conda/condarc.hpp"

namespace envbuild::builder::cli {

namespace {

// URLs in what is shown lose their secrets (a proxy's password, a channel's token).
std::string redacted(const std::string& value) { return common::redact_url(value); }
std::vector<std::string> redacted(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(common::redact_url(v));
  return out;
}
bool redacted(bool value) { return value; }

template <class T>
void put(nlohmann::json& out, const char* key, const std::optional<conda::Sourced<T>>& field) {
  if (field) out[key] = {{"value", redacted(field->value)}, {"source", field->source}};
}

void put(nlohmann::json& out, const char* key,
         const std::map<std::string, conda::Sourced<std::string>>& field) {
  for (const auto& [name, value] : field)
    out[key][name] = {{"value", common::redact_url(value.value)}, {"source", value.source}};
}

Result<int> run_config(bool json) {
  // What a command without flags gets: the same function computes every command's settings.
  ENVB_ASSIGN_OR_RETURN(EffectiveSettings settings, effective_settings(SolveCliOptions{}));
  const conda::CondaConfig& config = settings.shown;
  if (!json) {
    std::cout << conda::describe(config);
    return 0;
  }
  nlohmann::json out = nlohmann::json::object();
  put(out, "channels", config.channels);
  put(out, "channel_alias", config.channel_alias);
  put(out, "default_channels", config.default_channels);
  put(out, "custom_channels", config.custom_channels);
  put(out, "channel_priority", config.channel_priority);
  put(out, "offline", config.offline);
  put(out, "ssl_verify", config.ssl_verify);
  put(out, "proxy_servers", config.proxy_servers);
  put(out, "envs_dirs", config.envs_dirs);
  out["files"] = config.files;
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

void register_config(CLI::App& app, Outcome& outcome) {
  auto json = std::make_shared<bool>(false);
  auto show = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "config", "Show the settings solving and fetching use (.condarc, CONDA_*, defaults)");
  cmd->add_flag("--show", *show, "print every setting and where it comes from (the default)");
  cmd->add_flag("--json", *json, "print JSON: {key: {value, source}}, files");
  cmd->footer(
      "Read, lowest precedence first: /etc/conda, /var/lib/conda, $XDG_CONFIG_HOME/conda (or\n"
      "~/.config/conda), ~/.conda, ~/.condarc, $CONDA_PREFIX, $CONDARC (each .condarc, condarc and\n"
      "condarc.d/*.yml), then CONDA_CHANNELS, CONDA_CHANNEL_ALIAS, CONDA_DEFAULT_CHANNELS,\n"
      "CONDA_CHANNEL_PRIORITY, CONDA_OFFLINE, CONDA_SSL_VERIFY, CONDA_ENVS_DIRS. The flags of\n"
      "solve, lock, install and build (--channel, --channel-alias, --channel-priority,\n"
      "--offline) win over all of them.");
  // The callback owns both flags: CLI11 writes --show into *show after register_config returns.
  cmd->callback([json, show, &outcome] { outcome.result = run_config(*json); });
}

}  // namespace envbuild::builder::cli
