#pragma once

// The steps of `envrun IMAGE -- COMMAND` that sit between the cache and exec: the host check of
// an environment's virtual-package requirements, and the whole run.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/cache.hpp"
#include "runtime/host_check.hpp"

namespace envbuild::runtime {

struct HostCheckOutcome {
  HostFacts host;
  CheckReport report;
  bool detected = false;  // false: there was nothing to check, the host was not probed
};

/// Parses requirement strings ("__cuda >=12.4") and checks them against this host. The host is
/// probed only when there is something to check (driver probe cached per boot in
/// `host_cache_dir`).
Result<HostCheckOutcome> check_host(const std::vector<std::string>& requirements,
                                    const std::filesystem::path& host_cache_dir);

/// "host: CUDA 12.4 (libcuda ...), glibc 2.36 (...)" then the report lines.
std::string describe(const HostCheckOutcome& outcome);

/// HostMismatch carrying the failing lines and their advice, with a --no-check hint.
Error host_mismatch(const HostCheckOutcome& outcome);

enum class HostCheck : bool { Skip, Enforce };

struct RunOptions {
  std::filesystem::path cache_root;  // Cache::default_root() in envrun
  HostCheck check = HostCheck::Enforce;
  enum class Mode { Command, Shell } mode = Mode::Command;
  /// How a new cache entry is kept: --store, else $ENVRUN_STORE ("tree" or "squashfs").
  Store store = Store::Tree;
};

/// "tree" or "squashfs"; nullopt for anything else.
std::optional<Store> parse_store(std::string_view text);

/// Materializes `image` (a reference) in the cache, checks the host, and replaces this process
/// with the command. Returns only on failure: the error to print and the exit code to use
/// (8 for a host mismatch, 127 when the command is not found, 126 when it cannot be executed).
struct RunFailure {
  Error error;
  int exit_code;
};
RunFailure run_in_image(const std::string& image, std::vector<std::string> command,
                        const RunOptions& options);

// ---- The warm path (launch_warm.cpp): what the lean `envrun` launcher links ----

/// The subcommands of envrun; any other first word is an IMAGE.
bool is_subcommand(std::string_view word);

/// `envrun [--no-check] [--store tree|squashfs] IMAGE [--] COMMAND...`.
struct RunForm {
  std::string image;
  std::vector<std::string> command;
  HostCheck check = HostCheck::Enforce;
  std::optional<Store> store;  // --store; unset: $ENVRUN_STORE, else a tree
};
/// nullopt when argv is not in the run form (a subcommand, --help, --version, a typo).
std::optional<RunForm> parse_run_form(int argc, char** argv);

/// run_in_image() when the cache already holds `image`: no image is opened. nullopt when it does
/// not (or the reference does not parse): the caller does a full run_in_image().
std::optional<RunFailure> run_if_cached(const std::string& image, std::vector<std::string> command,
                                        const RunOptions& options);

/// "envrun: error: ..." and its hint on stderr.
void print_error(const Error& error);

}  // namespace envbuild::runtime
