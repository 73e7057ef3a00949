#include "builder/solve/repodata.hpp"

#include <sys/stat.h>
#include <zstd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "builder/solve/cache_root.hpp"
#include "builder/solve/reach.hpp"
#include "builder/solve/shards.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/json.hpp"
#include "common/parallel.hpp"

namespace envbuild::builder {

namespace {

using common::redact_url;

/// Streams into an AtomicFile.
class AtomicFileSink final : public common::ByteSink {
 public:
  explicit AtomicFileSink(common::AtomicFile& file) : file_(file) {}
  Result<void> write(std::span<const std::byte> data) override { return file_.write(data); }

 private:
  common::AtomicFile& file_;
};

struct DctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

/// Decompresses a zstd stream into the next sink.
class ZstdDecompressSink final : public common::ByteSink {
 public:
  ZstdDecompressSink(common::ByteSink& next, std::string what)
      : next_(next),
        what_(std::move(what)),
        dctx_(ZSTD_createDCtx()),
        out_(ZSTD_DStreamOutSize()) {}
  Result<void> write(std::span<const std::byte> data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t rc = ZSTD_decompressStream(dctx_.get(), &out, &in);
      if (ZSTD_isError(rc))
        return fail(Errc::Integrity, what_ + ": bad zstd data: " + ZSTD_getErrorName(rc));
      last_ = rc;
      if (out.pos) ENVB_TRY(next_.write(std::span(out_.data(), out.pos)));
    }
    return ok();
  }
  Result<void> close() override {
    if (last_ != 0) return fail(Errc::Integrity, what_ + ": truncated zstd stream");
    return next_.close();
  }

