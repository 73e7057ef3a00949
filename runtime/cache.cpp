#include "runtime/cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/hash.hpp"
#include "common/limits.hpp"
#include "common/root_dir.hpp"
#include "conda/image_contract.hpp"
#include "conda/relocate_prefix.hpp"
#include "oci/archive.hpp"
#include "oci/layer_reader.hpp"
#include "runtime/host_check.hpp"
#include "runtime/internal/cache_files.hpp"
#include "runtime/internal/unpack_steps.hpp"
#include "runtime/layer_cache.hpp"
#include "runtime/mount.hpp"
#include "runtime/prefix_dir.hpp"
#include "runtime/squashfs_image.hpp"
#include "runtime/store.hpp"
#include "squashfs/reader.hpp"

namespace envbuild::runtime {
namespace {

namespace fs = std::filesystem;
using internal::exists_nofollow;
using internal::flock_fd;
using internal::kIdLength;
using internal::open_lock_file;
using nlohmann::json;

bool is_path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '/';
}

/// Sorted names in `dir` ending with `suffix`; an absent directory has none.
std::vector<std::string> names_with_suffix(const fs::path& dir, std::string_view suffix) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix &&
        name.front() != '.')
      names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<void> check_platform(const oci::ImageConfig& config) {
  oci::Platform host = oci::host_platform();
  if ((!config.os.empty() && config.os != host.os) ||
      (!config.architecture.empty() && config.architecture != host.architecture))
    return Error(Errc::HostMismatch, "the image is for " + config.os + "/" + config.architecture +
                                         ", this host is " + host.os + "/" + host.architecture)
        .with_hint("build the environment for this platform (envbuild build --platform)");
  return {};
}

/// Removes what a killed unpack of `dir` left: staging siblings ".<name>.*.tmp".
void remove_staging(const fs::path& dir) {
  std::string start = "." + dir.filename().string() + ".";
  DIR* d = ::opendir(dir.parent_path().c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.starts_with(start) && name.ends_with(".tmp")) stale.emplace_back(name);
  }
  ::closedir(d);
  for (const auto& name : stale) (void)common::remove_all(dir.parent_path() / name);
}

}  // namespace

std::string rewrite_prefix(std::string_view text, std::string_view from, std::string_view to) {
  if (from.empty() || from == to) return std::string(text);
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    size_t end = hit + from.size();
    bool starts = hit == 0 || !is_path_char(text[hit - 1]);
    bool ends = end == text.size() || text[end] == '/' || !is_path_char(text[end]);
    out.append(text.substr(pos, hit - pos));
    out.append(starts && ends ? to : from);
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

std::string image_prefix_of(const oci::ImageConfig& config) {
  return conda::image_prefix_of(config.config.labels, config.config.env);
}

Result<std::unique_ptr<oci::Image>> open_reference(const oci::ImageReference& ref,
                                                   const fs::path& cache_root) {
  if (ref.transport == oci::Transport::Registry)
    return open_from_store(ref, cache_root, default_registry_options(ref));
  ENVB_TRY(common::make_dirs(cache_root / "tmp"));
  oci::OpenOptions options;
  options.scratch_dir = cache_root / "tmp";
  return oci::open_image(ref, options);
}

void test_stall_point(std::string_view phase) {
  const char* stall = std::getenv("ENVRUN_TEST_STALL");
  if (stall == nullptr || phase != stall) return;
  std::fprintf(stderr, "envrun: test stall at %s\n", stall);
  std::fflush(stderr);
  std::this_thread::sleep_for(std::chrono::seconds(600));
}

namespace {

// Staging dirs ".<name>.<pid>.tmp" next to `dir` whose process is gone (killed midway): nothing
// else would ever remove them. A live pid (another unpack into the same dir) is left alone.
void remove_abandoned_staging(const fs::path& dir) {
  const std::string prefix = "." + dir.filename().string() + ".";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir.parent_path(), ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".tmp")) continue;
    std::string pid = name.substr(prefix.size(), name.size() - prefix.size() - 4);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH)
      (void)common::remove_all(e.path());
  }
}

}  // namespace

