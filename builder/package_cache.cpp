#include "builder/package_cache.hpp"

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "conda/extract.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

fs::path default_cache_root() {
  if (const char* dir = std::getenv("ENVBUILD_CACHE"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "envbuild";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache" / "envbuild";
  return "/tmp/envbuild-cache";
}

std::string cache_key(const PackageRef& package) {
  if (!package.sha256.empty()) return package.sha256;
  if (!package.md5.empty()) return "md5-" + package.md5;
  return "";
}

std::string archive_name(const PackageRef& package) {
  if (!package.fn.empty()) return package.fn;
  std::string url = package.url;
  if (auto q = url.find_first_of("?#"); q != std::string::npos) url.resize(q);
  auto slash = url.rfind('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

PackageCache::PackageCache(PackageCacheOptions options) : options_(std::move(options)) {
  if (options_.root.empty()) options_.root = default_cache_root();
  if (options_.jobs == 0) options_.jobs = 1;
}

namespace {

constexpr int kDownloadAttempts = 3;

bool is_local(const std::string& url) {
  return url.rfind("file://", 0) == 0 || url.find("://") == std::string::npos;
}

std::string local_path(const std::string& url) {
  return url.rfind("file://", 0) == 0 ? url.substr(7) : url;
}

// A sink that hashes sha256 and md5 and counts, writing through to a file.
class VerifyingSink final : public common::ByteSink {
 public:
  explicit VerifyingSink(common::ByteSink& next) : next_(next), md5_(common::HashAlgorithm::Md5) {}
  Result<void> write(std::span<const std::byte> data) override {
    sha256_.update(data);
    md5_.update(data);
    size_ += data.size();
    return next_.write(data);
  }
  std::string sha256() { return sha256_.hex_digest(); }
  std::string md5() { return md5_.hex_digest(); }
  [[nodiscard]] uint64_t size() const { return size_; }

 private:
  common::ByteSink& next_;
  common::Hasher sha256_;
  common::Hasher md5_;
  uint64_t size_ = 0;
};

Result<void> verify(const PackageRef& package, VerifyingSink& sink, const std::string& what,
                    std::string& sha256_out) {
  sha256_out = sink.sha256();
  std::string md5 = sink.md5();
  if (package.size && *package.size != sink.size())
    return fail(Errc::Integrity, what + ": size " + std::to_string(sink.size()) +
                                     " bytes, expected " + std::to_string(*package.size) +
                                     " (truncated or wrong file)");
  if (!package.sha256.empty() && package.sha256 != sha256_out)
    return fail(Errc::Integrity, what + ": sha256 " + sha256_out + ", expected " + package.sha256 +
                                     " (corrupted download or a changed package: it was not used)");
  if (package.sha256.empty() && !package.md5.empty() && package.md5 != md5)
    return fail(Errc::Integrity, what + ": md5 " + md5 + ", expected " + package.md5 +
                                     " (corrupted download or a changed package: it was not used)");
  return ok();
}

}  // namespace

namespace {

// Leftovers of a process killed while it held this key's lock: temp files of an unfinished
// download (AtomicFile names them ".<fn>.tmp.*") and half-extracted trees (".<key>.tmp.*").
// Called with the key's lock held, so nobody else is writing them.
void remove_stale_temps(const fs::path& root, const std::string& key, const std::string& name) {
  std::error_code ec;
  auto sweep = [&](const fs::path& dir, const std::string& prefix) {
    if (!fs::is_directory(dir, ec)) return;
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().filename().string().rfind(prefix, 0) == 0) stale.push_back(entry.path());
    for (const auto& path : stale) fs::remove_all(path, ec);
  };
  sweep(root / "pkgs" / key, "." + name + ".tmp.");
  sweep(root / "extracted", "." + key + ".tmp.");
}

}  // namespace

Result<fs::path> PackageCache::download(const PackageRef& package, const std::string& key,
                                        common::HttpClient& client, bool& downloaded) const {
  std::string name = archive_name(package);
  fs::path dir = options_.root / "pkgs" / key;
  fs::path archive = dir / name;
  std::error_code ec;
  // Only verified archives get this name; a size that no longer matches means someone changed
  // the cache behind our back: fetch it again.
  if (fs::is_regular_file(archive, ec)) {
    uint64_t size = fs::file_size(archive, ec);
    if (!ec && (!package.size || *package.size == size)) return archive;
    fs::remove(archive, ec);
  }
  if (options_.offline)
    return fail(Errc::NotFound, name + " (" + common::redact_url(package.url) +
                                    "): not in the package cache and --offline forbids downloading")
        .with_hint("run once without --offline, or point --cache-dir at a cache that has it");
  ENVB_TRY(common::make_dirs(dir));
  std::string what = name + " (" + common::redact_url(package.url) + ")";
  // HttpClient retries only failures before the first body byte; a transfer cut in the middle is
  // retried here, from the start, into a fresh temp file.
  for (int attempt = 1;; ++attempt) {
    ENVB_ASSIGN_OR_RETURN(auto file, common::AtomicFile::create(archive, 0644));
    common::FdSink fd_sink(file.fd().get(), file.temp_path().string());
    VerifyingSink sink(fd_sink);
    if (is_local(package.url)) {
      auto source = common::FileSource::open(local_path(package.url));
      if (!source) return std::move(source).error().with_context("reading " + what);
      auto copied = common::copy_stream(**source, sink);
      if (!copied) return std::move(copied).error().with_context("reading " + what);
    } else {
      auto sent = client.send(common::http_get(package.url), sink);
      if (!sent) {
        if (sent.error().retryable() && attempt < kDownloadAttempts) continue;
        return std::move(sent).error().with_context("downloading " + name);
      }
    }
    std::string sha256;
    ENVB_TRY(verify(package, sink, what, sha256));
    ENVB_TRY(file.commit_no_replace());
    downloaded = true;
    return archive;
  }
}

Result<CachedPackage> PackageCache::fetch_one(const PackageRef& package,
                                              common::HttpClient& client) const {
  std::string name = archive_name(package);
  std::string key = cache_key(package);
  if (key.empty()) {
    // A ref without any hash can only come from a local file (an index without hashes): hash it
    // to get a key, so the cache stays content-addressed.
    if (!is_local(package.url))
      return fail(Errc::InvalidInput, name + ": no sha256 or md5 to verify the download against");
    ENVB_ASSIGN_OR_RETURN(std::string sha256, common::sha256_file(local_path(package.url)));
    PackageRef with_hash = package;
    with_hash.sha256 = sha256;
    return fetch_one(with_hash, client);
  }
  ENVB_TRY(common::make_dirs(options_.root / "locks"));
  if (!common::is_safe_relative_path(key) || key.find('/') != std::string::npos ||
      !common::is_safe_relative_path(name) || name.find('/') != std::string::npos)
    return fail(Errc::InvalidInput, "bad package name or hash: '" + name + "', '" + key + "'");
  ENVB_ASSIGN_OR_RETURN(auto lock,
                        common::FileLock::acquire(options_.root / "locks" / (key + ".lock"),
                                                  common::LockMode::Exclusive));
  remove_stale_temps(options_.root, key, name);
  CachedPackage result;
  ENVB_ASSIGN_OR_RETURN(result.archive, download(package, key, client, result.downloaded));
  result.sha256 = package.sha256;
  if (result.sha256.empty()) {
    ENVB_ASSIGN_OR_RETURN(result.sha256, common::sha256_file(result.archive.string()));
  }
  result.extracted = options_.root / "extracted" / key;
  std::error_code ec;
  if (!fs::is_directory(result.extracted, ec)) {
    ENVB_TRY(common::make_dirs(result.extracted.parent_path()));
    ENVB_TRY(
        conda::extract_package(result.archive, result.extracted).context("extracting " + name));
    result.extracted_now = true;
  }
  (void)lock;
  return result;
}

Result<std::vector<CachedPackage>> PackageCache::fetch(
    const std::vector<PackageRef>& packages) const {
  std::vector<CachedPackage> results(packages.size());
  std::atomic<bool> failed{false};
  auto outcomes = common::run_parallel(
      packages.size(), std::min(options_.jobs, std::max<size_t>(packages.size(), 1)), options_.http,
      [&](size_t i, common::HttpClient& client) -> Result<void> {
        if (failed.load()) return fail(Errc::Cancelled, "cancelled after an earlier failure");
        auto cached = fetch_one(packages[i], client);
        if (!cached) {
          failed.store(true);
          return std::move(cached).error();
        }
        results[i] = std::move(*cached);
        if (options_.on_ready) options_.on_ready(packages[i], results[i]);
        return ok();
      });
  for (auto& outcome : outcomes) {
    if (!outcome && outcome.error().code() != Errc::Cancelled) return std::move(outcome).error();
  }
  for (auto& outcome : outcomes)
    if (!outcome) return std::move(outcome).error();
  return results;
}

}  // namespace envbuild::builder
