#include "conda/condarc.hpp"

#include <algorithm>
#include <system_error>

#include "common/ascii.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "conda/internal/yaml.hpp"

extern char** environ;

namespace envbuild::conda {
namespace {

namespace fs = std::filesystem;
using internal::yaml_error;

// The files of one search-path directory: .condarc, condarc, then condarc.d/*.yml|*.yaml sorted.
void add_directory(const fs::path& dir, std::vector<fs::path>& out) {
  std::error_code ec;
  for (const char* name : {".condarc", "condarc"})
    if (fs::is_regular_file(dir / name, ec)) out.push_back(dir / name);
  std::vector<fs::path> parts;
  for (fs::directory_iterator it(dir / "condarc.d", ec), end; !ec && it != end; it.increment(ec)) {
    const auto ext = it->path().extension();
    if ((ext == ".yml" || ext == ".yaml") && it->is_regular_file(ec)) parts.push_back(it->path());
  }
  std::sort(parts.begin(), parts.end());
  out.insert(out.end(), parts.begin(), parts.end());
}

std::string variable(const CondaConfigEnvironment& env, const std::string& name) {
  auto it = env.variables.find(name);
  return it == env.variables.end() ? std::string() : it->second;
}

// Higher-precedence items first, each once (conda's merge of sequence parameters).
void merge_list(std::optional<Sourced<std::vector<std::string>>>& into,
                std::vector<std::string> items, const std::string& source) {
  if (into) {
    for (auto& item : into->value)
      if (std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
    into->source = source + ", " + into->source;
  } else {
    into.emplace();
    into->source = source;
  }
  into->value = std::move(items);
}

class CondarcMerger {
 public:
  CondarcMerger(const std::string& source, CondaConfig& config)
      : source_(source), config_(config) {}

  Result<void> merge(const YAML::Node& root) {
    if (!root || root.IsNull()) return ok();
    if (!root.IsMap()) return yaml_error(source_, root.Mark(), "a .condarc must be a mapping");
    for (const auto& item : root) {
      ENVB_ASSIGN_OR_RETURN(std::string key, internal::scalar(item.first, source_, "key"));
      ENVB_TRY(merge_key(key, item.second));
    }
    return ok();
  }

 private:
  Result<void> merge_key(const std::string& key, const YAML::Node& value) {
    if (key == "channels" || key == "default_channels" || key == "envs_dirs") {
      ENVB_ASSIGN_OR_RETURN(auto items, list(value, key));
      auto& field = key == "channels"           ? config_.channels
                    : key == "default_channels" ? config_.default_channels
                                                : config_.envs_dirs;
      merge_list(field, std::move(items), source_);
    } else if (key == "channel_alias" || key == "channel_priority" || key == "ssl_verify") {
      ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(value, source_, key));
      if (key == "channel_priority" && text != "strict" && text != "flexible" &&
          text != "disabled")
        return yaml_error(source_, value.Mark(),
                          "channel_priority must be strict, flexible or disabled, not '" + text +
                              "'");
      auto& field = key == "channel_alias"      ? config_.channel_alias
                    : key == "channel_priority" ? config_.channel_priority
                                                : config_.ssl_verify;
      field = Sourced<std::string>{std::move(text), source_};
    } else if (key == "offline") {
      ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(value, source_, key));
      ENVB_ASSIGN_OR_RETURN(bool on, boolean(text, value.Mark()));
      config_.offline = Sourced<bool>{on, source_};
    } else if (key == "custom_channels" || key == "proxy_servers") {
      ENVB_TRY(merge_map(value, key, key == "custom_channels" ? config_.custom_channels
                                                              : config_.proxy_servers));
    }
    return ok();
  }

  Result<std::vector<std::string>> list(const YAML::Node& node, const std::string& key) {
    std::vector<std::string> out;
    if (node.IsNull()) return out;
    if (!node.IsSequence()) return yaml_error(source_, node.Mark(), key + " must be a list");
    for (const auto& item : node) {
      ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(item, source_, key));
      out.push_back(std::move(text));
    }
    return out;
  }

  Result<void> merge_map(const YAML::Node& node, const std::string& key,
                         std::map<std::string, Sourced<std::string>>& into) {
    if (node.IsNull()) return ok();
    if (!node.IsMap()) return yaml_error(source_, node.Mark(), key + " must be a mapping");
    for (const auto& item : node) {
      ENVB_ASSIGN_OR_RETURN(std::string name, internal::scalar(item.first, source_, key));
      ENVB_ASSIGN_OR_RETURN(std::string url, internal::scalar(item.second, source_, key));
      into[name] = Sourced<std::string>{std::move(url), source_};
    }
    return ok();
  }

  Result<bool> boolean(const std::string& text, const YAML::Mark& mark) {
    if (text == "true" || text == "True" || text == "yes" || text == "1") return true;
    if (text == "false" || text == "False" || text == "no" || text == "0") return false;
    return yaml_error(source_, mark, "expected true or false, not '" + text + "'");
  }

  const std::string& source_;
  CondaConfig& config_;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(std::move(item));
    start = end + 1;
  }
  return out;
}

