#pragma once

// `envrun kernel install IMAGE --name N`: a Jupyter kernelspec whose kernel runs in the image's
// environment through envrun, so a Jupyter server on the host (or an HPC portal) can use it.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace envbuild::runtime {

struct KernelSpecRequest {
  std::string image;         // the reference or prefix directory (local paths made absolute)
  std::string name;          // the kernel's directory name ([A-Za-z0-9._-], lowercased)
  std::string display_name;  // empty: "Python (envrun NAME)"
  std::string envrun;        // the envrun binary to launch (absolute)
  bool no_check = false;     // launch with --no-check
  /// Where kernels/NAME goes: --prefix P gives P/share/jupyter; nullopt: the user's data dir.
  std::optional<std::filesystem::path> prefix;
};

/// Jupyter's user data directory: $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else
/// ~/.local/share/jupyter (jupyter_core on Linux).
std::filesystem::path jupyter_user_data_dir();

/// The kernel.json text: argv [envrun, (--no-check,) IMAGE, --, python, -m, ipykernel_launcher,
/// -f, {connection_file}], display_name, language "python", metadata.envrun.image.
std::string kernelspec_json(const KernelSpecRequest& request);

/// Whether the environment at `prefix` can run the kernel: its bin/python resolves to a file
/// inside the prefix (a missing one, or a link to the host's python, would start the host's
/// interpreter instead), and ipykernel is installed (a conda record or a site-packages package).
/// NotFound naming what is missing and how to add it otherwise.
Result<void> check_kernel_environment(const std::filesystem::path& prefix, std::string_view image);

/// Validates the request, writes <data dir>/kernels/<name>/kernel.json atomically (replacing an
/// existing spec of that name) and returns the kernel's directory.
Result<std::filesystem::path> install_kernelspec(KernelSpecRequest request);

}  // namespace envbuild::runtime
