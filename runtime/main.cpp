// envrun-full: run a command inside an image's conda environment without a container engine.
// The `envrun` launcher (launcher/main.cpp) runs warm starts itself and execs this for the rest.
//
//   envrun [--no-check] IMAGE [--] COMMAND ARGS...   (the run form, parsed by hand: fast path)
//   envrun check|unpack|pull|ls|gc|shell|kernel ...   (subcommands, CLI11)

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/version.hpp"
#include "oci/reference.hpp"
#include "oci/registry/auth.hpp"
#include "runtime/activate.hpp"
#include "runtime/cache.hpp"
#include "runtime/host_check.hpp"
#include "runtime/kernel.hpp"
#include "runtime/launch.hpp"
#include "runtime/prefix_dir.hpp"
#include "runtime/squashfs_image.hpp"
#include "runtime/store.hpp"

namespace {

using namespace envbuild;
using runtime::print_error;
namespace fs = std::filesystem;

int fail_with(const Error& error) {
  print_error(error);
  return exit_code_for(error.code());
}

/// The user's cache, checked to be theirs alone before anything in it is used.
Result<runtime::Cache> open_cache() {
  ENVB_ASSIGN_OR_RETURN(fs::path root, runtime::Cache::default_root());
  runtime::Cache cache(std::move(root));
  ENVB_TRY(cache.check_root());
  return cache;
}

/// --store when given, else $ENVRUN_STORE, else a tree.
Result<runtime::Store> store_of(std::optional<runtime::Store> flag) {
  if (flag) return *flag;
  const char* value = std::getenv("ENVRUN_STORE");
  if (value == nullptr || *value == '\0') return runtime::Store::Tree;
  if (auto store = runtime::parse_store(value)) return *store;
  return Error(Errc::InvalidInput,
               "ENVRUN_STORE='" + std::string(value) + "': want tree or squashfs");
}

/// `envrun [--no-check] [--store S] IMAGE [--] COMMAND...`; nullopt when argv is not in that
/// form. The lean
/// launcher (launcher/main.cpp) has already tried the warm path and found no cache entry.
std::optional<int> try_run_form(int argc, char** argv) {
  auto form = runtime::parse_run_form(argc, argv);
  if (!form) return std::nullopt;
  auto root = runtime::Cache::default_root();
  if (!root) return fail_with(root.error());
  runtime::RunOptions options;
  options.cache_root = std::move(*root);
  options.check = form->check;
  auto store = store_of(form->store);
  if (!store) return fail_with(store.error());
  options.store = *store;
  runtime::RunFailure failure =
      runtime::run_in_image(form->image, std::move(form->command), options);
  print_error(failure.error);
  return failure.exit_code;
}

// The host facts and each requirement's verdict, for `envrun check --json`.
nlohmann::json check_json(const runtime::HostCheckOutcome& outcome) {
  auto optional = [](const std::optional<std::string>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& l : outcome.report.lines)
    lines.push_back({{"requirement", l.requirement.to_string()},
                     {"found", l.found},
                     {"ok", l.ok},
                     {"advice", l.advice}});
  return {{"host",
           {{"cuda", optional(outcome.host.cuda)},
            {"cuda_source", outcome.host.cuda_source},
            {"glibc", optional(outcome.host.glibc)},
            {"glibc_source", outcome.host.glibc_source},
            {"driver_version", optional(outcome.host.driver_version)}}},
          {"detected", outcome.detected},
          {"ok", !outcome.detected || outcome.report.ok()},
          {"requirements", lines}};
}

// What `envrun check IMAGE` checks: the requirements of an unpacked prefix, a cached image or
// an image's label. `said` gets what was looked at (a line of text, or JSON fields).
Result<std::vector<std::string>> requirements_of(runtime::Cache& cache, const std::string& image,
                                                 nlohmann::json& said) {
  if (auto file = image.empty() ? std::nullopt : runtime::squashfs_argument(image)) {
    ENVB_ASSIGN_OR_RETURN(auto opened, runtime::open_squashfs_image(*file));
    said = {{"image", opened.file.string()}, {"squashfs", true}, {"prefix", opened.prefix}};
    return opened.requirements;
  }
  if (runtime::is_prefix_directory(image)) {
    ENVB_ASSIGN_OR_RETURN(auto prefix, runtime::open_prefix_directory(image));
    said = {{"prefix", prefix.info.prefix}};
    return prefix.info.requirements;
  }
  if (image.empty()) return std::vector<std::string>{};
  ENVB_ASSIGN_OR_RETURN(auto ref, oci::ImageReference::parse(image));
  ENVB_ASSIGN_OR_RETURN(auto warm, cache.lookup(ref));
  if (warm) {
    said = {{"image", warm->info.manifest_digest}, {"unpacked_at", warm->info.prefix}};
    return warm->info.requirements;
  }
  ENVB_ASSIGN_OR_RETURN(auto opened, runtime::open_reference(ref, cache.root()));
  said = {{"image", opened->descriptor().digest.to_string()}, {"unpacked_at", nullptr}};
  const auto& labels = opened->config().config.labels;
  if (auto it = labels.find(std::string(conda::kRequirementsLabel)); it != labels.end())
    return conda::split_requirements_label(it->second);
  return std::vector<std::string>{};
}

int run_check(const std::string& image, const std::vector<std::string>& require, bool json) {
  auto cache = open_cache();
  if (!cache) return fail_with(cache.error());
  nlohmann::json said = nlohmann::json::object();
  auto requirements = requirements_of(*cache, image, said);
  if (!requirements) return fail_with(requirements.error());
  requirements->insert(requirements->end(), require.begin(), require.end());
  if (requirements->empty() && image.empty())
    return fail_with(Error(Errc::InvalidInput, "nothing to check: give an IMAGE or --require"));
  auto outcome = runtime::check_host(*requirements, cache->root() / "host");
  if (!outcome) return fail_with(outcome.error());
  if (json) {
    nlohmann::json out = check_json(*outcome);
    out.update(said);
    std::cout << out.dump(2) << "\n";
  } else {
    if (said.contains("squashfs")) {
      std::cout << "image: " << said["image"].get<std::string>() << " (SquashFS, prefix "
                << said["prefix"].get<std::string>() << ": requirements from its image.json)\n";
    } else if (said.contains("prefix")) {
      std::cout << "prefix: " << said["prefix"].get<std::string>() << "\n";
    } else if (said.contains("image")) {
      std::cout << "image: " << said["image"].get<std::string>()
                << (said["unpacked_at"].is_string()
                        ? " (unpacked at " + said["unpacked_at"].get<std::string>() + ")"
                        : std::string(" (not unpacked: requirements from its label)"))
                << "\n";
    }
    std::cout << runtime::describe(*outcome);
  }
  if (outcome->detected && !outcome->report.ok()) {
    std::cerr << "envrun: this host cannot run the environment (--no-check skips this check)\n";
    return exit_code_for(Errc::HostMismatch);
  }
  return 0;
}

int run_unpack(const std::string& image, const std::string& dir, bool no_check) {
  auto cache = open_cache();
  if (!cache) return fail_with(cache.error());
  runtime::UnpackOptions options;
  if (!no_check)
    options.precheck = [&](const std::vector<std::string>& requirements) -> Result<void> {
      ENVB_ASSIGN_OR_RETURN(auto outcome,
                            runtime::check_host(requirements, cache->root() / "host"));
      if (outcome.detected && !outcome.report.ok()) return runtime::host_mismatch(outcome);
      return {};
    };
  Result<runtime::EnvInfo> info = Error(Errc::Internal, "not unpacked");
  if (auto file = runtime::squashfs_argument(image)) {
    auto opened = runtime::open_squashfs_image(*file);
    if (!opened) return fail_with(opened.error());
    info = runtime::unpack_squashfs(*opened, dir, options);
  } else {
    auto ref = oci::ImageReference::parse(image);
    if (!ref) return fail_with(ref.error());
    auto opened = runtime::open_reference(*ref, cache->root());
    if (!opened) return fail_with(opened.error());
    info = runtime::unpack_image(**opened, dir, ref->to_string(), options);
  }
  if (!info) return fail_with(info.error());
  std::cout << "unpacked "
            << (info->manifest_digest.empty() ? info->reference : info->manifest_digest) << " into "
            << info->prefix << " (relocated from " << info->image_prefix << ")\n";
  return 0;
}

std::string format_time(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", std::localtime(&tt));
  return buf;
}

int run_ls(bool json) {
  auto cache = open_cache();
  if (!cache) return fail_with(cache.error());
  auto entries = cache->list();
  if (!entries) return fail_with(entries.error());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *entries)
      out.push_back({{"id", e.id},
                     {"reference", e.reference},
                     {"manifest_digest", e.manifest_digest},
                     {"prefix", e.prefix.string()},
                     {"last_used", std::chrono::duration_cast<std::chrono::seconds>(
                                       e.last_used.time_since_epoch())
                                       .count()},
                     {"in_use", e.in_use}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "ID            LAST USED         IN USE  REFERENCE / PREFIX\n";
  for (const auto& e : *entries)
    std::cout << e.id << "  " << format_time(e.last_used) << "  "
              << (e.in_use ? "yes   " : "no    ") << "  " << e.reference << "\n"
              << std::string(42, ' ') << e.prefix.string() << "\n";
  return 0;
}

int run_gc(int days) {
  auto cache = open_cache();
  if (!cache) return fail_with(cache.error());
  auto report = cache->gc(std::chrono::seconds(int64_t{days} * 86400));
  if (!report) return fail_with(report.error());
  for (const auto& id : report->removed) std::cout << "removed " << id << "\n";
  for (const auto& id : report->in_use) std::cout << "kept " << id << " (in use)\n";
  std::cout << report->removed.size() << " removed, " << report->in_use.size() << " in use kept, "
            << report->layers_removed.size() << " layers removed, " << report->layers_in_use
            << " layers in use kept, " << report->stale_staging << " abandoned unpacks and "
            << report->stale_refs << " stale references cleaned";
  if (report->unmounted > 0) std::cout << ", " << report->unmounted << " idle mounts taken down";
  std::cout << "\n";
  return 0;
}

struct PullFlags {
  std::optional<bool> tls_verify;
  std::string creds;
  std::string cert_dir;
};

int run_pull(const std::string& image, const PullFlags& flags) {
  auto ref = oci::ImageReference::parse(image);
  if (!ref) return fail_with(ref.error());
  oci::registry::RegistryOptions options = runtime::default_registry_options(*ref);
  if (flags.tls_verify) options.transport.tls.verify = *flags.tls_verify;
  options.transport.tls.cert_dir = flags.cert_dir;
  if (!flags.creds.empty()) {
    auto creds = oci::registry::parse_creds(flags.creds);
    if (!creds) return fail_with(creds.error());
    options.credentials = *creds;
  }
  auto cache = open_cache();
  if (!cache) return fail_with(cache.error());
  auto pulled = runtime::pull_to_store(*ref, cache->root(), options);
  if (!pulled) return fail_with(pulled.error());
  const auto& t = pulled->transfer;
  std::cout << "pulled " << ref->to_string() << "@" << pulled->manifest_digest << ": " << t.blobs
            << " blobs (" << t.uploaded << " downloaded, " << t.existed << " already there), "
            << t.blob_bytes << " bytes in " << t.elapsed.count() / 1000.0 << " s\n";
  return 0;
}

/// The `envrun` launcher next to this binary (what a kernelspec should start), else this binary.
std::string envrun_path() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  fs::path launcher = self.parent_path() / "envrun";
  return fs::exists(launcher, ec) ? launcher.string() : self.string();
}

int run_kernel_install(runtime::KernelSpecRequest request, bool user) {
  if (user && request.prefix)
    return fail_with(Error(Errc::InvalidInput, "--user and --prefix exclude each other"));
  request.envrun = envrun_path();
  // The image must exist and have python and ipykernel of its own: unpack it (as the kernel's
  // first start would) and look.
  auto cache = open_cache();
  if (!cache) return fail_with(cache.error());
  Result<runtime::Materialized> env = Error(Errc::Internal, "unset");
  if (runtime::is_prefix_directory(request.image)) {
    env = runtime::open_prefix_directory(request.image);
  } else {
    auto ref = oci::ImageReference::parse(request.image);
    if (!ref) return fail_with(ref.error());
    env = cache->materialize(*ref);
  }
  if (!env) return fail_with(env.error());
  if (auto ready = runtime::check_kernel_environment(env->info.prefix, request.image); !ready)
    return fail_with(ready.error());
  auto dir = runtime::install_kernelspec(std::move(request));
  if (!dir) return fail_with(dir.error());
  std::cout << "installed kernelspec in " << dir->string() << "\n";
  return 0;
}

/// What the command line says, filled by CLI11.
struct CommandLine {
  std::string image;
  std::string dir;
  std::vector<std::string> require;
  bool no_check = false;
  bool json = false;
  int days = 30;
  PullFlags pull_flags;
  runtime::KernelSpecRequest kernel_request;
  bool kernel_user = false;
  std::string kernel_prefix;
};

struct Subcommands {
  CLI::App *check, *unpack, *ls, *gc, *shell, *pull, *kernel_install;
};

/// The program's description, version flag and footer.
void describe(CLI::App& app) {
  app.description(
      "envrun: run a command in an OCI image's conda environment on a host without a container\n"
      "engine (HPC nodes, CI runners, laptops). The image is unpacked once into a relocated conda\n"
      "prefix in the cache; the host's CUDA driver and glibc are checked before launch.\n\n"
      "  envrun [--no-check] [--store tree|squashfs] IMAGE [--] COMMAND [ARGS...]\n"
      "  envrun [--no-check] PREFIX-DIR [--] COMMAND [ARGS...]   (relocated first if moved)\n\n"
      "--store squashfs keeps a new cache entry as one SquashFS file, mounted to run (default:\n"
      "a tree; also $ENVRUN_STORE).\n\n"
      "IMAGE: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME[:TAG]],\n"
      "docker://HOST/REPO[:TAG|@DIGEST] (pulled into the cache once, see envrun pull), or a\n"
      "SquashFS image from envbuild build --output squashfs:FILE (FILE or squashfs:FILE: mounted\n"
      "at its prefix without extracting it where the host allows, else unpacked into the cache)");
  app.set_version_flag("-V,--version", std::string("envrun ") + kVersion);
  app.require_subcommand(0, 1);
  app.footer(
      "Environment: ENVRUN_CACHE (cache root, default ~/.cache/envrun; keep it short: binary\n"
      "files can only take a prefix as long as their package's placeholder), ENVRUN_LIBCUDA (the\n"
      "libcuda.so.1 to probe), CONDA_OVERRIDE_CUDA / CONDA_OVERRIDE_GLIBC (pretend versions),\n"
      "ENVRUN_FULL (this program, for the envrun launcher: default envrun-full next to it),\n"
      "ENVRUN_SHARED_CACHE (read-only caches an administrator filled with envrun pull,\n"
      "colon-separated; blobs from them are verified), ENVRUN_SQUASHFS_MOUNT (auto, kernel, fuse\n"
      "or none: how SquashFS images may be mounted), ENVRUN_SQUASHFUSE (the squashfuse to use),\n"
      "ENVRUN_SQUASHFS_USERNS=1 (a user namespace even as root). The cache must be yours alone: it "
      "is\n"
      "created 0700 and refused when others can write to it.\n"
      "Exit codes: the command's own; 8 when the host cannot run the environment, 2 for invalid\n"
      "input, 127 when the command is not found.");

}

Subcommands add_subcommands(CLI::App& app, CommandLine& c) {
  auto* check = app.add_subcommand(
      "check",
      "Check this host's CUDA driver and glibc against an image's requirements (or "
      "--require ones) and print a report, without running anything");
  check->add_option("image", c.image,
                    "The image (its org.envbuild.requirements label, or the "
                    "records of its unpacked prefix)");
  check->add_option("--require", c.require,
                    "A virtual-package requirement such as '__cuda >=12.4' (repeatable)");
  check->add_flag("--json", c.json, "Print the host facts and each requirement's verdict as JSON");
  check->footer("Example: envrun check oci:./env:latest; envrun check --require '__cuda >=12'");

  auto* unpack = app.add_subcommand(
      "unpack", "Unpack an image into DIR as an ordinary conda prefix relocated to DIR");
  unpack->add_option("image", c.image, "The image")->required();
  unpack->add_option("dir", c.dir, "A directory that does not exist yet (or is empty)")->required();
  unpack->add_flag("--no-check", c.no_check, "Skip the host check");

  auto* ls = app.add_subcommand("ls", "List the environments in the cache");
  ls->add_flag("--json", c.json, "Print JSON");
  auto* gc =
      app.add_subcommand("gc", "Remove cached environments unused for N days (never one in use)");
  gc->add_option("--days", c.days, "Age in days of the last use (default 30; 0: all unused)")
      ->check(CLI::NonNegativeNumber);

  auto* shell = app.add_subcommand("shell",
                                   "Start an interactive shell ($SHELL -i) in an image's "
                                   "activated environment");
  shell->add_option("image", c.image, "The image")->required();
  shell->add_flag("--no-check", c.no_check, "Skip the host check");

  auto* pull = app.add_subcommand(
      "pull",
      "Pull a docker:// image into the cache's store (runs then use it without the "
      "registry; the first run of a docker:// image pulls it too)");
  pull->add_option("image", c.image, "docker://HOST/REPO[:TAG|@DIGEST]")->required();
  pull->add_option("--tls-verify", c.pull_flags.tls_verify,
                   "Verify TLS certificates (false: also falls back to plain http; default true, "
                   "false for localhost and 127.0.0.0/8 like Docker)");
  pull->add_option("--creds", c.pull_flags.creds,
                   "USERNAME:PASSWORD (default: podman/docker stored logins)");
  pull->add_option("--cert-dir", c.pull_flags.cert_dir,
                   "A directory with *.crt CAs and *.cert/*.key client certificates");

  auto* kernel = app.add_subcommand("kernel", "Jupyter kernels that run in an image");
  kernel->require_subcommand(1);
  auto* kernel_install = kernel->add_subcommand(
      "install",
      "Write a Jupyter kernelspec (kernel.json) that starts ipykernel in the image's "
      "environment through envrun");
  kernel_install->add_option("image", c.kernel_request.image, "The image")->required();
  kernel_install->add_option("--name", c.kernel_request.name, "The kernel's name (its directory)")
      ->required();
  kernel_install->add_option("--display-name", c.kernel_request.display_name,
                             "The name Jupyter shows (default: Python (envrun NAME))");
  kernel_install->add_flag("--user", c.kernel_user,
                           "Install for this user (the default): $JUPYTER_DATA_DIR, else "
                           "~/.local/share/jupyter");
  kernel_install->add_option("--prefix", c.kernel_prefix,
                             "Install into PREFIX/share/jupyter/kernels instead");
  kernel_install->add_flag("--no-check", c.kernel_request.no_check,
                           "Start the kernel without the host check");
  return {check, unpack, ls, gc, shell, pull, kernel_install};
}

int run_shell(const std::string& image, bool no_check) {
  auto root = runtime::Cache::default_root();
  if (!root) return fail_with(root.error());
  runtime::RunOptions options;
  options.cache_root = std::move(*root);
  options.check = no_check ? runtime::HostCheck::Skip : runtime::HostCheck::Enforce;
  options.mode = runtime::RunOptions::Mode::Shell;
  auto store = store_of(std::nullopt);
  if (!store) return fail_with(store.error());
  options.store = *store;
  runtime::RunFailure failure = runtime::run_in_image(image, {}, options);
  print_error(failure.error);
  return failure.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  if (auto code = try_run_form(argc, argv)) return *code;
  CLI::App app{"", "envrun"};
  describe(app);
  CommandLine c;
  const Subcommands sub = add_subcommands(app, c);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (sub.check->parsed()) return run_check(c.image, c.require, c.json);
  if (sub.unpack->parsed()) return run_unpack(c.image, c.dir, c.no_check);
  if (sub.ls->parsed()) return run_ls(c.json);
  if (sub.gc->parsed()) return run_gc(c.days);
  if (sub.pull->parsed()) return run_pull(c.image, c.pull_flags);
  if (sub.kernel_install->parsed()) {
    if (!c.kernel_prefix.empty()) c.kernel_request.prefix = c.kernel_prefix;
    return run_kernel_install(std::move(c.kernel_request), c.kernel_user);
  }
  if (sub.shell->parsed()) return run_shell(c.image, c.no_check);
  std::cout << app.help();
  return 0;
}
