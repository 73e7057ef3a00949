#include "tests/testing/channels.hpp"

#include "common/fs.hpp"
#include "tests/testing/shared_fixture.hpp"
#include "tests/testing/testing.hpp"

namespace envbuild::testing {

namespace fs = std::filesystem;

namespace {

/// examples/demo/make_channel.py (with `args`) indexed by envbuild, made once per test run and
/// shared by the test processes (shared_fixture()).
std::optional<fs::path> made_channel(const std::string& name, const std::string& args,
                                     std::string& why) {
  const fs::path make_channel = source_dir() / "examples/demo/make_channel.py";
  const fs::path envbuild = binary_dir() / "envbuild";
  std::string python = run_command("readlink -f \"$(command -v python3)\"").output;
  while (!python.empty() && python.back() == '\n') python.pop_back();
  const std::string inputs = "make_channel.py" + args + ", envbuild index\n" +
                             file_identity(make_channel) + "\n" + file_identity(envbuild) + "\n" +
                             file_identity(python) + "\n";
  auto channel = shared_fixture(name, inputs, [&](const fs::path& dir) -> Result<void> {
    auto made = run_command("python3 " + shell_quote(make_channel.string()) + " " +
                            shell_quote(dir.string()) + args + " && " +
                            shell_quote(envbuild.string()) + " index " + shell_quote(dir.string()));
    if (made.exit_code != 0) return fail(Errc::Internal, "make_channel.py: " + made.output);
    return ok();
  });
  if (!channel) {
    why = channel.error().to_string();
    return std::nullopt;
  }
  return *channel;
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
  fs::create_symlink(data_dir() / "packages/channels/conda-forge-subset/linux-64",
                     channel / "linux-64");
  write_text(channel / "noarch/repodata.json",
             R"({"info":{"subdir":"noarch"},"packages":{},"packages.conda":{}})");
  return channel;
}

}  // namespace envbuild::testing
