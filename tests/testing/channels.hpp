#pragma once

// Channels the builder tests share: the host-python channel (a python package made from the
// host's interpreter: the conda-forge subset has no python) and the conda-forge subset of
// tests/data laid out as a channel.

#include <filesystem>
#include <optional>
#include <string>

namespace envbuild::testing {

/// The host-python channel (examples/demo/make_channel.py --only python, then `envbuild
/// index`), made once per test run (shared_fixture.hpp). nullopt, with `why` set, when it cannot
/// be made.
std::optional<std::filesystem::path> host_python_channel(std::string& why);

/// The whole demo channel (examples/demo/make_channel.py: the host's python, demo-hello with a
/// binary placeholder, demo-tools with a text one, noarch demo-trainer with an entry point and an
/// activate.d script), indexed, made once per test run (shared_fixture.hpp). nullopt, with `why`
/// set, when it cannot be made.
std::optional<std::filesystem::path> demo_channel(std::string& why);

/// The conda-forge subset as a channel in `scratch`: it has linux-64/ only, so an empty noarch/
/// beside a link to it.
std::filesystem::path conda_forge_subset_channel(const std::filesystem::path& scratch);

}  // namespace envbuild::testing
