#include "tests/testing/channels.hpp"

#include "common/fs.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

namespace fs = std::filesystem;

namespace {

/// examples/demo/make_channel.py into binary_dir()/test-channels/<name> (with `args`), indexed,
/// once per build directory: test processes run in parallel, so under a lock.
std::optional<fs::path> made_channel(const std::string& name, const std::string& args,
                                     std::string& why) {
  const fs::path dir = binary_dir() / "test-channels" / name;
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  auto lock = common::FileLock::acquire(dir.string() + ".lock", common::LockMode::Exclusive);
  if (!lock) {
    why = lock.error().to_string();
    return std::nullopt;
  }
  if (fs::exists(dir / "linux-64/repodata.json")) return dir;
  fs::remove_all(dir, ec);
  auto made = run_command(
      "python3 " + shell_quote((source_dir() / "examples/demo/make_channel.py").string()) + " " +
      shell_quote(dir.string()) + args + " && " +
      shell_quote((binary_dir() / "envbuild").string()) + " index " + shell_quote(dir.string()));
  if (made.exit_code != 0) {
    why = made.output;
    fs::remove_all(dir, ec);
    return std::nullopt;
  }
  return dir;
}

}  // namespace

std::optional<fs::path> host_python_channel(std::string& why) {
  return made_channel("host-python", " --only python", why);
}

std::optional<fs::path> demo_channel(std::string& why) {
  return made_channel("demo", "", why);
}

fs::path conda_forge_subset_channel(const fs::path& scratch) {
  const fs::path channel = scratch / "conda-forge-subset";
  fs::create_directories(channel / "noarch");
  fs::create_symlink(*testdata_dir() / "packages/channels/conda-forge-subset/linux-64",
                     channel / "linux-64");
  write_text(channel / "noarch/repodata.json",
             R"({"info":{"subdir":"noarch"},"packages":{},"packages.conda":{}})");
  return channel;
}

}  // namespace envbuild::testing