// CONDA_CHANNELS=a,b and the like: the highest precedence before the command line.
Result<void> apply_variables(const CondaConfigEnvironment& env, CondaConfig& config) {
  for (const char* name : {"CHANNELS", "DEFAULT_CHANNELS", "ENVS_DIRS"}) {
    const std::string var = std::string("CONDA_") + name;
    const std::string text = variable(env, var);
    if (text.empty()) continue;
    auto& field = std::string(name) == "CHANNELS"           ? config.channels
                  : std::string(name) == "DEFAULT_CHANNELS" ? config.default_channels
                                                            : config.envs_dirs;
    field.reset();  // a variable replaces the files' list, as conda's env source does
    merge_list(field, split_list(text), var);
  }
  // Scalars go through the file parser, so that their checks are the same.
  for (const char* name : {"CHANNEL_ALIAS", "CHANNEL_PRIORITY", "SSL_VERIFY", "OFFLINE"}) {
    const std::string var = std::string("CONDA_") + name;
    const std::string text = variable(env, var);
    if (text.empty()) continue;
    const std::string key = common::ascii_lower(name);
    YAML::Node doc;
    doc[key] = text;
    ENVB_TRY(CondarcMerger(var, config).merge(doc));
  }
  return ok();
}

void show_list(std::string& out, const char* key,
               const std::optional<Sourced<std::vector<std::string>>>& field) {
  if (!field) return;
  out += std::string(key) + ":  # " + field->source + "\n";
  for (const auto& item : field->value) out += "  - " + common::redact_url(item) + "\n";
}

void show_map(std::string& out, const char* key,
              const std::map<std::string, Sourced<std::string>>& field) {
  if (field.empty()) return;
  out += std::string(key) + ":\n";
  for (const auto& [name, value] : field)
    out += "  " + name + ": " + common::redact_url(value.value) + "  # " + value.source + "\n";
}

}  // namespace

CondaConfigEnvironment CondaConfigEnvironment::from_process() {
  CondaConfigEnvironment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry = *e;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(entry.substr(0, eq));
    if (name == "HOME" || name == "XDG_CONFIG_HOME" || name == "CONDARC" ||
        name.starts_with("CONDA_"))
      env.variables[name] = std::string(entry.substr(eq + 1));
  }
  return env;
}

std::vector<fs::path> condarc_files(const CondaConfigEnvironment& env) {
  std::vector<fs::path> out;
  auto under_root = [&](const fs::path& p) { return env.root / p.relative_path(); };
  add_directory(under_root("/etc/conda"), out);
  add_directory(under_root("/var/lib/conda"), out);
  const std::string home = variable(env, "HOME");
  const std::string xdg = variable(env, "XDG_CONFIG_HOME");
  if (!xdg.empty()) {
    add_directory(under_root(fs::path(xdg) / "conda"), out);
  } else if (!home.empty()) {
    add_directory(under_root(fs::path(home) / ".config/conda"), out);
  }
  if (!home.empty()) {
    add_directory(under_root(fs::path(home) / ".conda"), out);
    std::error_code ec;
    if (fs::is_regular_file(under_root(fs::path(home) / ".condarc"), ec))
      out.push_back(under_root(fs::path(home) / ".condarc"));
  }
  if (const std::string prefix = variable(env, "CONDA_PREFIX"); !prefix.empty())
    add_directory(under_root(prefix), out);
  if (const std::string condarc = variable(env, "CONDARC"); !condarc.empty())
    out.push_back(under_root(condarc));  // named explicitly: a missing one is an error
  return out;
}

Result<void> merge_condarc(std::string_view text, const std::string& source, CondaConfig& config) {
  ENVB_ASSIGN_OR_RETURN(YAML::Node root, internal::load_yaml(text, source));
  try {
    return CondarcMerger(source, config).merge(root);
  } catch (const YAML::Exception& e) {
    return yaml_error(source, e.mark, e.msg);
  }
}

Result<CondaConfig> load_conda_config(const CondaConfigEnvironment& environment) {
  CondaConfig config;
  for (const auto& file : condarc_files(environment)) {
    ENVB_ASSIGN_OR_RETURN(std::string text,
                          common::read_file(file).context("reading conda's configuration"));
    ENVB_TRY(merge_condarc(text, file.string(), config));
    config.files.push_back(file.string());
  }
  ENVB_TRY(apply_variables(environment, config));
  return config;
}

std::string describe(const CondaConfig& config) {
  std::string out;
  show_list(out, "channels", config.channels);
  if (config.channel_alias)
    out += "channel_alias: " + common::redact_url(config.channel_alias->value) + "  # " +
           config.channel_alias->source + "\n";
  show_list(out, "default_channels", config.default_channels);
  show_map(out, "custom_channels", config.custom_channels);
  if (config.channel_priority)
    out += "channel_priority: " + config.channel_priority->value + "  # " +
           config.channel_priority->source + "\n";
  if (config.offline)
    out += std::string("offline: ") + (config.offline->value ? "true" : "false") + "  # " +
           config.offline->source + "\n";
  if (config.ssl_verify)
    out += "ssl_verify: " + config.ssl_verify->value + "  # " + config.ssl_verify->source + "\n";
  show_map(out, "proxy_servers", config.proxy_servers);
  show_list(out, "envs_dirs", config.envs_dirs);
  if (out.empty()) out = "# nothing set: conda's defaults apply\n";
  return out;
}

}  // namespace envbuild::conda
