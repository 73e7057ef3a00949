#pragma once

// Subcommands of `envbuild`. Each lives in its own file under builder/cli/ and adds itself to the
// app; a subcommand's callback stores its Result in `outcome` so main() maps it to an exit code.

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>

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

}  // namespace envbuild::builder::cli
