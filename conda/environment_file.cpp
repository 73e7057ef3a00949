#include "conda/environment_file.hpp"

#include <array>
#include <optional>

#include "common/fs.hpp"
#include "conda/internal/text.hpp"
#include "conda/internal/yaml.hpp"

namespace envbuild::conda {
namespace {

using internal::yaml_error;

constexpr std::array<std::string_view, 7> kKeys = {
    "name", "prefix", "channels", "dependencies", "variables", "platforms", "category"};
// Keys conda-lock reads that conda ignores: accepted with a warning.
constexpr std::array<std::string_view, 2> kToleratedKeys = {"allow-pypi-requests",
                                                            "pip-repositories"};

// What std::regex's ECMAScript \s matches in the C locale.
bool is_regex_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

struct SelectorComment {
  size_t start = 0;  // of the expression inside the brackets
  std::string_view expression;
};

// The `# [expr]` comment that ends `line`, as the regex `\s#\s*\[([^\]]*)\]\s*$` finds it
// (leftmost match), in one pass: std::regex recurses once per character it repeats, and a long
// comment overflowed the stack.
std::optional<SelectorComment> find_selector(std::string_view line) {
  size_t end = line.size();
  while (end > 0 && is_regex_space(line[end - 1])) --end;
  if (end == 0 || line[end - 1] != ']') return std::nullopt;
  const size_t close = end - 1;
  // The expression holds no ']': the comment starts after the one before `close`.
  const size_t previous = close == 0 ? std::string_view::npos : line.rfind(']', close - 1);
  for (size_t i = previous == std::string_view::npos ? 0 : previous + 1; i + 1 < close; ++i) {
    if (!is_regex_space(line[i]) || line[i + 1] != '#') continue;
    size_t open = i + 2;
    while (open < close && is_regex_space(line[open])) ++open;
    if (open < close && line[open] == '[')
      return SelectorComment{open + 1, line.substr(open + 1, close - open - 1)};
  }
  return std::nullopt;
}

// Blanks every line whose `# [expr]` selector is false for the target, keeping line numbers.
Result<std::string> apply_selectors(std::string_view text, const EnvironmentFileOptions& options) {
  std::string out;
  size_t line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    ++line_no;
    if (auto selector = find_selector(line)) {
      auto keep = evaluate_selector(selector->expression, options.target);
      if (!keep) {
        return fail(Errc::InvalidInput, options.file_name + ":" + std::to_string(line_no) + ":" +
                                            std::to_string(selector->start + 1) + ": " +
                                            keep.error().message());
      }
      if (!*keep) line = {};
    }
    out += line;
    if (end < text.size()) out += '\n';
    start = end + 1;
  }
  return out;
}

class EnvironmentParser {
 public:
  explicit EnvironmentParser(const EnvironmentFileOptions& options) : options_(options) {}

  Result<EnvironmentFile> parse(const YAML::Node& root) {
    if (root.IsNull()) return fail(Errc::InvalidInput, file() + ": empty environment file");
    if (!root.IsMap()) return error(root, "expected a mapping of keys (name, channels, ...)");
    for (const auto& item : root) {
      const YAML::Node& key_node = item.first;
      const YAML::Node& value = item.second;
      ENVB_ASSIGN_OR_RETURN(std::string key, internal::scalar(key_node, file(), "a key"));
      if (key == "name") {
        ENVB_ASSIGN_OR_RETURN(env_.name, optional_string(value, "'name'"));
      } else if (key == "prefix") {
        ENVB_ASSIGN_OR_RETURN(env_.prefix, optional_string(value, "'prefix'"));
      } else if (key == "category") {
        ENVB_ASSIGN_OR_RETURN(env_.category, optional_string(value, "'category'"));
      } else if (key == "channels") {
        ENVB_TRY(parse_channels(value));
      } else if (key == "dependencies") {
        ENVB_TRY(parse_dependencies(value));
      } else if (key == "variables") {
        ENVB_TRY(parse_variables(value));
      } else if (key == "platforms") {
        ENVB_TRY(parse_platforms(value));
      } else if (std::find(kToleratedKeys.begin(), kToleratedKeys.end(), key) !=
                 kToleratedKeys.end()) {
        env_.warnings.push_back(location(key_node) + ": ignoring conda-lock key '" + key + "'");
      } else {
        Error e = error(key_node, "unknown key '" + key + "'");
        if (auto guess = internal::did_you_mean(key, kKeys)) {
          return std::move(e).with_hint("did you mean '" + *guess + "'?");
        }
        return std::move(e).with_hint(
            "known keys: name, prefix, channels, dependencies, variables, platforms, category");
      }
    }
    return std::move(env_);
  }

