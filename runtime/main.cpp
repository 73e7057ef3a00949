// envrun: run a command inside an image's conda environment without a container engine.

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/version.hpp"

int main(int argc, char** argv) {
  using namespace envbuild;
  CLI::App app{
      "envrun: run a command in an OCI image's conda environment on a host without a container\n"
      "engine (HPC nodes, CI runners, laptops). The image is unpacked once into a relocated conda\n"
      "prefix; the host's CUDA driver and glibc are checked before launch.\n\n"
      "  envrun IMAGE -- COMMAND [ARGS...]",
      "envrun"};
  app.set_version_flag("-V,--version", std::string("envrun ") + kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::cout << app.help();
  return 0;
}
