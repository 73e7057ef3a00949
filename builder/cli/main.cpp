// envbuild: conda environment.yml -> solved, locked, layered, reproducible OCI image.

#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <iostream>

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return 0;
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
