#pragma once

// Subcommands of `envbuild`. Each lives in its own file under builder/cli/ and adds itself to the
// app; a subcommand's callback stores its Result in `outcome` so main() maps it to an exit code.

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace envbuild::builder::cli {

struct Outcome {
  std::optional<Result<int>> result;  // exit code or error, set by the subcommand that ran
};

/// Adds one subcommand. `run` is called when the subcommand is selected.
using Registrar = void (*)(CLI::App& app, Outcome& outcome);

/// Every subcommand known to this build, in --help order.
const std::vector<Registrar>& registrars();

/// Prints an error chain and its hint to stderr in the house style ("error: ...").
void print_error(const Error& error);

/// For a command line CLI11 rejected: "did you mean" the command or flag closest to the first
/// unknown one in `args` (argv without argv[0]); empty when there is nothing to suggest.
std::string usage_hint(const CLI::App& app, const std::vector<std::string>& args);

/// Prints a usage error and its hint to stderr; returns the exit code of invalid input (2).
int usage_error(const CLI::App& app, const CLI::ParseError& error,
                const std::vector<std::string>& args);

}  // namespace envbuild::builder::cli
