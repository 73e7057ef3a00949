#include "runtime/squashfs_image.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "common/format.hpp"
#include "common/limits.hpp"
#include "common/root_dir.hpp"
#include "conda/platform.hpp"
#include "runtime/internal/cache_files.hpp"
#include "runtime/internal/launch_env.hpp"
#include "runtime/internal/unpack_steps.hpp"
#include "runtime/mount.hpp"
#include "runtime/prefix_dir.hpp"
#include "squashfs/reader.hpp"
#include "squashfs/writer.hpp"

namespace envbuild::runtime {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTransport = "squashfs:";

/// Mounting over these would change what every later step of the launch (and the kernel's view of
/// the process) relies on, whatever the command is.
bool below_system_directory(std::string_view prefix) {
  for (std::string_view dir : {"/proc", "/sys", "/dev"})
    if (prefix == dir || (prefix.starts_with(dir) && prefix[dir.size()] == '/')) return true;
  return false;
}

std::string label(const conda::ImageInfo& info, std::string_view name) {
  auto it = info.labels.find(std::string(name));
  return it == info.labels.end() ? "" : it->second;
}

internal::ImageDescription description_of(const SquashfsImage& image) {
  internal::ImageDescription d;
  d.reference = image.file.string();
  d.image_prefix = image.prefix;
  d.platform = label(image.info, conda::kPlatformLabel);
  d.env = image.info.env;
  d.entrypoint = image.info.entrypoint;
  d.cmd = image.info.cmd;
  d.label_requirements = image.requirements;
  return d;
}

enum class Content : bool { Ignore, Check };

/// The whole tree of the image walked by our reader (names, cycles, depth: what
/// squashfs/reader.hpp refuses) and held to envrun's unpack limits as layers are
/// (ENVRUN_MAX_ENTRIES, path length and depth; with Content::Check, ENVRUN_MAX_UNPACKED_BYTES and
/// ENVRUN_MAX_EXPANSION against the file's size), from the sizes the image declares: before a
/// byte is extracted (a sparse file of zeros costs the image nothing) or the kernel parses it.
Result<void> check_tree(const squashfs::Reader& reader, const SquashfsImage& image,
                        Content content) {
  ENVB_ASSIGN_OR_RETURN(common::UnpackLimits limits,
                        common::UnpackLimits::from_environment("ENVRUN"));
  uint64_t entries = 0, bytes = 0;
  return reader.walk([&](const squashfs::EntryInfo& e) -> Result<void> {
    ENVB_TRY(common::check_entry_path(limits, e.path));
    const bool counted = content == Content::Check && e.kind == squashfs::EntryInfo::Kind::File;
    const uint64_t size = counted ? e.size : 0;
    ENVB_TRY(common::check_unpack_limits(
        limits, image.file.string() + ": '" + common::printable(e.path) + "'", ++entries, bytes,
        size, image.size));
    bytes += size;
    return ok();
  });
}

/// check_tree() once per file before the kernel's or squashfuse's parser mounts it; a marker
/// beside the mount directory, named by the same key, remembers that this file passed.
Result<void> check_before_mounting(const SquashfsImage& image, const fs::path& dir) {
  const fs::path marker = dir.string() + ".checked";
  struct stat st {};
  if (::lstat(marker.c_str(), &st) == 0) return ok();
  ENVB_ASSIGN_OR_RETURN(squashfs::Reader reader, squashfs::Reader::open(image.file));
  ENVB_TRY(check_tree(reader, image, Content::Ignore)
               .context("checking " + image.file.string() + " before mounting it"));
  return common::write_file_atomic(marker, "");
}

/// The environment in place: the shared mount of the image, described from its own files, the
/// host checked against everything it needs, then this process's private view of it at the
/// prefix. An error means "cannot run in place", except Integrity and HostMismatch.
Result<Materialized> mount_in_place(const SquashfsImage& image, const Cache& cache,
                                    const MountChoice& choice, const RunOptions& options) {
  if (!choice.kernel && !choice.fuse)
    return fail(Errc::Unsupported, "mounting is turned off (ENVRUN_SQUASHFS_MOUNT=none)");
  struct stat st {};
  if (::stat(image.prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(Errc::NotFound, "its prefix " + image.prefix + " does not exist on this host")
        .with_hint("create it once (mkdir -p " + image.prefix +
                   "; an empty directory) and envrun mounts the image there");
  ENVB_TRY(common::make_dirs(cache.root() / "m"));
  const fs::path dir = cache.root() / "m" / image.key;
  ENVB_TRY(check_before_mounting(image, dir));
  ENVB_ASSIGN_OR_RETURN(MountLease lease, acquire_shared_mount(image.file, dir, choice));
  if (lease.mounted_now)
    std::fprintf(stderr, "envrun: mounted %s at %s (%s)\n", image.file.c_str(), dir.c_str(),
                 std::string(to_string(lease.method)).c_str());
  ENVB_ASSIGN_OR_RETURN(common::RootDir tree, common::RootDir::open(dir));
  ENVB_ASSIGN_OR_RETURN(EnvInfo info,
                        internal::describe_prefix(tree, description_of(image), image.prefix));
  // Now, not after the view: there the image's prefix may cover what the check reads (the
  // per-boot probe in the cache, the directory libcuda.so.1 is loaded from).
  ENVB_TRY(internal::enforce_host_check(info.requirements, options, cache.root()));
  ENVB_TRY(enter_private_view(dir, image.prefix, user_namespace_from_environment()));
  Materialized env{std::move(info), lease.mounted_now, {}, std::move(lease.in_use)};
  // The command keeps the mount in use until it (and what it starts) exits.
  ::fcntl(env.mount_in_use.get(), F_SETFD, 0);
  return env;
}

}  // namespace

std::optional<fs::path> squashfs_argument(std::string_view image) {
  if (image.starts_with(kTransport)) return fs::path(std::string(image.substr(kTransport.size())));
  for (std::string_view transport : {"oci:", "oci-archive:", "docker-archive:", "docker:"})
    if (image.starts_with(transport)) return std::nullopt;
  fs::path path{std::string(image)};
  if (!image.empty() && squashfs::has_squashfs_magic(path)) return path;
  return std::nullopt;
}

Result<SquashfsImage> open_squashfs_image(const fs::path& file) {
  SquashfsImage image;
  image.file = fs::absolute(file).lexically_normal();
  const std::string shown = image.file.string();
  ENVB_ASSIGN_OR_RETURN(squashfs::Reader reader, squashfs::Reader::open(image.file));
  ENVB_ASSIGN_OR_RETURN(auto text,
                        reader.read_file(conda::kImageInfoPath, conda::kMaxImageInfoBytes));
  if (!text)
    return fail(Errc::InvalidInput, shown + " has no " + std::string(conda::kImageInfoPath) +
                                        ": not an environment image")
        .with_hint("make one with envbuild build --output squashfs:FILE");
  ENVB_ASSIGN_OR_RETURN(
      image.info, conda::parse_image_info(*text, shown + ":" + std::string(conda::kImageInfoPath)));
  image.prefix = conda::image_prefix_of(image.info.labels, image.info.env);
  if (!internal::is_safe_prefix(image.prefix) || below_system_directory(image.prefix))
    return fail(Errc::InvalidInput,
                shown + ": prefix '" + common::printable(image.prefix) +
                    "' is not a safe absolute path (nor may it be /proc, /sys, /dev or below)");
  image.requirements =
      conda::split_requirements_label(label(image.info, conda::kRequirementsLabel));
  if (std::string platform = label(image.info, conda::kPlatformLabel);
      !platform.empty() && platform != conda::host_subdir())
    return Error(Errc::HostMismatch, shown + " is for " + common::printable(platform) +
                                         ", this host is " + conda::host_subdir())
        .with_hint("build the environment for this platform (envbuild build --platform)");
  struct stat st {};
  if (::stat(image.file.c_str(), &st) != 0) return common::errno_error("stat", shown, errno);
  image.size = static_cast<uint64_t>(st.st_size);
  image.key = internal::short_hash("squashfs\n" + std::to_string(st.st_dev) + ':' +
                                   std::to_string(st.st_ino) + '\n' + std::to_string(st.st_size) +
                                   '\n' + std::to_string(st.st_mtim.tv_sec) + '.' +
                                   std::to_string(st.st_mtim.tv_nsec));
  return image;
}

Result<EnvInfo> unpack_squashfs(const SquashfsImage& image, const fs::path& dir,
                                const UnpackOptions& options) {
  if (options.precheck) ENVB_TRY(options.precheck(image.requirements));
  ENVB_ASSIGN_OR_RETURN(internal::Staging staging, internal::Staging::begin(dir));
  const std::string what = "extracting " + image.file.string();
  ENVB_ASSIGN_OR_RETURN(squashfs::Reader reader,
                        squashfs::Reader::open(image.file).context(std::string(what)));
  ENVB_TRY(check_tree(reader, image, Content::Check).context(std::string(what)));
  ENVB_ASSIGN_OR_RETURN(squashfs::ExtractStats stats,
                        reader.extract(staging.stage()).context(std::string(what)));
  (void)stats;
  // The image's root is the prefix: the staging directory becomes it.
  if (::chmod(staging.path().c_str(), 0755) != 0)
    return common::errno_error("chmod", staging.path().string(), errno);
  test_stall_point("extracted");
  const fs::path& target = staging.dir();
  const std::string relocate_to =
      options.relocate_to.empty() ? target.string() : options.relocate_to;
  ENVB_TRY(internal::relocate_staged(staging.stage(), relocate_to, image.file.string()));
  ENVB_ASSIGN_OR_RETURN(
      EnvInfo info, internal::describe_prefix(staging.stage(), description_of(image), relocate_to));
  // An unpacked SquashFS image is a prefix like an unpacked OCI image: `envrun DIR` and
  // `. DIR/bin/activate` work on it too.
  ENVB_TRY(write_prefix_files(staging.stage(), info).context(std::string(what)));
  ENVB_TRY(staging.commit(""));
  test_stall_point("renamed");
  return info;
}

Result<EnvInfo> unpack_as_squashfs(const oci::Image& image, const fs::path& prefix,
                                   const std::string& reference, const UnpackOptions& options) {
  UnpackOptions tree = options;
  tree.layers = nullptr;  // shared layers would keep their files in the cache: the point is one
  ENVB_ASSIGN_OR_RETURN(EnvInfo info, unpack_image(image, prefix, reference, tree));
  const fs::path file = prefix.string() + ".sqfs";
  ENVB_ASSIGN_OR_RETURN(auto entries, squashfs::entries_from_tree(prefix));
  squashfs::WriteOptions write;
  // A cache is written once per node and read many times: fast compression, all cores.
  write.level = 3;
  write.jobs = std::max(1u, std::thread::hardware_concurrency());
  ENVB_ASSIGN_OR_RETURN(squashfs::WriteInfo written,
                        squashfs::write_image(std::move(entries), write, file)
                            .context("keeping " + reference + " as " + file.string()));
  (void)written;
  // The tree goes; its directory stays, empty, for the mount.
  ENVB_ASSIGN_OR_RETURN(common::RootDir parent, common::RootDir::open(prefix.parent_path()));
  ENVB_TRY(parent.remove_all(prefix.filename().string()));
  ENVB_TRY(parent.make_dir(prefix.filename().string(), 0755));
  info.squashfs = file.string();
  return info;
}

RunFailure run_squashfs_image(const fs::path& file, std::vector<std::string> command,
                              const RunOptions& options) {
  Cache cache(options.cache_root);
  if (auto checked = cache.check_root(); !checked)
    return internal::failure_of(std::move(checked).error());
  auto image = open_squashfs_image(file);
  if (!image) return internal::failure_of(std::move(image).error());
  // Before anything is mounted or unpacked: the label's requirements.
  if (auto checked = internal::enforce_host_check(image->requirements, options, cache.root());
      !checked)
    return internal::failure_of(std::move(checked).error());
  auto choice = mount_choice_from_environment();
  if (!choice) return internal::failure_of(std::move(choice).error());

  auto in_place = mount_in_place(*image, cache, *choice, options);
  if (in_place) {
    RunOptions checked = options;
    checked.check = HostCheck::Skip;  // done, before the view (see mount_in_place)
    return internal::launch_materialized(std::move(*in_place), std::move(command), checked,
                                         cache.root());
  }
  // A damaged or hostile image, or a host that cannot run it: an unpacked copy changes neither.
  if (Errc code = in_place.error().code(); code == Errc::Integrity || code == Errc::HostMismatch)
    return internal::failure_of(std::move(in_place).error());
  // Unpacked before: said then why, and every rank of a job would say it again.
  auto warm = cache.lookup_squashfs(*image);
  if (warm && *warm)
    return internal::launch_materialized(std::move(**warm), std::move(command), options,
                                         cache.root());
  const Error& why = in_place.error();
  std::fprintf(stderr, "envrun: cannot run %s in place: %s; unpacking it into the cache instead\n",
               image->file.c_str(), why.to_string().c_str());
  if (!why.hint().empty()) std::fprintf(stderr, "hint: %s\n", why.hint().c_str());
  auto env = cache.materialize_squashfs(*image);
  if (!env) return internal::failure_of(std::move(env).error());
  return internal::launch_materialized(std::move(*env), std::move(command), options, cache.root());
}

}  // namespace envbuild::runtime