 private:
  common::ByteSink& next_;
  std::string what_;
  std::unique_ptr<ZSTD_DCtx, DctxFree> dctx_;
  std::vector<std::byte> out_;
  size_t last_ = 1;
};

struct CacheInfo {
  std::string url, etag, last_modified, variant;
  int64_t fetched_at = 0;
  bool zst_known_missing = false;
};

std::optional<CacheInfo> read_info(const std::filesystem::path& path) {
  auto text = common::read_file(path, 1 << 20);
  if (!text) return std::nullopt;
  auto parsed = common::parse_json(*text, path.string());
  if (!parsed) return std::nullopt;  // a damaged entry is refetched
  try {
    const nlohmann::json& j = *parsed;
    CacheInfo info;
    info.url = j.value("url", "");
    info.etag = j.value("etag", "");
    info.last_modified = j.value("last_modified", "");
    info.variant = j.value("variant", "json");
    info.fetched_at = j.value("fetched_at", int64_t{0});
    info.zst_known_missing = !j.value("zst", true);
    return info;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a damaged entry is refetched
  }
}

Result<void> write_info(const std::filesystem::path& path, const CacheInfo& info) {
  nlohmann::json j = {{"url", info.url},
                      {"etag", info.etag},
                      {"last_modified", info.last_modified},
                      {"fetched_at", info.fetched_at},
                      {"variant", info.variant},
                      {"zst", !info.zst_known_missing}};
  return common::write_file_atomic(path, j.dump(2) + "\n");
}

std::string stat_fingerprint(const struct stat& st) {
  return "local:" + std::to_string(st.st_size) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

Result<void> fetch_local(SubdirRepodata& out, const std::filesystem::path& cache_dir) {
  std::string dir = out.channel.fetch_base().substr(7) + "/" + out.subdir;
  std::filesystem::path json = dir + "/repodata.json";
  std::filesystem::path zst = dir + "/repodata.json.zst";
  struct stat st {};
  out.cache_prefix = cache_dir / common::sha256_hex(out.channel.url(out.subdir, "")).substr(0, 16);
  if (::stat(json.c_str(), &st) == 0) {
    out.path = json;
    out.source = json.string();
    out.fingerprint = stat_fingerprint(st);
    return ok();
  }
  if (::stat(zst.c_str(), &st) == 0) {  // only the compressed form: decompress into the cache
    out.source = zst.string();
    out.fingerprint = stat_fingerprint(st);
    out.path = out.cache_prefix.string() + ".json";
    auto info = read_info(out.cache_prefix.string() + ".info.json");
    if (info && info->etag == out.fingerprint && std::filesystem::exists(out.path)) return ok();
    ENVB_ASSIGN_OR_RETURN(auto source, common::FileSource::open(zst.string()));
    ENVB_ASSIGN_OR_RETURN(auto file, common::AtomicFile::create(out.path));
    AtomicFileSink file_sink(file);
    ZstdDecompressSink sink(file_sink, zst.string());
    ENVB_TRY(common::copy_stream(*source, sink));
    ENVB_TRY(sink.close());
    ENVB_TRY(file.commit());
    return write_info(out.cache_prefix.string() + ".info.json",
                      CacheInfo{out.source, out.fingerprint, "", "zst", 0, false});
  }
  if (out.subdir == "noarch")
    return fail(Errc::NotFound, "channel " + out.channel.name + ": no " + json.string() +
                                    " (a channel needs at least a noarch subdir)")
        .with_hint("run 'envbuild index " + out.channel.fetch_base().substr(7) +
                   "' to write the channel's repodata");
  out.missing = true;
  return ok();
}

/// Writes to two sinks.
struct Tee final : common::ByteSink {
  common::ByteSink& a;
  common::ByteSink& b;
  Tee(common::ByteSink& x, common::ByteSink& y) : a(x), b(y) {}
  Result<void> write(std::span<const std::byte> d) override {
    ENVB_TRY(a.write(d));
    return b.write(d);
  }
};

/// GETs one form of a subdir's repodata (`repodata.json.zst`, decompressed as it streams, or
/// `repodata.json`) into `body_path`, conditional on the cached body's validators when that is
/// of the same form. A 304 leaves the cached body as it was.
Result<common::HttpResponse> fetch_variant(SubdirRepodata& out, common::HttpClient& client,
                                           const std::string& base, bool zst,
                                           const std::optional<CacheInfo>& info, bool have_body,
                                           const std::filesystem::path& body_path) {
  common::HttpRequest request = common::http_get(zst ? base + ".zst" : base);
  request.metadata = true;
  const bool same_variant = have_body && info->variant == (zst ? "zst" : "json");
  if (same_variant && !info->etag.empty())
    request.headers.emplace_back("If-None-Match", info->etag);
  if (same_variant && !info->last_modified.empty())
    request.headers.emplace_back("If-Modified-Since", info->last_modified);
  ENVB_ASSIGN_OR_RETURN(auto file, common::AtomicFile::create(body_path));
  AtomicFileSink file_sink(file);
  common::HashingSink counter;  // counts the bytes on the wire
  ZstdDecompressSink unzst(file_sink, redact_url(request.url));
  Tee tee(counter, zst ? static_cast<common::ByteSink&>(unzst) : file_sink);
  ENVB_ASSIGN_OR_RETURN(auto response, client.send(request, tee));
  out.http_attempts += response.attempts;
  if (response.not_modified()) return response;  // the temp file is discarded
  ENVB_TRY(tee.b.close());
  ENVB_TRY(file.commit());
  out.transferred_body = true;
  out.bytes_transferred = counter.size();
  return response;
}

Result<void> fetch_remote(SubdirRepodata& out, common::HttpClient& client,
                          const RepodataOptions& options, const std::filesystem::path& cache_dir) {
  const std::string base = out.channel.url(out.subdir, "repodata.json");
  out.cache_prefix = cache_dir / common::sha256_hex(base).substr(0, 16);
  const std::string prefix = out.cache_prefix.string();
  const std::filesystem::path body_path = prefix + ".json";
  const std::filesystem::path info_path = prefix + ".info.json";
  const std::filesystem::path missing_path = prefix + ".missing";
  out.path = body_path;
  ENVB_ASSIGN_OR_RETURN(auto lock,
                        common::FileLock::acquire(prefix + ".lock", common::LockMode::Exclusive));
  std::optional<CacheInfo> info = read_info(info_path);
  const bool have_body = info && std::filesystem::exists(body_path);

  if (options.offline) {
    if (have_body) {
      out.fingerprint =
          info->etag + "|" + info->last_modified + "|" + std::to_string(info->fetched_at);
      out.source = info->url;
      return ok();
    }
    if (std::filesystem::exists(missing_path) && out.subdir != "noarch") {
      out.missing = true;
      return ok();
    }
    return fail(Errc::NotFound, "offline: no cached repodata for channel " + out.channel.name +
                                    " subdir " + out.subdir + " (" + redact_url(base) + ")")
        .with_hint(
            "run once online (without --offline, offline: true in .condarc or "
            "CONDA_OFFLINE) to fill the cache at " +
            cache_dir.string());
  }

  bool use_zst = options.prefer_zst && !(info && info->zst_known_missing);
  bool zst_missing = info && info->zst_known_missing;
  Result<common::HttpResponse> response = fail(Errc::Internal, "not fetched");
  if (use_zst) {
    response = fetch_variant(out, client, base, true, info, have_body, body_path);
    if (!response && response.error().code() == Errc::NotFound) {
      zst_missing = true;
      use_zst = false;
    }
  }
  if (!use_zst) response = fetch_variant(out, client, base, false, info, have_body, body_path);
  if (!response) {
    if (response.error().code() == Errc::NotFound) {
      if (out.subdir == "noarch")
        return std::move(response).error().with_context("channel " + out.channel.name +
                                                        " not found (it has no noarch subdir)");
      out.missing = true;  // conda: a channel may lack a platform subdir
      (void)common::write_file_atomic(missing_path, redact_url(base) + "\n");
      return ok();
    }
    return std::move(response).error().with_context("fetching repodata of channel " +
                                                    out.channel.name + "/" + out.subdir);
  }
  CacheInfo next;
  if (response->not_modified() && !have_body)  // nothing asked to revalidate: not an answer
    return fail(Errc::Integrity, "fetching repodata of channel " + out.channel.name + "/" +
                                     out.subdir + ": 304 Not Modified to a request that named "
                                     "no cached copy");
  if (response->not_modified()) {
    next = *info;
  } else {
    next.etag = response->etag;
    next.last_modified = response->last_modified;
    next.variant = use_zst ? "zst" : "json";
  }
  next.url = redact_url(use_zst ? base + ".zst" : base);
  next.fetched_at = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  next.zst_known_missing = zst_missing;
  out.source = next.url;
  // The fingerprint is what the .solv cache is keyed on: an unchanged body keeps it.
  out.fingerprint = next.etag + "|" + next.last_modified;
  if (next.etag.empty() && next.last_modified.empty()) {
    ENVB_ASSIGN_OR_RETURN(out.fingerprint, common::sha256_file(body_path.string()));
  }
  return write_info(info_path, next);
}

}  // namespace

Result<std::vector<SubdirRepodata>> fetch_repodata(const std::vector<Channel>& channels,
                                                   const std::vector<std::string>& subdirs,
                                                   const RepodataOptions& options,
                                                   const std::vector<std::string>& roots) {
  std::filesystem::path cache_dir = options.cache_dir;
  if (cache_dir.empty()) {
    ENVB_ASSIGN_OR_RETURN(cache_dir, default_cache_root());
    cache_dir /= "repodata";
  }
  ENVB_TRY(common::make_dirs(cache_dir).context("repodata cache"));
  std::vector<SubdirRepodata> out;
  for (size_t c = 0; c < channels.size(); ++c) {
    for (const std::string& subdir : subdirs) {
      SubdirRepodata entry;
      entry.channel = channels[c];
      entry.subdir = subdir;
      entry.priority = static_cast<int>(channels.size() - c);
      out.push_back(std::move(entry));
    }
  }
  common::HttpClients clients(options.http, std::max<size_t>(options.jobs, 1));
  std::optional<NameSet> reach_from;
  if (options.shards && !roots.empty()) reach_from = root_names(roots);
  if (reach_from && reach_from->empty()) reach_from.reset();
  std::unique_ptr<RecordSource> shards;
  if (reach_from) {
    ENVB_ASSIGN_OR_RETURN(shards, open_shards(out, options, cache_dir, clients));
  }
  ENVB_TRY(common::for_each_index(out.size(), options.jobs, [&](size_t i, size_t worker) {
    SubdirRepodata& entry = out[i];
    if (entry.sharded) return ok();
    if (entry.channel.is_local()) return fetch_local(entry, cache_dir);
    return fetch_remote(entry, clients.of(worker), options, cache_dir);
  }));
  // Last use of the cache entries read (not of local channels' own files).
  for (const auto& entry : out)
    if (!entry.cache_prefix.empty() && entry.path.string().starts_with(cache_dir.string()))
      touch_used(entry.path);
  if (reach_from) ENVB_TRY(reach_subsets(out, *reach_from, shards.get(), options, cache_dir));
  return out;
}

}  // namespace envbuild::builder