namespace internal {

Result<Staging> Staging::begin(const fs::path& dir_in) {
  Staging s;
  s.dir_ = fs::absolute(dir_in).lexically_normal();
  if (s.dir_.filename().empty()) s.dir_ = s.dir_.parent_path();
  std::error_code ec;
  if (exists_nofollow(s.dir_) && !fs::is_empty(s.dir_, ec))
    return fail(Errc::InvalidInput, s.dir_.string() + " exists and is not empty");
  ENVB_TRY(common::make_dirs(s.dir_.parent_path()));
  ENVB_ASSIGN_OR_RETURN(common::RootDir parent, common::RootDir::open(s.dir_.parent_path()));
  s.parent_ = std::make_unique<common::RootDir>(std::move(parent));
  s.name_ = "." + s.dir_.filename().string() + "." + std::to_string(::getpid()) + ".tmp";
  ENVB_TRY(s.parent_->remove_all(s.name_));
  remove_abandoned_staging(s.dir_);
  ENVB_TRY(s.parent_->make_dir(s.name_, 0700));
  s.path_ = s.dir_.parent_path() / s.name_;
  ENVB_ASSIGN_OR_RETURN(common::RootDir stage, s.parent_->subdir(s.name_));
  s.stage_ = std::make_unique<common::RootDir>(std::move(stage));
  return s;
}

Staging::~Staging() {
  if (parent_ && !name_.empty()) (void)parent_->remove_all(name_);
}

Result<void> Staging::commit(std::string_view relative) {
  // Renamed by descriptors resolved without following symlinks: what moves is the directory
  // inside our staging tree, whatever the tree's names point at.
  if (relative.empty()) {
    ENVB_TRY(common::rename_beneath(*parent_, name_, *parent_, dir_.filename().string()));
  } else {
    ENVB_TRY(common::rename_beneath(*stage_, relative, *parent_, dir_.filename().string()));
  }
  return common::sync_dir(dir_.parent_path());
}

Result<void> relocate_staged(const common::RootDir& staged, const fs::path& dir,
                             const std::string& reference) {
  // The records may name another prefix than the label: relocate from what the files hold.
  // Files shared with the layer cache get their own inode before they change.
  auto relocated = conda::relocate_prefix(staged, "", dir.string(), conda::MissingIndex::Skip);
  if (relocated) return ok();
  Error error = std::move(relocated).error().with_context("unpacking " + reference);
  // InvalidInput here is a binary file without room for this path (nothing was changed).
  if (error.code() != Errc::InvalidInput) return error;
  return std::move(error).with_hint(
      "binary files keep their length, so the path must be short: choose a shorter location"
      " (for the cache: ENVRUN_CACHE=/short/path; entries are <root>/p/<12 hex>)");
}

Result<EnvInfo> describe_prefix(const common::RootDir& tree, const ImageDescription& d,
                                const std::string& prefix) {
  EnvInfo info;
  info.manifest_digest = d.digest;
  info.reference = d.reference;
  info.image_prefix = d.image_prefix;
  info.prefix = prefix;
  info.platform = d.platform;
  for (const auto& kv : d.env) info.env.push_back(rewrite_prefix(kv, d.image_prefix, prefix));
  auto rewrite_all = [&](const std::optional<std::vector<std::string>>& args) {
    std::optional<std::vector<std::string>> out;
    if (args) {
      out.emplace();
      for (const auto& a : *args) out->push_back(rewrite_prefix(a, d.image_prefix, prefix));
    }
    return out;
  };
  info.entrypoint = rewrite_all(d.entrypoint);
  info.cmd = rewrite_all(d.cmd);
  ENVB_ASSIGN_OR_RETURN(PrefixFacts facts, read_prefix_facts(tree, prefix));
  info.env_vars = std::move(facts.env_vars);
  info.activate_scripts = std::move(facts.activate_scripts);
  std::set<std::string> seen;
  const std::vector<std::string>* lists[] = {&d.label_requirements, &facts.requirements};
  for (const auto* list : lists)
    for (const auto& r : *list)
      if (seen.insert(r).second) info.requirements.push_back(r);
  info.unpacked_at = static_cast<int64_t>(std::time(nullptr));
  return info;
}

bool is_safe_prefix(std::string_view prefix) {
  return prefix.size() >= 2 && prefix.front() == '/' &&
         common::is_safe_relative_path(prefix.substr(1));
}

}  // namespace internal

