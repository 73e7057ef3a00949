// The warm half of the cache: find a complete entry for a reference with a stat and two small
// reads. This file (and what it calls) is all the lean `envrun` launcher links of the cache, so it
// must not reach the image readers, the registry client or the unpacker (see launcher/main.cpp).

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

#include "common/json.hpp"
#include "oci/descriptor.hpp"
#include "runtime/cache.hpp"
#include "runtime/internal/cache_files.hpp"

namespace envbuild::runtime {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
/// A warm start refreshes the marker's mtime (the "last used" time gc reads) at most this often.
constexpr int64_t kTouchInterval = 3600;
}  // namespace

namespace internal {

bool exists_nofollow(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<common::Fd> open_lock_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) return common::errno_error("open", path.string(), errno);
  return common::Fd(fd);
}

Result<void> flock_fd(const common::Fd& fd, int op, const fs::path& path) {
  while (::flock(fd.get(), op) != 0)
    if (errno != EINTR) return common::errno_error("flock", path.string(), errno);
  return {};
}

std::string short_hash(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::string(hex);
}

fs::path store_layout_for(const fs::path& root, const oci::ImageReference& ref) {
  oci::ImageReference named = ref;
  if (named.tag.empty() && !named.digest.valid()) named.tag = "latest";  // as the registry reads it
  return root / "i" / short_hash(named.to_string());
}

std::vector<fs::path> shared_cache_roots() {
  std::vector<fs::path> roots;
  const char* list = std::getenv("ENVRUN_SHARED_CACHE");
  if (list == nullptr) return roots;
  std::string_view rest = list;
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    std::string_view one = rest.substr(0, colon);
    if (!one.empty()) roots.emplace_back(std::string(one));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return roots;
}

Result<std::string> source_key(const oci::ImageReference& ref, const fs::path& root) {
  fs::path file;
  switch (ref.transport) {
    case oci::Transport::OciLayout:
      file = fs::path(ref.path) / "index.json";
      break;
    case oci::Transport::OciArchive:
    case oci::Transport::DockerArchive:
      file = ref.path;
      break;
    case oci::Transport::Registry:
      file = store_layout_for(root, ref) / "index.json";
      // Not pulled into this cache: the image may come from a shared one (store.cpp).
      if (!exists_nofollow(file))
        for (const fs::path& shared : shared_cache_roots())
          if (fs::path there = store_layout_for(shared, ref) / "index.json";
              exists_nofollow(there)) {
            file = there;
            break;
          }
      break;
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return common::errno_error("stat", file.string(), errno);
  std::string key = std::to_string(static_cast<int>(ref.transport)) + '\n' +
                    std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + '\n' +
                    std::to_string(st.st_size) + '\n' + std::to_string(st.st_mtim.tv_sec) + '.' +
                    std::to_string(st.st_mtim.tv_nsec) + '\n' + ref.tag + '\n' + ref.name + '\n' +
                    oci::host_platform().to_string();
  if (ref.transport == oci::Transport::Registry) key += '\n' + ref.to_string();
  return short_hash(key);
}

}  // namespace internal

// ---- EnvInfo JSON ----

std::string to_json_text(const EnvInfo& info) {
  json env_vars = json::array();
  for (const auto& [k, v] : info.env_vars) env_vars.push_back(json::array({k, v}));
  json j{{"format", 1},
         {"manifest_digest", info.manifest_digest},
         {"reference", info.reference},
         {"image_prefix", info.image_prefix},
         {"prefix", info.prefix},
         {"platform", info.platform},
         {"env", info.env},
         {"env_vars", std::move(env_vars)},
         {"activate_scripts", info.activate_scripts},
         {"requirements", info.requirements},
         {"unpacked_at", info.unpacked_at}};
  if (info.entrypoint) j["entrypoint"] = *info.entrypoint;
  if (info.cmd) j["cmd"] = *info.cmd;
  if (!info.squashfs.empty()) j["squashfs"] = info.squashfs;
  return j.dump(1) + "\n";
}