 private:
  const std::string& file() const { return options_.file_name; }
  Error error(const YAML::Node& node, std::string message) const {
    return yaml_error(file(), node.Mark(), std::move(message));
  }
  std::string location(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    return file() + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  // Wraps an error from a spec parser with the node's location, keeping its hint.
  Error at(const YAML::Node& node, const Error& inner) const {
    Error e = error(node, inner.message());
    if (!inner.hint().empty()) return std::move(e).with_hint(inner.hint());
    return e;
  }

  Result<std::string> optional_string(const YAML::Node& node, std::string_view what) {
    if (node.IsNull()) return std::string();
    return internal::scalar(node, file(), what);
  }

  Result<void> parse_channels(const YAML::Node& node) {
    if (node.IsNull()) return ok();
    if (!node.IsSequence()) return error(node, "'channels' must be a list");
    for (const auto& item : node) {
      ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(item, file(), "a channel"));
      if (text == "nodefaults") {
        env_.nodefaults = true;
        continue;
      }
      auto channel = UnresolvedChannel::parse(text);
      if (!channel) return at(item, channel.error());
      env_.channels.push_back(std::move(*channel));
    }
    return ok();
  }

  Result<void> add_spec(const YAML::Node& item, const std::string& text) {
    auto spec = MatchSpec::parse(text);
    if (!spec) return at(item, spec.error());
    env_.dependencies.push_back(std::move(*spec));
    return ok();
  }

  Result<void> parse_dependencies(const YAML::Node& node) {
    if (node.IsNull()) return ok();
    if (!node.IsSequence()) return error(node, "'dependencies' must be a list");
    for (const auto& item : node) {
      if (item.IsNull()) continue;  // a line removed by a selector
      if (item.IsScalar()) {
        ENVB_TRY(add_spec(item, item.Scalar()));
        continue;
      }
      if (!item.IsMap() || item.size() != 1) {
        return error(item, "expected a match spec or a subsection such as 'pip:'");
      }
      const auto entry = *item.begin();
      ENVB_ASSIGN_OR_RETURN(std::string key, internal::scalar(entry.first, file(), "a key"));
      if (key == "pip") {
        ENVB_TRY(parse_pip(entry.second));
      } else if (key.starts_with("sel(") && key.ends_with(")")) {
        // mamba's `- sel(linux): spec`.
        auto keep = evaluate_selector(key.substr(4, key.size() - 5), options_.target);
        if (!keep) return at(entry.first, keep.error());
        if (!*keep) continue;
        ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(entry.second, file(), "a spec"));
        ENVB_TRY(add_spec(entry.second, text));
      } else {
        return std::move(error(entry.first, "unknown dependencies subsection '" + key + "'"))
            .with_hint("only 'pip:' subsections are supported (CEP 24)");
      }
    }
    return ok();
  }

  Result<void> parse_pip(const YAML::Node& node) {
    if (node.IsNull()) return ok();
    if (!node.IsSequence()) return error(node, "'pip' must be a list");
    for (const auto& item : node) {
      if (item.IsNull()) continue;
      ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(item, file(), "a pip requirement"));
      env_.pip.push_back(PipRequirement{text, item.Mark().line + 1});
    }
    return ok();
  }

  Result<void> parse_variables(const YAML::Node& node) {
    if (node.IsNull()) return ok();
    if (!node.IsMap()) return error(node, "'variables' must be a mapping of NAME: value");
    for (const auto& item : node) {
      ENVB_ASSIGN_OR_RETURN(std::string name, internal::scalar(item.first, file(), "a name"));
      ENVB_ASSIGN_OR_RETURN(std::string value,
                            internal::scalar(item.second, file(), "variable '" + name + "'"));
      env_.variables.emplace_back(std::move(name), std::move(value));
    }
    return ok();
  }

  Result<void> parse_platforms(const YAML::Node& node) {
    if (node.IsNull()) return ok();
    if (!node.IsSequence()) return error(node, "'platforms' must be a list");
    for (const auto& item : node) {
      if (item.IsNull()) continue;
      ENVB_ASSIGN_OR_RETURN(std::string text, internal::scalar(item, file(), "a platform"));
      auto platform = Platform::parse(text);
      if (!platform) return at(item, platform.error());
      env_.platforms.push_back(std::move(*platform));
    }
    return ok();
  }

  const EnvironmentFileOptions& options_;
  EnvironmentFile env_;
};

}  // namespace

Result<EnvironmentFile> parse_environment_file(std::string_view text,
                                               const EnvironmentFileOptions& options) {
  ENVB_ASSIGN_OR_RETURN(std::string selected, apply_selectors(text, options));
  ENVB_ASSIGN_OR_RETURN(YAML::Node root, internal::load_yaml(selected, options.file_name));
  try {
    return EnvironmentParser(options).parse(root);
  } catch (const YAML::Exception& e) {
    return internal::yaml_error(options.file_name, e.mark, e.msg);
  }
}

Result<EnvironmentFile> read_environment_file(const std::filesystem::path& path,
                                              const Platform& target) {
  ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(path));
  EnvironmentFileOptions options;
  options.target = target;
  options.file_name = path.string();
  return parse_environment_file(text, options);
}

}  // namespace envbuild::conda
