#include "builder/install/package_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <numeric>
#include <thread>

#include "builder/install/cache.hpp"
#include "builder/solve/channel.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/parallel.hpp"
#include "common/root_dir.hpp"
#include "conda/extract.hpp"
#include "conda/package_metadata.hpp"

namespace envbuild::builder {

namespace fs = std::filesystem;

Result<conda::PackageRecord> extracted_index_record(const fs::path& extracted) {
  ENVB_ASSIGN_OR_RETURN(common::RootDir package, common::RootDir::open(extracted));
  ENVB_ASSIGN_OR_RETURN(auto text,
                        package.read_regular("info/index.json", conda::kMaxInfoFileBytes));
  if (!text)
    return fail(Errc::Integrity, package.shown("info/index.json") + ": missing")
        .with_hint("remove " + extracted.string() + " from the package cache to extract it again");
  return conda::parse_package_record(*text, package.shown("info/index.json"));
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
  if (options_.root.empty()) {
    auto root = default_cache_root();
    if (root) {
      options_.root = *root;
    } else {
      root_error_ = std::move(root).error();
    }
  }
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
  // md5 costs as much CPU as sha256: computed only when it is all the ref has.
  VerifyingSink(common::ByteSink& next, bool want_md5,
                const std::function<void(uint64_t)>& on_bytes)
      : next_(next), md5_(common::HashAlgorithm::Md5), want_md5_(want_md5), on_bytes_(on_bytes) {}
  Result<void> write(std::span<const std::byte> data) override {
    absorb(data);
    if (on_bytes_) on_bytes_(data.size());
    return next_.write(data);
  }
  /// Hashes and counts bytes that are already in the file (a resumed download's first part).
  void absorb(std::span<const std::byte> data) {
    sha256_.update(data);
    if (want_md5_) md5_.update(data);
    size_ += data.size();
  }
  /// Forgets everything: the file is being written again from its start.
  void reset() {
    sha256_ = common::Hasher();
    md5_ = common::Hasher(common::HashAlgorithm::Md5);
    size_ = 0;
  }
  std::string sha256() { return sha256_.hex_digest(); }
  std::string md5() { return md5_.hex_digest(); }
  [[nodiscard]] uint64_t size() const { return size_; }

 private:
  common::ByteSink& next_;
  common::Hasher sha256_;
  common::Hasher md5_;
  bool want_md5_;
  const std::function<void(uint64_t)>& on_bytes_;
  uint64_t size_ = 0;
};

Result<void> verify(const PackageRef& package, VerifyingSink& sink, const std::string& what,
                    std::string& sha256_out) {
  sha256_out = sink.sha256();
  std::string md5 = sink.md5();
  if (package.size && *package.size != sink.size())
    return fail(
        Errc::Integrity,
        what + ": size " + std::to_string(sink.size()) + " bytes, expected " +
            std::to_string(*package.size) + " (truncated or wrong file" +
            (package.sha256.empty() ? std::string()
                                    : "; sha256 " + sha256_out + ", expected " + package.sha256) +
            "): it was not used");
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

// Leftovers of a process killed while it held this key's lock: half-extracted trees
// (".<key>.tmp.*") and temp files of older versions (".<fn>.tmp.*"). An unfinished download
// (".<fn>.part") is kept: it is resumed.
// Called with the key's lock held, so nobody else is writing them.
void remove_stale_temps(const fs::path& root, const std::string& key, const std::string& name) {
  std::error_code ec;
  auto sweep = [&](const fs::path& dir, const std::string& prefix) {
    if (!fs::is_directory(dir, ec)) return;
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().filename().string().rfind(prefix, 0) == 0) stale.push_back(entry.path());
    // A half-extracted tree is an untrusted package's: removed without following its symlinks.
    for (const auto& path : stale) (void)common::remove_all(path);
  };
  sweep(root / "pkgs" / key, "." + name + ".tmp.");
  sweep(root / "extracted", "." + key + ".tmp.");
}

/// Feeds the bytes a broken transfer left in `part` to the hashes, so the download resumes
/// after them.
Result<void> absorb_part(const fs::path& part, VerifyingSink& sink) {
  auto source = common::FileSource::open(part.string());
  if (!source) return std::move(source).error().with_context("reading " + part.string());
  class Absorb final : public common::ByteSink {
   public:
    explicit Absorb(VerifyingSink& s) : s_(s) {}
    Result<void> write(std::span<const std::byte> data) override {
      s_.absorb(data);
      return ok();
    }

   private:
    VerifyingSink& s_;
  } absorb(sink);
  ENVB_TRY(common::copy_stream(**source, absorb).context("reading " + part.string()));
  return ok();
}

/// A GET of `url` from byte `have` on (`Range`), when there is a part to resume: a server that
/// sends the whole file instead (200) gets the part rewound first; a wrong Content-Range is an
/// error.
common::HttpRequest resuming_get(const std::string& url, uint64_t have,
                                 const std::function<Result<void>()>& rewind,
                                 const std::string& what) {
  common::HttpRequest request = common::http_get(url);
  if (have == 0) return request;
  request.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
  request.before_body = [have, rewind, what](
                            long status,
                            const std::map<std::string, std::string>& headers) -> Result<void> {
    if (status != 206) return rewind();  // the whole file follows
    auto it = headers.find("content-range");
    std::string expect = "bytes " + std::to_string(have) + "-";
    if (it == headers.end() || it->second.rfind(expect, 0) != 0)
      return fail(Errc::Network, what + ": asked for bytes " + std::to_string(have) +
                                     "-, the server sent '" +
                                     (it == headers.end() ? "" : it->second) + "'");
    return ok();
  };
  return request;
}

/// A file:// channel's archive, copied through the hashes.
Result<void> copy_local(const std::string& url, VerifyingSink& sink) {
  ENVB_ASSIGN_OR_RETURN(auto source, common::FileSource::open(local_path(url)));
  ENVB_TRY(common::copy_stream(*source, sink));
  return ok();
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
    return fail(Errc::NotFound,
                name + " (" + common::redact_url(package.url) +
                    "): not in the package cache and offline mode (--offline, or "
                    "offline: true in .condarc or CONDA_OFFLINE) forbids downloading")
        .with_hint("run once online, or point --cache-dir at a cache that has it");
  ENVB_TRY(common::make_dirs(dir));
  std::string what = name + " (" + common::redact_url(package.url) + ")";
  // Bytes arrive in <dir>/.<fn>.part, kept when a transfer breaks off, so that the next attempt
  // (here, or in a later run: we hold the key's lock) asks only for the rest with
  // `Range: bytes=N-`. A server that answers 200 instead of 206 sends the whole file: the part is
  // rewound. Size and hashes are always checked over the whole file; a resumed file that fails
  // them is dropped and fetched once more from the start; so is a whole download that fails
  // them once (a body corrupted on the way), but not twice (the package itself differs).
  const fs::path part = dir / ("." + name + ".part");
  // Records name the channel; a mirror of it is where the bytes come from.
  const std::string source_url = mirrored_url(package.url, options_.mirrors);
  bool fetched_again = false;
  for (int attempt = 1;; ++attempt) {
    ENVB_ASSIGN_OR_RETURN(common::Fd fd,
                          common::Fd::open(part.string(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return common::errno_error("fstat", part.string(), errno);
    uint64_t have = static_cast<uint64_t>(st.st_size);
    const bool local = is_local(source_url);
    if (local || (package.size && have >= *package.size)) have = 0;  // nothing to resume
    common::FdSink fd_sink(fd.get(), part.string());
    VerifyingSink sink(fd_sink, package.sha256.empty(), options_.on_bytes);
    auto rewind = [&]() -> Result<void> {
      if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0)
        return common::errno_error("truncate", part.string(), errno);
      sink.reset();
      return ok();
    };
    if (have > 0) {
      ENVB_TRY(absorb_part(part, sink));  // hashed, then appended to
      if (::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0)
        return common::errno_error("lseek", part.string(), errno);
    } else {
      ENVB_TRY(rewind());
    }
    if (local) {
      // Nothing to resume from a local file: a failed copy leaves no part behind.
      auto copied = copy_local(source_url, sink);
      if (!copied) {
        fd.reset();
        std::error_code rm;
        fs::remove(part, rm);
        return std::move(copied).error().with_context("reading " + what);
      }
    } else {
      // Records hold redacted URLs; the channel's credentials go back in for the request only.
      auto sent = client.send(
          resuming_get(source_url == package.url
                           ? with_credentials(package.url, options_.credentialed_channels)
                           : source_url,
                       have, rewind, what),
          sink);
      if (!sent) {
        if (attempt < kDownloadAttempts && (sent.error().retryable() || have > 0)) {
          // A broken transfer keeps its part (resumed next); a resume the server refused
          // (416, a wrong Content-Range) starts over.
          if (!sent.error().retryable()) (void)rewind();
          continue;
        }
        // A part with bytes in it is kept for the next run to resume; an empty one is only
        // litter (every attempt failed before the first body byte).
        struct stat now {};
        if (::fstat(fd.get(), &now) == 0 && now.st_size == 0) {
          std::error_code rm;
          fs::remove(part, rm);
        }
        return std::move(sent).error().with_context("downloading " + name);
      }
    }
    std::string sha256;
    if (auto verified = verify(package, sink, what, sha256); !verified) {
      std::error_code rm;
      fs::remove(part, rm);
      if (attempt < kDownloadAttempts && !local && (have > 0 || !fetched_again)) {
        fetched_again = fetched_again || have == 0;
        continue;
      }
      return std::move(verified).error();
    }
    if (::fsync(fd.get()) != 0) return common::errno_error("fsync", part.string(), errno);
    fd.reset();
    if (::rename(part.c_str(), archive.c_str()) != 0)
      return common::errno_error("rename", archive.string(), errno);
    ENVB_TRY(common::sync_dir(dir));
    downloaded = true;
    return archive;
  }
}

namespace {

// The archive's md5: the ref's when it has one (checked against the download when the ref had
// no sha256), else computed once and remembered beside the archive (records carry both hashes
// whatever named the package; the cache is the user's own, so its .md5 files are trusted).
Result<std::string> archive_md5(const PackageRef& package, const fs::path& archive) {
  if (!package.md5.empty()) return package.md5;
  const fs::path remembered = archive.string() + ".md5";
  std::error_code ec;
  if (fs::is_regular_file(remembered, ec)) {
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(remembered, 64));
    if (text.size() == 32 && text.find_first_not_of("0123456789abcdef") == std::string::npos)
      return text;
  }
  ENVB_ASSIGN_OR_RETURN(std::string md5, common::md5_file(archive.string()));
  ENVB_TRY(common::write_file_atomic(remembered, md5));
  return md5;
}

}  // namespace

struct PackageCache::Held {
  common::FileLock lock;
  CachedPackage result;
  std::string name;
  bool needs_extraction = false;
};

Result<PackageCache::Held> PackageCache::acquire(const PackageRef& package,
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
    return acquire(with_hash, client);
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
  ENVB_ASSIGN_OR_RETURN(result.md5, archive_md5(package, result.archive));
  std::error_code size_ec;
  result.size = fs::file_size(result.archive, size_ec);
  if (size_ec) return common::errno_error("stat", result.archive.string(), size_ec.value());
  result.extracted = options_.root / "extracted" / key;
  std::error_code ec;
  const bool needs_extraction = !fs::is_directory(result.extracted, ec);
  // Last use, for `envbuild cache prune --older-than` (under the key's lock: prune takes the
  // whole cache, but a touch here keeps the dates right for `envbuild cache`).
  touch_used(options_.root / "pkgs" / key);
  if (!needs_extraction) touch_used(result.extracted);
  return Held{std::move(lock), std::move(result), std::move(name), needs_extraction};
}

namespace {

// The result of a held package; the key's lock is released on return (before on_ready runs).
CachedPackage release(auto&& held) {
  auto done = std::move(held);
  return std::move(done.result);
}

}  // namespace

Result<void> PackageCache::extract(Held& held) const {
  ENVB_TRY(common::make_dirs(held.result.extracted.parent_path()));
  conda::ExtractOptions options;
  if (options_.limits) {
    options.limits = *options_.limits;
  } else {
    ENVB_ASSIGN_OR_RETURN(options.limits, common::UnpackLimits::from_environment("ENVBUILD"));
  }
  ENVB_TRY(conda::extract_package(held.result.archive, held.result.extracted, options)
               .context("extracting " + held.name));
  held.result.extracted_now = true;
  return ok();
}

Result<CachedPackage> PackageCache::fetch_one(const PackageRef& package,
                                              common::HttpClient& client) const {
  if (root_error_) return *root_error_;
  ENVB_ASSIGN_OR_RETURN(Held held, acquire(package, client));
  if (held.needs_extraction) ENVB_TRY(extract(held));
  return std::move(held.result);  // the lock goes with `held`
}

namespace {

// Indices of `packages`, longest job first, so that the batch does not end with one worker
// still busy on a big or slow package while the others idle: by expected work (the size, with
// a .tar.bz2 counting 8 times: bzip2 decompresses far slower than zstd), then .tar.bz2 before
// .conda when sizes are unknown (as in an @EXPLICIT lock); otherwise in the given order.
std::vector<size_t> work_order(const std::vector<PackageRef>& packages) {
  constexpr uint64_t kBz2Weight = 8;
  std::vector<std::pair<uint64_t, bool>> keys;
  for (const auto& package : packages) {
    const bool bz2 = archive_name(package).ends_with(".tar.bz2");
    keys.emplace_back(package.size.value_or(0) * (bz2 ? kBz2Weight : 1), bz2);
  }
  std::vector<size_t> order(packages.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return keys[a] > keys[b]; });
  return order;
}

}  // namespace

Result<std::vector<CachedPackage>> PackageCache::fetch(
    const std::vector<PackageRef>& packages) const {
  if (root_error_) return *root_error_;
  const size_t count = packages.size();
  std::vector<CachedPackage> results(count);
  // One outcome per package, written by the one worker that finishes it.
  std::vector<Result<void>> outcomes(count);
  const std::vector<size_t> order = work_order(packages);
  std::atomic<bool> failed{false};
  // A package is ready: its result goes in, then (unless the batch failed) on_ready.
  auto ready = [&](size_t i, CachedPackage result) -> Result<void> {
    results[i] = std::move(result);
    if (!options_.on_ready || failed.load()) return ok();
    return options_.on_ready(i, packages[i], results[i]);
  };
  auto finish = [&](size_t i, Result<void> outcome) {
    if (!outcome) failed.store(true);
    outcomes[i] = std::move(outcome);
  };

  // The extraction pool: verified archives queue here (bounded, so that a slow extraction does
  // not pile up held locks) while the download workers go on.
  const size_t jobs = std::min(options_.jobs, std::max<size_t>(count, 1));
  const size_t extractors =
      std::clamp<size_t>(std::thread::hardware_concurrency(), 1, std::max<size_t>(jobs, 1));
  const size_t capacity = 2 * jobs;
  std::mutex mutex;
  std::condition_variable has_item, has_space;
  std::deque<std::pair<size_t, Held>> queue;
  bool closed = false;
  std::vector<std::jthread> pool;
  for (size_t e = 0; e < extractors; ++e)
    pool.emplace_back([&] {
      for (;;) {
        std::unique_lock<std::mutex> lock(mutex);
        has_item.wait(lock, [&] { return !queue.empty() || closed; });
        if (queue.empty()) return;
        auto [i, held] = std::move(queue.front());
        queue.pop_front();
        lock.unlock();
        has_space.notify_one();
        // Extracted even after another package failed: the archive is already here.
        auto extracted = extract(held);
        CachedPackage result = release(std::move(held));
        finish(i, extracted ? ready(i, std::move(result)) : std::move(extracted));
      }
    });

  common::HttpClients clients(options_.http, common::worker_count(count, jobs));
  // Every outcome is kept per package, so the loop itself never fails.
  (void)common::for_each_index(count, jobs, [&](size_t n, size_t worker) -> Result<void> {
        common::HttpClient& client = clients.of(worker);
        const size_t i = order[n];
        if (failed.load()) {
          outcomes[i] = fail(Errc::Cancelled, "cancelled after an earlier failure");
          return ok();
        }
        auto held = acquire(packages[i], client);
        if (!held) {
          finish(i, std::move(held).error());
          return ok();
        }
        if (!held->needs_extraction) {
          finish(i, ready(i, release(std::move(*held))));
          return ok();
        }
        {
          std::unique_lock<std::mutex> lock(mutex);
          has_space.wait(lock, [&] { return queue.size() < capacity; });
          queue.emplace_back(i, std::move(*held));
        }
        has_item.notify_one();
        return ok();
      });
  {
    std::lock_guard<std::mutex> lock(mutex);
    closed = true;
  }
  has_item.notify_all();
  pool.clear();  // joins: every queued archive is extracted

  for (auto& outcome : outcomes) {
    if (!outcome && outcome.error().code() != Errc::Cancelled) return std::move(outcome).error();
  }
  for (auto& outcome : outcomes)
    if (!outcome) return std::move(outcome).error();
  return results;
}

}  // namespace envbuild::builder
