#include "runtime/kernel.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/ascii.hpp"
#include "common/fs.hpp"
#include "common/root_dir.hpp"
#include "oci/reference.hpp"
#include "runtime/prefix_dir.hpp"

namespace envbuild::runtime {

namespace fs = std::filesystem;

namespace {

bool valid_kernel_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '.' || c == '_' || c == '-';
         });
}

}  // namespace

fs::path jupyter_user_data_dir() {
  if (const char* dir = std::getenv("JUPYTER_DATA_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return fs::path(xdg) / "jupyter";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/") / ".local" / "share" / "jupyter";
}

std::string kernelspec_json(const KernelSpecRequest& request) {
  std::vector<std::string> argv{request.envrun};
  if (request.no_check) argv.emplace_back("--no-check");
  for (const char* a : {"--", "python", "-m", "ipykernel_launcher", "-f", "{connection_file}"})
    argv.emplace_back(a);
  argv.insert(argv.begin() + (request.no_check ? 2 : 1), request.image);
  nlohmann::json spec{
      {"argv", argv},
      {"display_name", request.display_name.empty() ? "Python (envrun " + request.name + ")"
                                                    : request.display_name},
      {"language", "python"},
      {"metadata", {{"envrun", {{"image", request.image}}}}}};
  return spec.dump(1) + "\n";
}

Result<void> check_kernel_environment(const fs::path& prefix_dir, std::string_view image) {
  std::error_code ec;
  const fs::path prefix = fs::canonical(prefix_dir, ec);
  if (ec) return fail(Errc::NotFound, prefix_dir.string() + ": " + ec.message());
  const fs::path python = fs::canonical(prefix / "bin/python", ec);
  const std::string inside = prefix.string() + "/";
  if (ec || !python.string().starts_with(inside) || !fs::is_regular_file(python, ec))
    return Error(Errc::NotFound, std::string(image) + " has no python of its own (" +
                                     (prefix / "bin/python").string() +
                                     "): its kernel would run the host's python")
        .with_hint("add python and ipykernel to the environment and rebuild the image");
  ENVB_ASSIGN_OR_RETURN(common::RootDir root, common::RootDir::open(prefix));
  ENVB_ASSIGN_OR_RETURN(auto records, root.list("conda-meta"));
  bool has_ipykernel = std::any_of(records.begin(), records.end(), [](const std::string& name) {
    return name.starts_with("ipykernel-") && name.ends_with(".json");
  });
  ENVB_ASSIGN_OR_RETURN(auto lib, root.list("lib"));
  for (const auto& dir : lib) {
    if (has_ipykernel || !dir.starts_with("python")) continue;
    auto package = root.stat("lib/" + dir + "/site-packages/ipykernel/__init__.py");
    has_ipykernel = package && *package && S_ISREG((*package)->st_mode);
  }
  if (!has_ipykernel)
    return Error(Errc::NotFound, std::string(image) + " has python but not ipykernel")
        .with_hint("add ipykernel to the environment (conda: ipykernel) and rebuild the image");
  return ok();
}

Result<fs::path> install_kernelspec(KernelSpecRequest request) {
  request.name = common::ascii_lower(request.name);
  if (!valid_kernel_name(request.name))
    return fail(Errc::InvalidInput, "kernel name '" + request.name +
                                        "' may only have letters, digits, '.', '_' and '-'");
  if (is_prefix_directory(request.image)) {
    request.image = fs::absolute(request.image).lexically_normal().string();
  } else {
    ENVB_ASSIGN_OR_RETURN(oci::ImageReference ref, oci::ImageReference::parse(request.image));
    if (ref.transport != oci::Transport::Registry)
      ref.path = fs::absolute(ref.path).lexically_normal();
    request.image = ref.to_string();
  }
  if (request.envrun.empty() || request.envrun.front() != '/')
    return fail(Errc::InvalidInput,
                "the envrun path in a kernelspec must be absolute, got '" + request.envrun + "'");
  fs::path data = request.prefix ? *request.prefix / "share" / "jupyter" : jupyter_user_data_dir();
  fs::path dir = fs::absolute(data / "kernels" / request.name);
  ENVB_TRY(common::make_dirs(dir));
  ENVB_TRY(common::write_file_atomic(dir / "kernel.json", kernelspec_json(request)));
  return dir;
}

}  // namespace envbuild::runtime