Result<EnvInfo> env_info_from_json(std::string_view text, std::string_view what) {
  try {
    ENVB_ASSIGN_OR_RETURN(json j, common::parse_json(text, what));
    if (j.value("format", 0) != 1)
      return fail(Errc::Unsupported, std::string(what) + ": unknown format");
    EnvInfo info;
    info.manifest_digest = j.at("manifest_digest").get<std::string>();
    info.reference = j.value("reference", "");
    info.image_prefix = j.at("image_prefix").get<std::string>();
    info.prefix = j.at("prefix").get<std::string>();
    info.platform = j.value("platform", "");
    info.env = j.at("env").get<std::vector<std::string>>();
    for (const auto& kv : j.at("env_vars"))
      info.env_vars.emplace_back(kv.at(0).get<std::string>(), kv.at(1).get<std::string>());
    info.activate_scripts = j.at("activate_scripts").get<std::vector<std::string>>();
    info.requirements = j.at("requirements").get<std::vector<std::string>>();
    info.unpacked_at = j.value("unpacked_at", int64_t{0});
    if (j.contains("entrypoint"))
      info.entrypoint = j.at("entrypoint").get<std::vector<std::string>>();
    if (j.contains("cmd")) info.cmd = j.at("cmd").get<std::vector<std::string>>();
    info.squashfs = j.value("squashfs", "");
    return info;
  } catch (const json::exception& e) {
    return fail(Errc::InvalidInput, std::string(what) + ": " + e.what());
  }
}

// ---- Cache: the warm path ----

Cache::Cache(fs::path root) : root_(fs::absolute(root).lexically_normal()) {
  if (root_.filename().empty()) root_ = root_.parent_path();
}

Result<fs::path> Cache::default_root() {
  if (const char* dir = std::getenv("ENVRUN_CACHE"); dir && *dir) return fs::path(dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/')
    return fs::path(xdg) / "envrun";
  if (const char* home = std::getenv("HOME"); home && *home == '/')
    return fs::path(home) / ".cache" / "envrun";
  // HOME unset (cron, some batch systems): the password database knows the home directory.
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found &&
      found->pw_dir && found->pw_dir[0] == '/')
    return fs::path(found->pw_dir) / ".cache" / "envrun";
  return Error(Errc::InvalidInput, "no cache directory: HOME is not set and uid " +
                                       std::to_string(::geteuid()) + " has no home directory")
      .with_hint("set ENVRUN_CACHE to a directory of your own");
}

Result<void> Cache::check_root() const {
  return common::ensure_private_dir(root_, "the envrun cache (ENVRUN_CACHE)");
}

Result<std::optional<Materialized>> Cache::open_entry(const std::string& id) const {
  fs::path base = root_ / "p" / id;
  fs::path marker = base.string() + ".json";
  ENVB_ASSIGN_OR_RETURN(common::Fd lock, internal::open_lock_file(base.string() + ".lock"));
  ENVB_TRY(internal::flock_fd(lock, LOCK_SH, base.string() + ".lock"));
  // open + fstat + one read of the size fstat gave: the marker's mtime and text in three
  // syscalls (a stat first, and reading until EOF, were two more on every warm start).
  int fd = ::open(marker.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Materialized>{};
    return common::errno_error("open", marker.string(), errno);
  }
  common::Fd marker_fd(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return common::errno_error("fstat", marker.string(), errno);
  constexpr off_t kMaxMarker = 16 << 20;
  if (st.st_size > kMaxMarker)
    return fail(Errc::InvalidInput, marker.string() + ": larger than 16 MiB");
  // Written atomically (rename), so the size is final: a short read only means EINTR or a
  // file system that reads in pieces.
  std::string text(static_cast<size_t>(st.st_size), '\0');
  for (size_t got = 0; got < text.size();) {
    ENVB_ASSIGN_OR_RETURN(
        size_t n,
        marker_fd.read_some(std::as_writable_bytes(std::span(text)).subspan(got), marker.string()));
    if (n == 0) {
      text.resize(got);
      break;
    }
    got += n;
  }
  marker_fd.reset();
  ENVB_ASSIGN_OR_RETURN(EnvInfo info, env_info_from_json(text, marker.string()));
  struct stat pst {};
  if (::stat(info.prefix.c_str(), &pst) != 0) return std::optional<Materialized>{};
  if (std::time(nullptr) - st.st_mtim.tv_sec > kTouchInterval)
    (void)::utimensat(AT_FDCWD, marker.c_str(), nullptr, 0);
  return std::optional<Materialized>(Materialized{std::move(info), false, std::move(lock), {}});
}

Result<std::optional<Materialized>> Cache::lookup(const oci::ImageReference& ref) const {
  ENVB_TRY(check_root());
  auto key = internal::source_key(ref, root_);
  if (!key) return std::optional<Materialized>{};
  return lookup_key(*key);
}

Result<std::optional<Materialized>> Cache::lookup_key(const std::string& key) const {
  fs::path ref_file = root_ / "r" / key;
  int fd = ::open(ref_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::optional<Materialized>{};
  char buf[80];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < static_cast<ssize_t>(internal::kIdLength)) return std::optional<Materialized>{};
  return open_entry(std::string(buf, internal::kIdLength));
}

}  // namespace envbuild::runtime