Result<EnvInfo> unpack_image(const oci::Image& image, const fs::path& dir_in,
                             const std::string& reference, const UnpackOptions& options) {
  const oci::ImageConfig& config = image.config();
  ENVB_TRY(check_platform(config));
  internal::ImageDescription description;
  if (auto it = config.config.labels.find(std::string(conda::kRequirementsLabel));
      it != config.config.labels.end())
    description.label_requirements = conda::split_requirements_label(it->second);
  if (options.precheck) ENVB_TRY(options.precheck(description.label_requirements));

  ENVB_ASSIGN_OR_RETURN(internal::Staging staging, internal::Staging::begin(dir_in));
  const fs::path& dir = staging.dir();
  const std::string image_prefix = image_prefix_of(config);
  if (!internal::is_safe_prefix(image_prefix))
    return fail(Errc::InvalidInput,
                "image prefix '" + image_prefix + "' is not a safe absolute path");
  const std::string prefix_relative = image_prefix.substr(1);

  const auto& layers = image.manifest().layers;
  ENVB_ASSIGN_OR_RETURN(common::UnpackLimits limits,
                        common::UnpackLimits::from_environment("ENVRUN"));
  ENVB_TRY(common::check_layer_count(limits, "image " + reference, layers.size()));
  if (options.layers != nullptr) {
    ENVB_ASSIGN_OR_RETURN(ComposeStats composed, options.layers->compose(image, staging.path()));
    std::fprintf(stderr,
                 "envrun: %zu of %zu layers extracted, %zu shared; %zu files linked, %zu copied\n",
                 composed.layers_extracted, layers.size(), composed.layers_reused,
                 composed.files_linked, composed.files_copied);
  } else {
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string what = "extracting layer " + std::to_string(i + 1) + "/" +
                         std::to_string(layers.size()) + " " + layers[i].digest.short_string();
      ENVB_ASSIGN_OR_RETURN(auto source, image.open_blob(layers[i]).context(what));
      oci::ExtractOptions extract;
      extract.limits = limits;
      extract.compressed_size = static_cast<uint64_t>(layers[i].size);
      ENVB_TRY(oci::extract_layer(*source, staging.path(), extract).context(what));
    }
  }
  test_stall_point("extracted");

  // The prefix must be a real directory of the image's tree: a layer that makes `opt` (or any
  // component) a symlink to a host directory gets an error here, never that directory renamed.
  auto staged = staging.stage().subdir(prefix_relative);
  if (!staged) {
    if (staged.error().code() == Errc::NotFound)
      return fail(Errc::InvalidInput, "the image has no conda prefix at " + image_prefix +
                                          " (label org.envbuild.prefix)");
    return std::move(staged).error().with_context("unpacking " + reference);
  }
  const std::string relocate_to = options.relocate_to.empty() ? dir.string() : options.relocate_to;
  ENVB_TRY(internal::relocate_staged(*staged, relocate_to, reference));

  description.digest = image.descriptor().digest.to_string();
  description.reference = reference;
  description.image_prefix = image_prefix;
  description.platform = config.platform().to_string();
  description.env = config.config.env;
  description.entrypoint = config.config.entrypoint;
  description.cmd = config.config.cmd;
  ENVB_ASSIGN_OR_RETURN(EnvInfo info, internal::describe_prefix(*staged, description, relocate_to));
  ENVB_TRY(write_prefix_files(*staged, info).context("unpacking " + reference));
  ENVB_TRY(staging.commit(prefix_relative));
  test_stall_point("renamed");
  return info;
}

// ---- Cache ----

fs::path Cache::prefix_for(const oci::Digest& manifest) const {
  return root_ / "p" / manifest.hex().substr(0, kIdLength);
}

