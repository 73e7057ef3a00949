#pragma once

// Fixtures made once per test run and shared by its test processes. ctest runs every test in a
// process of its own (gtest_discover_tests), so a suite's SetUpTestSuite runs once per test: a
// suite whose setup solves, fetches and builds asks shared_fixture() for its directory instead.

#include <filesystem>
#include <functional>
#include <string>

#include "common/result.hpp"

namespace envbuild::testing {

/// Where shared fixtures live: <binary_dir>/test-fixtures, or $TEST_TMPDIR/test-fixtures under
/// Bazel (which runs the tests of a binary in one process).
std::filesystem::path fixtures_dir();

/// A file's identity for a fixture's inputs: its path, size and modification time (a rebuilt
/// envbuild has another one).
std::string file_identity(const std::filesystem::path& file);

/// The directory of fixture `name` made from `inputs`: a text naming everything the fixture
/// depends on (its recipe, the file_identity() of the programs that make it). The first process
/// to ask makes it: under an exclusive flock on <fixtures_dir>/<name>/lock it removes whatever is
/// there (a fixture of other inputs, or one left half-made by a killed process), runs `make` on
/// the empty <fixtures_dir>/<name>/<hash of inputs>/, and then writes a completion marker. The
/// others wait for the lock and find the marker. When `make` fails nothing is marked, and the
/// next process tries again. Tests treat the directory as read-only and copy what they change.
Result<std::filesystem::path> shared_fixture(
    const std::string& name, const std::string& inputs,
    const std::function<Result<void>(const std::filesystem::path&)>& make);

}  // namespace envbuild::testing
