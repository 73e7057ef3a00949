// Usage errors: what CLI11 rejected, said once, with a "did you mean" for a mistyped command or
// flag, and exit code 2 (invalid input) as for every other bad argument.

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/cli/cli.hpp"
#include "common/format.hpp"

namespace envbuild::builder::cli {

namespace {

// The flags `cmd` knows, as written on a command line ("--output", "-o").
std::vector<std::string> flags_of(const CLI::App& cmd) {
  std::vector<std::string> out = {"--help", "-h"};
  for (const CLI::Option* option : cmd.get_options()) {
    for (const auto& name : option->get_lnames()) out.push_back("--" + name);
    for (const auto& name : option->get_snames()) out.push_back("-" + name);
  }
  return out;
}

std::vector<std::string> subcommands_of(const CLI::App& cmd) {
  std::vector<std::string> out;
  for (const CLI::App* sub : cmd.get_subcommands([](const CLI::App*) { return true; }))
    out.push_back(sub->get_name());
  return out;
}

std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& names) {
  std::vector<std::string_view> views(names.begin(), names.end());
  return common::did_you_mean(word, views);
}

}  // namespace

std::string usage_hint(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* cmd = &app;
  bool positional_seen = false;
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg.size() > 1 && arg.front() == '-') {
      const std::string name = arg.substr(0, arg.find('='));
      const auto flags = flags_of(*cmd);
      if (std::find(flags.begin(), flags.end(), name) != flags.end()) continue;
      // "-pfoo" and "-abc" are short flags with a value or grouped: only long ones are guessed.
      if (!name.starts_with("--")) continue;
      const std::string where = cmd == &app ? "envbuild" : "envbuild " + cmd->get_name();
      if (auto guess = closest(name, flags))
        return "'" + name + "' is not an option of " + where + ": did you mean '" + *guess + "'?";
      return "'" + name + "' is not an option of " + where + "; see '" + where + " --help'";
    }
    const auto subs = subcommands_of(*cmd);
    if (std::find(subs.begin(), subs.end(), arg) != subs.end()) {
      cmd = cmd->get_subcommand(arg);
      positional_seen = false;
      continue;
    }
    // The first word after a command that has subcommands must be one of them.
    if (!subs.empty() && !positional_seen) {
      const std::string where = cmd == &app ? "envbuild" : "envbuild " + cmd->get_name();
      if (auto guess = closest(arg, subs))
        return "'" + arg + "' is not a command of " + where + ": did you mean '" + *guess + "'?";
      return "'" + arg + "' is not a command of " + where + "; see '" + where + " --help'";
    }
    positional_seen = true;
  }
  return "";
}

int usage_error(const CLI::App& app, const CLI::ParseError& error,
                const std::vector<std::string>& args) {
  std::cerr << "error: " << error.what() << "\n";
  if (std::string hint = usage_hint(app, args); !hint.empty())
    std::cerr << "hint: " << hint << "\n";
  return exit_code_for(Errc::InvalidInput);
}

}  // namespace envbuild::builder::cli