Result<Materialized> Cache::materialize(const oci::ImageReference& ref,
                                        const UnpackOptions& options) const {
  ENVB_ASSIGN_OR_RETURN(std::optional<Materialized> warm, lookup(ref));
  if (warm) return std::move(*warm);

  // One process per reference resolves it; the others wait here and then take the warm path.
  auto key = internal::source_key(ref, root_);
  std::optional<common::FileLock> key_lock;
  if (key) {
    ENVB_TRY(common::make_dirs(root_ / "r"));
    ENVB_ASSIGN_OR_RETURN(key_lock, common::FileLock::acquire(root_ / "r" / (*key + ".lock"),
                                                              common::LockMode::Exclusive));
    ENVB_ASSIGN_OR_RETURN(warm, lookup(ref));
    if (warm) return std::move(*warm);
  }

  ENVB_ASSIGN_OR_RETURN(std::unique_ptr<oci::Image> image, open_reference(ref, root_));
  // A docker:// reference has a source key only once it is in the store.
  if (!key && (key = internal::source_key(ref, root_))) ENVB_TRY(common::make_dirs(root_ / "r"));
  const oci::Digest& digest = image->descriptor().digest;
  const bool one_file = options.store == Store::Squashfs;
  const std::string what = ref.to_string() + " (" +
                           std::to_string(image->manifest().layers.size()) + " layers)" +
                           (one_file ? " as one SquashFS file" : "");
  return fill_entry(digest.hex().substr(0, kIdLength), key ? *key : "", what,
                    [&](const fs::path& prefix) -> Result<EnvInfo> {
                      if (one_file)
                        return unpack_as_squashfs(*image, prefix, ref.to_string(), options);
                      LayerCache layers(root_ / "l");
                      UnpackOptions shared = options;
                      if (LayerCache::enabled()) shared.layers = &layers;
                      return unpack_image(*image, prefix, ref.to_string(), shared);
                    });
}

Result<Materialized> Cache::fill_entry(
    const std::string& id, const std::string& key, const std::string& what,
    const std::function<Result<EnvInfo>(const fs::path&)>& unpack) const {
  const fs::path prefix = root_ / "p" / id;
  const fs::path marker = prefix.string() + ".json";
  const fs::path lock_path = prefix.string() + ".lock";
  ENVB_TRY(common::make_dirs(root_ / "p"));

  bool unpacked_now = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    {
      ENVB_ASSIGN_OR_RETURN(common::Fd lock, open_lock_file(lock_path));
      ENVB_TRY(flock_fd(lock, LOCK_EX, lock_path));
      if (!exists_nofollow(marker) || !exists_nofollow(prefix)) {
        // Whatever is here without a marker is from a killed unpack (or a removed prefix).
        (void)::unlink(marker.c_str());
        (void)::unlink((prefix.string() + ".sqfs").c_str());
        ENVB_TRY(common::remove_all(prefix));
        remove_staging(prefix);
        std::fprintf(stderr, "envrun: unpacking %s into %s\n", what.c_str(), prefix.c_str());
        auto started = std::chrono::steady_clock::now();
        ENVB_ASSIGN_OR_RETURN(EnvInfo info, unpack(prefix));
        ENVB_TRY(common::write_file_atomic(marker, to_json_text(info)));
        ENVB_TRY(common::sync_dir(root_ / "p"));
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
        std::fprintf(stderr, "envrun: unpacked %s in %.2fs\n", id.c_str(), took.count());
        unpacked_now = true;
      }
      if (!key.empty()) ENVB_TRY(common::write_file_atomic(root_ / "r" / key, id + "\n"));
    }  // the exclusive lock ends here; open_entry takes it shared (gc may run in between)
    ENVB_ASSIGN_OR_RETURN(std::optional<Materialized> done, open_entry(id));
    if (done) {
      done->unpacked_now = unpacked_now;
      return std::move(*done);
    }
  }
  return fail(Errc::Io, "the cache entry " + prefix.string() +
                            " keeps disappearing (is envrun gc running in a loop?)");
}

Result<std::optional<Materialized>> Cache::lookup_squashfs(const SquashfsImage& image) const {
  ENVB_TRY(check_root());
  return lookup_key(image.key);
}

