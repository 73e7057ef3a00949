// envbuild: conda environment.yml -> solved, locked, layered, reproducible OCI image.

#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "builder/cli/cli.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  using namespace envbuild;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CLI::App app{
      "envbuild: build Docker-ready, layered, reproducible OCI images from conda environment.yml\n"
      "files, without a container engine.",
      "envbuild"};
  app.set_version_flag("-V,--version", std::string("envbuild ") + kVersion);
  app.require_subcommand(0, 1);
  app.footer(
      "Run 'envbuild <command> --help' for a command's options.\n"
      "Docs: README.md and docs/design.md in the source tree.");

  builder::cli::Outcome outcome;
  for (auto registrar : builder::cli::registrars()) registrar(app, outcome);

  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Usage errors are invalid input (exit 2), as the README says; CLI11's own codes are not.
    return builder::cli::usage_error(app, e, args);
  }
  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    return exit_code_for(Errc::InvalidInput);
  }
  int code = 0;
  if (outcome.result) {
    if (outcome.result->has_value()) {
      code = **outcome.result;
    } else {
      builder::cli::print_error(outcome.result->error());
      code = exit_code_for(outcome.result->error().code());
    }
  }
  curl_global_cleanup();
  return code;
}