Result<Materialized> Cache::materialize_squashfs(const SquashfsImage& image,
                                                 const UnpackOptions& options) const {
  ENVB_TRY(check_root());
  ENVB_ASSIGN_OR_RETURN(std::optional<Materialized> warm, lookup_key(image.key));
  if (warm) return std::move(*warm);
  ENVB_TRY(common::make_dirs(root_ / "r"));
  ENVB_ASSIGN_OR_RETURN(
      auto key_lock,
      common::FileLock::acquire(root_ / "r" / (image.key + ".lock"), common::LockMode::Exclusive));
  ENVB_ASSIGN_OR_RETURN(warm, lookup_key(image.key));
  if (warm) return std::move(*warm);
  return fill_entry(
      image.key.substr(0, kIdLength), image.key, image.file.string(),
      [&](const fs::path& prefix) { return unpack_squashfs(image, prefix, options); });
}

Result<Materialized> Cache::ready_to_run(Materialized entry) const {
  auto choice = mount_choice_from_environment();
  if (!choice) return std::move(choice).error();
  const fs::path prefix = entry.info.prefix;
  auto lease = acquire_shared_mount(entry.info.squashfs, prefix, *choice);
  if (lease) {
    if (lease->mounted_now)
      std::fprintf(stderr, "envrun: mounted %s at %s (%s)\n", entry.info.squashfs.c_str(),
                   prefix.c_str(), std::string(to_string(lease->method)).c_str());
    entry.mount_in_use = std::move(lease->in_use);
    // The command keeps the mount in use until it (and what it starts) exits.
    ::fcntl(entry.mount_in_use.get(), F_SETFD, 0);
    return entry;
  }
  std::fprintf(stderr, "envrun: %s; extracting %s into %s instead\n",
               lease.error().to_string().c_str(), entry.info.squashfs.c_str(), prefix.c_str());
  // The files already name the prefix: extracted there they need no relocation. Under the
  // entry's exclusive lock, so our shared one goes first.
  const std::string id = prefix.filename().string();
  const fs::path lock_path = prefix.string() + ".lock";
  entry.in_use.reset();
  {
    ENVB_ASSIGN_OR_RETURN(common::Fd lock, open_lock_file(lock_path));
    ENVB_TRY(flock_fd(lock, LOCK_EX, lock_path));
    // Another envrun may have extracted it while we waited: the marker says.
    const fs::path marker = prefix.string() + ".json";
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(marker, 16u << 20));
    ENVB_ASSIGN_OR_RETURN(EnvInfo info, env_info_from_json(text, marker.string()));
    if (!info.squashfs.empty()) {
      ENVB_ASSIGN_OR_RETURN(internal::Staging staging, internal::Staging::begin(prefix));
      ENVB_ASSIGN_OR_RETURN(squashfs::Reader reader, squashfs::Reader::open(info.squashfs));
      ENVB_TRY(reader.extract(staging.stage()).context("extracting " + info.squashfs));
      if (::chmod(staging.path().c_str(), 0755) != 0)
        return common::errno_error("chmod", staging.path().string(), errno);
      ENVB_TRY(staging.commit(""));
      const std::string file = std::exchange(info.squashfs, "");
      ENVB_TRY(common::write_file_atomic(marker, to_json_text(info)));
      (void)::unlink(file.c_str());
    }
  }
  ENVB_ASSIGN_OR_RETURN(std::optional<Materialized> done, open_entry(id));
  if (!done) return fail(Errc::Io, "the cache entry " + prefix.string() + " disappeared");
  return std::move(*done);
}

Result<std::vector<CacheEntry>> Cache::list() const {
  ENVB_TRY(check_root());
  std::vector<CacheEntry> out;
  fs::path dir = root_ / "p";
  for (const auto& name : names_with_suffix(dir, ".json")) {
    std::string id = name.substr(0, name.size() - 5);
    struct stat st {};
    if (::stat((dir / name).c_str(), &st) != 0) continue;
    auto text = common::read_file(dir / name);
    if (!text) continue;
    auto info = env_info_from_json(*text, (dir / name).string());
    if (!info) continue;
    CacheEntry entry;
    entry.id = id;
    entry.prefix = info->prefix;
    entry.reference = info->reference;
    entry.manifest_digest = info->manifest_digest;
    entry.last_used = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
    ENVB_ASSIGN_OR_RETURN(auto probe, common::FileLock::try_acquire(dir / (id + ".lock"),
                                                                    common::LockMode::Exclusive));
    entry.in_use = !probe.has_value();
    out.push_back(std::move(entry));
  }
  return out;
}

Result<GcReport> Cache::gc(std::chrono::seconds older_than) const {
  ENVB_TRY(check_root());
  GcReport report;
  fs::path dir = root_ / "p";
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  // Entries and staging directories, each under its exclusive lock.
  std::set<std::string> ids;
  DIR* d = ::opendir(dir.c_str());
  if (d != nullptr) {
    while (const dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name.starts_with('.')) name.remove_prefix(1);
      if (name.size() >= kIdLength && common::is_lower_hex(name.substr(0, kIdLength), kIdLength))
        ids.emplace(name.substr(0, kIdLength));
    }
    ::closedir(d);
  }
  for (const auto& id : ids) {
    fs::path prefix = dir / id;
    fs::path marker = prefix.string() + ".json";
    ENVB_ASSIGN_OR_RETURN(auto lock, common::FileLock::try_acquire(prefix.string() + ".lock",
                                                                   common::LockMode::Exclusive));
    struct stat st {};
    bool complete = ::stat(marker.c_str(), &st) == 0;
    bool old = complete && now - st.st_mtim.tv_sec >= older_than.count();
    if (!lock) {
      if (old) report.in_use.push_back(id);
      continue;
    }
    // Nobody is unpacking or running it: staging leftovers can go in any case.
    std::string start = "." + id + ".";
    DIR* dd = ::opendir(dir.c_str());
    std::vector<std::string> stale;
    if (dd != nullptr) {
      while (const dirent* e = ::readdir(dd))
        if (std::string_view(e->d_name).starts_with(start)) stale.emplace_back(e->d_name);
      ::closedir(dd);
    }
    for (const auto& name : stale) {
      ENVB_TRY(common::remove_all(dir / name));
      ++report.stale_staging;
    }
    if (!complete || old) {
      // The marker goes first: from then on no reader uses the prefix.
      if (complete && ::unlink(marker.c_str()) != 0)
        return common::errno_error("unlink", marker.string(), errno);
      if (complete || exists_nofollow(prefix)) {
        // An entry kept as a SquashFS file may still be mounted (its watcher was killed): we hold
        // its use lock, so nobody is inside.
        if (is_mount_point(prefix)) ENVB_TRY(unmount_held(prefix));
        ENVB_TRY(common::remove_all(prefix));
        (void)::unlink((prefix.string() + ".sqfs").c_str());
        report.removed.push_back(id);
      }
    }
  }
  // Shared mounts of SquashFS files (m/) whose watcher was killed, when nobody uses them.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / "m", ec))
    if (e.is_directory(ec) && is_mount_point(e.path())) {
      ENVB_ASSIGN_OR_RETURN(bool unmounted, unmount_if_idle(e.path()));
      report.unmounted += unmounted ? 1 : 0;
    }
  // References to entries that are gone.
  fs::path refs = root_ / "r";
  for (const auto& name : names_with_suffix(refs, "")) {
    if (name.ends_with(".lock")) continue;
    auto text = common::read_file(refs / name, 256);
    if (text && text->size() >= kIdLength &&
        exists_nofollow(dir / (text->substr(0, kIdLength) + ".json")))
      continue;
    (void)::unlink((refs / name).c_str());
    ++report.stale_refs;
  }
  // Layers: prefixes keep their files (hardlinks) when the layer they came from goes.
  ENVB_ASSIGN_OR_RETURN(LayerGcReport layers, LayerCache(root_ / "l").gc(older_than));
  report.layers_removed = std::move(layers.removed);
  report.layers_in_use = layers.in_use;
  report.stale_staging += layers.stale_staging;
  // Archives unpacked by processes that were killed while reading them.
  for (const auto& name : names_with_suffix(root_ / "tmp", "")) {
    struct stat st {};
    fs::path p = root_ / "tmp" / name;
    if (::lstat(p.c_str(), &st) == 0 && now - st.st_mtim.tv_sec > 86400)
      (void)common::remove_all(p);
  }
  return report;
}

}  // namespace envbuild::runtime
