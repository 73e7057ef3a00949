#include "builder/solve/shards.hpp"

#include <zstd.h>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "builder/solve/cache_root.hpp"
#include "builder/solve/reach.hpp"
#include "common/ascii.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/json.hpp"
#include "common/msgpack.hpp"
#include "common/parallel.hpp"
#include "common/url.hpp"

namespace envbuild::builder {

namespace {

using common::redact_url;
using nlohmann::json;

constexpr std::string_view kIndexFile = "repodata_shards.msgpack.zst";
/// A channel without shards is asked again after this long (a 404 costs a request per solve).
constexpr int64_t kMissingRecheckSeconds = 24 * 3600;
/// Resumptions of one transfer cut mid-body (the client itself retries before any body byte).
constexpr int kMaxResumes = 3;

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Appends to a string, refusing more than `cap` bytes: a hostile server cannot fill memory.
class BoundedStringSink final : public common::ByteSink {
 public:
  BoundedStringSink(std::string& out, size_t cap, std::string what)
      : out_(out), cap_(cap), what_(std::move(what)) {}
  Result<void> write(std::span<const std::byte> data) override {
    if (data.size() > cap_ - std::min(cap_, out_.size()))
      return fail(Errc::Integrity, what_ + ": larger than " + std::to_string(cap_ >> 20) +
                                       " MiB; refusing to read it");
    out_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return ok();
  }

 private:
  std::string& out_;
  size_t cap_;
  std::string what_;
};

struct DctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

/// zstd-decompresses `data` into memory, at most kMaxShardBytes.
Result<std::string> decompress(std::string_view data, const std::string& what) {
  // One context per thread, reset for each shard: creating one costs its window's allocation
  // (and page faults) for each of a few hundred shards.
  thread_local std::unique_ptr<ZSTD_DCtx, DctxFree> dctx;
  if (!dctx) dctx.reset(ZSTD_createDCtx());
  if (!dctx) return fail(Errc::Internal, what + ": ZSTD_createDCtx failed");
  ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_only);
  // A frame with a large window leaves a large context: not kept for the next shard.
  struct Shrink {
    std::unique_ptr<ZSTD_DCtx, DctxFree>& ctx;
    ~Shrink() {
      if (ctx && ZSTD_sizeof_DCtx(ctx.get()) > (size_t{8} << 20)) ctx.reset();
    }
  } shrink{dctx};
  // Straight into the result, sized by what the frame declares (only a hint: bounded, and the
  // stream decides), grown by doubling when it says too little: a 128 KiB buffer in between
  // was a fresh mapping to fault in and a copy, for each of a few hundred shards.
  size_t hint = 64u << 10;
  if (const auto declared = ZSTD_getFrameContentSize(data.data(), data.size());
      declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR)
    hint = static_cast<size_t>(std::min<unsigned long long>(
        {declared + 1, kMaxShardBytes + 1, 32ull * data.size() + (64u << 10)}));
  std::string out(std::max<size_t>(hint, 1), '\0');
  size_t used = 0;
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  size_t last = 1;
  while (in.pos < in.size || last != 0) {
    if (used == out.size()) {
      if (out.size() > kMaxShardBytes)
        return fail(Errc::Integrity, what + ": decompresses to more than " +
                                         std::to_string(kMaxShardBytes >> 20) + " MiB");
      // Doubled, or to one byte past the cap and no more: a new string of exactly that size
      // (resize() may double the capacity again, to twice the cap).
      std::string grown(out.size() * 2 >= kMaxShardBytes ? kMaxShardBytes + 1 : out.size() * 2,
                        '\0');
      std::memcpy(grown.data(), out.data(), used);
      out.swap(grown);
    }
    ZSTD_outBuffer o{out.data(), out.size(), used};
    const size_t before = in.pos;
    last = ZSTD_decompressStream(dctx.get(), &o, &in);
    if (ZSTD_isError(last))
      return fail(Errc::Integrity, what + ": bad zstd data: " + ZSTD_getErrorName(last));
    const bool progressed = o.pos != used;
    used = o.pos;
    if (used > kMaxShardBytes)
      return fail(Errc::Integrity, what + ": decompresses to more than " +
                                       std::to_string(kMaxShardBytes >> 20) + " MiB");
    if (last != 0 && in.pos == in.size && in.pos == before && !progressed)
      return fail(Errc::Integrity, what + ": truncated zstd stream");
  }
  out.resize(used);
  return out;
}

/// GETs `url` into `body` (at most kMaxShardCompressedBytes), resuming with a Range request
/// when the connection breaks mid-body. A 304 (with `headers` asking for one) leaves `body`
/// empty.
Result<common::HttpResponse> get_resumable(common::HttpClient& client, const std::string& url,
                                           const common::HttpHeaders& headers, std::string& body) {
  body.clear();
  for (int resume = 0;; ++resume) {
    common::HttpRequest request = common::http_get(url, headers);
    request.metadata = true;
    const size_t have = body.size();
    if (have > 0) request.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
    request.before_body = [&body, have](long status, const auto&) -> Result<void> {
      if (have > 0 && status == 200) body.clear();  // the server sent the whole file again
      return ok();
    };
    BoundedStringSink sink(body, kMaxShardCompressedBytes, "GET " + redact_url(url));
    auto response = client.send(request, sink);
    if (response) return response;
    // Only a transfer that was cut after some bytes arrived is resumed; the client has retried
    // everything else already.
    if (resume >= kMaxResumes || body.size() <= have || !response.error().retryable())
      return std::move(response).error();
  }
}

// --- the index ------------------------------------------------------------------------------

/// Reads a shard index's events (common::walk_msgpack): depth 1 is the index's map, 2 the
/// "info" and "shards" maps. What is met is kept as views and judged after the walk, in the
/// order a DOM reader would judge it, so that the first fault reported is the same.
class ShardIndexReader final : public common::MsgpackHandler {
 public:
  struct Version {
    bool integer = false;
    int64_t value = 0;
    std::string text;  // as a message shows it
  };
  bool top_is_map = false;
  std::optional<std::vector<std::pair<std::string_view, std::optional<std::string_view>>>> shards;
  std::optional<Version> version;
  std::optional<std::string_view> shards_base_url, base_url;

  bool null() override { return scalar([] { return std::string("null"); }, {}); }
  bool boolean(bool v) override {
    return scalar([v] { return std::string(v ? "true" : "false"); }, {});
  }
  bool integer(int64_t v) override { return scalar([v] { return std::to_string(v); }, v); }
  bool unsigned_integer(uint64_t v) override {
    return scalar([v] { return std::to_string(v); },
                  v <= INT64_MAX ? std::optional<int64_t>(v) : std::nullopt);
  }
  bool floating(double v) override {
    return scalar(
        [v] {
          char buf[32];
          auto r = std::to_chars(buf, buf + sizeof buf, v);
          return std::string(buf, r.ptr);
        },
        {});
  }
  bool string(std::string_view v) override {
    if (depth_ == 2 && in_info_ && key_ == "shards_base_url") shards_base_url = v;
    if (depth_ == 2 && in_info_ && key_ == "base_url") base_url = v;
    return scalar([v] { return "\"" + std::string(v) + "\""; }, {});
  }
  bool binary(std::string_view v) override {
    if (depth_ == 2 && in_shards_) shards->back().second = v;
    return scalar([] { return std::string("<binary>"); }, {});
  }
  bool key(std::string_view k) override {
    if (depth_ == 1) {
      key_ = k;
      in_info_ = false;
      in_shards_ = false;
      if (k == "shards") shards.reset();  // a later "shards" replaces an earlier one
      if (k == "version") version.reset();
      if (k == "info") shards_base_url.reset(), base_url.reset();
    } else if (depth_ == 2) {
      key_ = k;
      if (in_info_ && k == "shards_base_url") shards_base_url.reset();
      if (in_info_ && k == "base_url") base_url.reset();
      if (in_shards_) shards->emplace_back(k, std::nullopt);
    }
    return true;
  }
  bool begin_map(size_t) override {
    if (depth_ == 0) top_is_map = true;
    if (depth_ == 1 && key_ == "info") in_info_ = true;
    if (depth_ == 1 && key_ == "shards") {
      in_shards_ = true;
      shards.emplace();
    }
    if (depth_ == 1 && key_ == "version") version = Version{false, 0, "{...}"};
    ++depth_;
    return true;
  }
  bool end_map() override { return close(); }
  bool begin_array(size_t) override {
    if (depth_ == 1 && key_ == "version") version = Version{false, 0, "[...]"};
    ++depth_;
    return true;
  }
  bool end_array() override { return close(); }

 private:
  /// A value other than a map or an array; only "version"'s is kept, with its text (made
  /// only then: an index holds a few hundred thousand hashes).
  template <typename Text>
  bool scalar(const Text& text, std::optional<int64_t> integer) {
    if (depth_ == 1 && key_ == "version")
      version = Version{integer.has_value(), integer.value_or(0), text()};
    return true;
  }
  bool close() {
    --depth_;
    if (depth_ == 1) in_info_ = in_shards_ = false;
    return true;
  }

  size_t depth_ = 0;
  std::string_view key_;
  bool in_info_ = false, in_shards_ = false;
};

struct ShardIndex {
  std::string url;          // of the index (may hold credentials)
  std::string shards_base;  // absolute, ends with '/'
  std::string base_url;     // CEP 15 info.base_url as written ("" when absent)
  std::map<std::string, std::string, std::less<>> shard_of;  // name -> sha256 hex
  std::string digest;       // sha256 of the index file: it names every shard by its hash
};

Result<ShardIndex> parse_index(std::string_view compressed, const std::string& url) {
  const std::string what = redact_url(url);
  ENVB_ASSIGN_OR_RETURN(std::string raw, decompress(compressed, what));
  ENVB_ASSIGN_OR_RETURN(ShardIndexDocument doc, parse_shard_index_msgpack(raw, what));
  ShardIndex index;
  index.url = url;
  index.digest = common::sha256_hex(compressed);
  index.base_url = std::move(doc.base_url);
  index.shard_of = std::move(doc.shard_of);
  std::string shards_base = doc.shards_base_url.value_or("./shards/");
  if (!shards_base.ends_with('/')) shards_base += '/';
  index.shards_base = resolve_url(url, shards_base);
  // The index may send shards elsewhere, but never to the local file system or down to http.
  const bool web = index.shards_base.starts_with("https://") ||
                   index.shards_base.starts_with("http://");
  if (!web || common::is_downgrade(url, index.shards_base))
    return fail(Errc::Integrity, what + ": shards_base_url '" + redact_url(index.shards_base) +
                                     "' is not an http(s) URL as safe as the index's");
  return index;
}

struct IndexInfo {
  std::string etag, last_modified;
  bool missing = false;
  int64_t fetched_at = 0;
};

IndexInfo read_index_info(const std::filesystem::path& path) {
  IndexInfo info;
  auto text = common::read_file(path, 1 << 20);
  if (!text) return info;
  auto j = common::parse_json(*text, path.string());
  if (!j || !j->is_object()) return info;  // a damaged entry is fetched again
  if (auto e = j->find("etag"); e != j->end() && e->is_string()) info.etag = *e;
  if (auto l = j->find("last_modified"); l != j->end() && l->is_string()) info.last_modified = *l;
  if (auto s = j->find("shards"); s != j->end() && s->is_boolean()) info.missing = !*s;
  if (auto f = j->find("fetched_at"); f != j->end() && f->is_number_integer())
    info.fetched_at = *f;
  return info;
}

Result<void> write_index_info(const std::filesystem::path& path, const IndexInfo& info,
                              const std::string& url) {
  json j = {{"url", redact_url(url)},          {"etag", info.etag},
            {"last_modified", info.last_modified}, {"shards", !info.missing},
            {"fetched_at", info.fetched_at}};
  return common::write_file_atomic(path, j.dump(2) + "\n");
}

/// Caches an index as fetched (the body, when there is one, and what revalidates it), each
/// file whole (temp + rename, synced). With the later work of a solve, on the core the solve
/// leaves idle, under the index's lock taken again so that body and info are written together
/// (another solve's never pair up with ours); when another process holds it (fetching), not
/// at all: nobody waits on it, and a write left out is a miss for the next solve. Else now, by
/// the caller holding the lock.
void keep_index(const std::filesystem::path& lock_path, const std::filesystem::path& body_path,
                const std::filesystem::path& info_path, const std::string& url,
                std::optional<std::string> body, const IndexInfo& info,
                const RepodataOptions& options) {
  auto write = [=, body = std::move(body)]() -> Result<void> {
    if (body) ENVB_TRY(common::write_file_atomic(body_path, *body));
    return write_index_info(info_path, info, url);
  };
  if (!options.later_cache_writes) {
    (void)write();
    return;
  }
  // Never taken while this process holds it: the later work runs after every fetch is done.
  options.later_cache_writes->add([lock_path, write = std::move(write)] {
    auto lock = common::FileLock::try_acquire(lock_path, common::LockMode::Exclusive);
    if (lock && *lock) (void)write();
  });
}

/// The entry's index, from the cache or the channel; nullopt when the channel has none.
Result<std::optional<ShardIndex>> fetch_index(SubdirRepodata& entry, common::HttpClient& client,
                                              const RepodataOptions& options,
                                              const std::filesystem::path& cache_dir) {
  const std::string url = entry.channel.url(entry.subdir, kIndexFile);
  const std::string prefix =
      (cache_dir / common::sha256_hex(entry.channel.url(entry.subdir, "repodata.json")).substr(0, 16))
          .string();
  const std::filesystem::path body_path = prefix + ".shards.msgpack.zst";
  const std::filesystem::path info_path = prefix + ".shards.info.json";
  const std::filesystem::path lock_path = prefix + ".lock";
  ENVB_ASSIGN_OR_RETURN(auto lock,
                        common::FileLock::acquire(lock_path, common::LockMode::Exclusive));
  IndexInfo info = read_index_info(info_path);
  auto cached = common::read_file(body_path, kMaxShardCompressedBytes);
  if (options.offline || (info.missing && now_seconds() - info.fetched_at < kMissingRecheckSeconds)) {
    if (info.missing || !cached) return std::optional<ShardIndex>();
    ENVB_ASSIGN_OR_RETURN(auto index, parse_index(*cached, url));
    return std::optional<ShardIndex>(std::move(index));
  }
  common::HttpHeaders headers;
  if (cached && !info.missing) {
    if (!info.etag.empty()) headers.emplace_back("If-None-Match", info.etag);
    if (!info.last_modified.empty()) headers.emplace_back("If-Modified-Since", info.last_modified);
  }
  std::string body;
  auto response = get_resumable(client, url, headers, body);
  IndexInfo next;
  next.fetched_at = now_seconds();
  if (!response) {
    if (response.error().code() != Errc::NotFound)
      return std::move(response).error().with_context("fetching the shard index of channel " +
                                                      entry.channel.name + "/" + entry.subdir);
    next.missing = true;  // no shards here: repodata.json it is
    keep_index(lock_path, body_path, info_path, url, std::nullopt, next, options);
    return std::optional<ShardIndex>();
  }
  entry.http_attempts += response->attempts;
  if (response->not_modified() && headers.empty())  // nothing asked to revalidate: not an answer
    return fail(Errc::Integrity, "GET " + redact_url(url) +
                                     ": 304 Not Modified to a request that named no cached copy");
  if (response->not_modified()) {
    body = std::move(*cached);
    next.etag = info.etag;
    next.last_modified = info.last_modified;
  } else {
    entry.bytes_transferred += body.size();
    next.etag = response->etag;
    next.last_modified = response->last_modified;
  }
  ENVB_ASSIGN_OR_RETURN(auto index, parse_index(body, url));
  // A 304 changes nothing kept (the body and its validators are the cached ones; fetched_at
  // only times a 404's recheck).
  if (!response->not_modified())
    keep_index(lock_path, body_path, info_path, url, std::move(body), next, options);
  return std::optional<ShardIndex>(std::move(index));
}

// --- shards ---------------------------------------------------------------------------------

/// Appends `text` as a JSON string. Bytes that are not UTF-8 pass through as they are (libsolv's
/// parser reads bytes; nlohmann's writer threw on them).
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out += '"';
  // Runs of bytes that need no escape are appended whole (a shard is mostly such runs).
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u != '"' && u != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    if (u == 0) continue;  // libsolv refuses \u0000: the whole subset would fail
    if (u == '"' || u == '\\') {
      out += '\\';
      out += static_cast<char>(u);
    } else {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

/// A package name as its records' JSON text has it (append_json_string drops NUL bytes).
std::string name_as_written(std::string_view name) {
  std::string out(name);
  std::erase(out, '\0');
  return out;
}

/// Turns a decompressed shard (msgpack) into its records as JSON text, without a DOM:
/// common::walk_msgpack drives these events. Depth 1 is the shard's map, 2 a "packages" map, 3
/// a record; a record's bytes (sha256, md5) become hex strings. Every record must be of
/// `name`; the names its "depends" list (`__` names left out) are gathered.
class ShardTranscoder final : public common::MsgpackHandler {
 public:
  static constexpr size_t kMaxDepth = 64;

  ShardTranscoder(std::string_view name, std::string_view what, ShardRecords& out)
      : name_(name), what_(what), out_(out) {}

  const std::string& error() const { return error_; }

  bool null() override { return value("null"); }
  bool boolean(bool v) override { return value(v ? "true" : "false"); }
  bool integer(int64_t v) override { return number(v); }
  bool unsigned_integer(uint64_t v) override { return number(v); }
  bool floating(double v) override {
    if (!std::isfinite(v)) return value("null");
    // An integral float as an integer: libsolv reads timestamp and size with strtoull (which
    // stops at "1.7e+12") and keeps build_number as text.
    if (v == std::trunc(v) && std::fabs(v) < 9.0e18) return number(static_cast<int64_t>(v));
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return value(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  bool string(std::string_view v) override {
    if (!not_a_map_allowed()) return false;
    if (!in_record()) return true;
    if (depth_ == 3 && key_ == "name") name_seen_ = std::string(v);
    // The builds of a name mostly share their dependencies: each is read once per shard.
    if (depth_ == 4 && (key_ == "depends" || key_ == "requires") && frames_.back().array &&
        first_reading(v))
      add_dependency(v, out_.depends);
    begin_value();
    append_json_string(record_, v);
    return true;
  }
  bool binary(std::string_view v) override {
    if (!not_a_map_allowed()) return false;
    if (!in_record()) return true;
    begin_value();
    record_ += '"';
    record_ += common::to_hex(std::span(reinterpret_cast<const uint8_t*>(v.data()), v.size()));
    record_ += '"';
    return true;
  }
  bool key(std::string_view k) override {
    // NUL bytes are dropped from JSON text (libsolv refuses \u0000): in a key they would make
    // "na\0me" a second "name" that libsolv reads and this transcoder did not check.
    if (depth_ >= 2 && section_ && k.find('\0') != std::string_view::npos)
      return fail("a key with a NUL byte in record " + fn_);
    if (depth_ == 1) {
      section_ = k == "packages" ? &out_.packages
                 : k == "packages.conda" ? &out_.packages_conda
                                         : nullptr;
      section_name_ = k;
    } else if (depth_ == 2 && section_) {
      fn_ = k;
    } else if (in_record()) {
      if (depth_ == 3) key_ = k;
      if (!frames_.back().first) record_ += ',';
      frames_.back().first = false;
      append_json_string(record_, k);
      record_ += ':';
    }
    return true;
  }
  bool begin_map(size_t) override { return open(false); }
  bool begin_array(size_t) override { return open(true); }
  bool end_map() override { return close('}'); }
  bool end_array() override { return close(']'); }

 private:
  struct Frame {
    bool array = false;
    bool first = true;
  };

  bool in_record() const { return section_ && depth_ >= 3; }
  /// Whether dependency `v` is read for the first time in this shard; past kMaxRemembered
  /// distinct ones (a hostile shard of millions), every one is read again, as before.
  bool first_reading(std::string_view v) {
    static constexpr size_t kMaxRemembered = size_t{1} << 16;
    return dependencies_read_.size() >= kMaxRemembered || dependencies_read_.insert(v).second;
  }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::string(what_) + ": " + why;
    return false;
  }
  /// Whether a value other than a map may stand here (the shard, a "packages" member and a
  /// record must be maps); the error when not.
  bool not_a_map_allowed() {
    if (depth_ == 0) return fail("a shard is a msgpack map");
    if (depth_ == 1 && section_) return fail("\"" + section_name_ + "\" is not a map");
    if (depth_ == 2 && section_) return fail("record " + fn_ + " is not a map");
    return true;
  }
  void begin_value() {
    if (!frames_.back().array) return;  // after its key
    if (!frames_.back().first) record_ += ',';
    frames_.back().first = false;
  }
  bool value(std::string_view text) {
    if (!not_a_map_allowed()) return false;
    if (!in_record()) return true;
    begin_value();
    record_ += text;
    return true;
  }
  template <typename N>
  bool number(N v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return value(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  bool open(bool array) {
    if (depth_ + 1 > kMaxDepth)
      return fail("arrays and maps nested more than " + std::to_string(kMaxDepth) +
                  " levels deep; refusing to read it");
    if (array && !not_a_map_allowed()) return false;
    ++depth_;
    if (depth_ == 3 && section_) {  // a record begins
      record_ = "{";
      name_seen_.reset();
      key_.clear();
      frames_.assign(1, Frame{false, true});
      return true;
    }
    if (in_record()) {
      begin_value();
      record_ += array ? '[' : '{';
      frames_.push_back(Frame{array, true});
    }
    return true;
  }
  bool close(char bracket) {
    if (in_record()) {
      record_ += bracket;
      frames_.pop_back();
      if (depth_ == 3) {  // the record is whole
        if (name_seen_ != name_)
          return fail("record " + fn_ + " is not a package named '" + std::string(name_) +
                      "' (a shard holds one name)");
        // Copied, not moved: the copy is allocated once at its size, and record_ keeps its
        // buffer for the next record (built up by appends, each record would grow a new one
        // several times over).
        (*section_)[fn_] = record_;
      }
    }
    --depth_;
    if (depth_ == 0) section_ = nullptr;
    return true;
  }

  std::string_view name_, what_;
  ShardRecords& out_;
  size_t depth_ = 0;
  std::map<std::string, std::string>* section_ = nullptr;  // at depth >= 1, under its key
  std::string section_name_, fn_, key_;
  std::string record_;
  std::optional<std::string> name_seen_;
  std::vector<Frame> frames_;
  std::unordered_set<std::string_view> dependencies_read_;  // views into the shard's bytes
  std::string error_;
};

Result<ShardRecords> parse_shard(std::string_view compressed, std::string_view name,
                                 const std::string& what) {
  ENVB_ASSIGN_OR_RETURN(std::string raw, decompress(compressed, what));
  return parse_shard_msgpack(raw, name, what);
}

/// The shard `hash` of package `name`: from the cache when its bytes still hash to `hash`,
/// else from the channel, verified, then cached.
Result<ShardRecords> load_shard(common::HttpClient& client, const ShardIndex& index,
                         std::string_view name, const std::string& hash,
                         const std::filesystem::path& shard_dir, const RepodataOptions& options,
                         SubdirRepodata& entry, std::mutex& entry_mutex) {
  const std::filesystem::path path = shard_dir / (hash + ".msgpack.zst");
  const std::string url = index.shards_base + hash + ".msgpack.zst";
  const std::string what = "shard of '" + std::string(name) + "' (" + redact_url(url) + ")";
  if (auto cached = common::read_file(path, kMaxShardCompressedBytes);
      cached && common::sha256_hex(*cached) == hash) {
    touch_used(path);
    return parse_shard(*cached, name, what);
  }
  if (options.offline)
    return fail(Errc::NotFound, "offline: " + what + " is not in the cache")
        .with_hint("run once without --offline (or with --no-shards) to fill the cache");
  std::string body;
  ENVB_ASSIGN_OR_RETURN(auto response, get_resumable(client, url, {}, body));

  if (const std::string got = common::sha256_hex(body); got != hash)
    return fail(Errc::Integrity, what + ": sha256 " + got + " does not match the index's " + hash)
        .with_hint("the channel's index and shards disagree (a mirror mid-update?); try again");
  ENVB_ASSIGN_OR_RETURN(ShardRecords shard, parse_shard(body, name, what));
  {
    std::lock_guard guard(entry_mutex);
    entry.bytes_transferred += body.size();
    entry.http_attempts += response.attempts;
  }
  // Creating ~250 files is a good part of a cold walk's CPU time (ext4 inodes and directory
  // entries); written later, they take a core the solve leaves idle.
  if (options.later_cache_writes) {
    options.later_cache_writes->add([path, body = std::move(body)] {
      // Nobody waits to hear of a failure: a shard not written is fetched again, as a miss.
      (void)write_hashed_cache_file(path, body, CacheFileReaders::AllCheck);
    });
    return shard;
  }
  ENVB_TRY(write_hashed_cache_file(path, body, CacheFileReaders::AllCheck));
  return shard;
}

struct SubdirShards {
  size_t entry = 0;
  ShardIndex index;
  /// A record kept, and the name whose shard gave it.
  struct Held {
    std::string name;
    std::string record;  // JSON
  };
  std::map<std::string, Held> packages, packages_conda;  // by file name

  /// Keeps the records of `name`'s shard (moved, not copied: a reached name's are read once).
  /// A file name that another name's shard holds too (a broken or hostile index) keeps the
  /// record of the name first in order, whichever shard came in last: the subset, and so the
  /// solve, must not depend on the order the fetches finish in.
  void take(const std::string& name, ShardRecords& shard) {
    for (auto [from, into] : {std::pair{&shard.packages, &packages},
                              std::pair{&shard.packages_conda, &packages_conda}})
      for (auto& [fn, record] : *from) {
        auto [it, fresh] = into->try_emplace(fn);
        if (fresh || name < it->second.name) it->second = Held{name, std::move(record)};
      }
  }
};

/// The shards of the sharded subdirs, fetched as names are reached.
class ShardsSource final : public RecordSource {
 public:
  ShardsSource(std::vector<SubdirRepodata>& entries, std::vector<SubdirShards> sharded,
               const RepodataOptions& options, std::filesystem::path shard_dir,
               common::HttpClients& clients)
      : entries_(entries),
        sharded_(std::move(sharded)),
        options_(options),
        shard_dir_(std::move(shard_dir)),
        clients_(clients) {}

  std::vector<Part> parts() const override {
    std::vector<Part> out;
    for (const SubdirShards& s : sharded_)
      out.push_back({s.entry, "shards\n" + redact_url(s.index.url) + "\n" + s.index.digest});
    return out;
  }

  Result<void> reach(const std::vector<std::string>& names, NameSet& depends) override {
    struct Task {
      size_t subdir;
      std::string name, hash;
    };
    std::vector<Task> tasks;
    for (const std::string& name : names)
      for (size_t s = 0; s < sharded_.size(); ++s)
        if (auto it = sharded_[s].index.shard_of.find(name); it != sharded_[s].index.shard_of.end())
          tasks.push_back({s, name, it->second});
    std::vector<ShardRecords> shards(tasks.size());
    std::mutex entry_mutex;
    ENVB_TRY(common::for_each_index(tasks.size(), options_.jobs, [&](size_t t, size_t worker) -> Result<void> {
      const Task& task = tasks[t];
      SubdirShards& s = sharded_[task.subdir];
      ENVB_ASSIGN_OR_RETURN(shards[t],
                            load_shard(clients_.of(worker), s.index, task.name, task.hash,
                                       shard_dir_, options_, entries_[s.entry], entry_mutex)
                                .context("fetching sharded repodata of channel " +
                                         entries_[s.entry].channel.name + "/" +
                                         entries_[s.entry].subdir));
      return ok();
    }));
    for (size_t t = 0; t < tasks.size(); ++t) {
      SubdirShards& s = sharded_[tasks[t].subdir];
      s.take(tasks[t].name, shards[t]);
      depends.insert(shards[t].depends.begin(), shards[t].depends.end());
    }
    return ok();
  }

  /// Every name the roots reach, each asked for as soon as a shard names it: `jobs` workers
  /// take the next shard off one queue, and a shard's new dependencies join the queue at once.
  /// The names reached, and so the subsets, are the rounds' (a closure); only the order of the
  /// fetches differs. On a failure no new shard is started, and the first one reported is
  /// returned.
  Result<void> reach_all(const NameSet& roots) override {
    common::GrowingWork work;
    std::mutex mutex;  // guards `seen` and the records taken
    NameSet seen;
    std::mutex entry_mutex;
    std::function<void(const std::string&)> enqueue = [&](const std::string& name) {
      if (!seen.insert(name).second) return;  // with `mutex` held
      for (size_t s = 0; s < sharded_.size(); ++s) {
        auto it = sharded_[s].index.shard_of.find(name);
        if (it == sharded_[s].index.shard_of.end()) continue;
        work.add([&, s, name, hash = it->second](size_t worker) -> Result<void> {
          SubdirShards& sub = sharded_[s];
          ENVB_ASSIGN_OR_RETURN(
              ShardRecords shard,
              load_shard(clients_.of(worker), sub.index, name, hash, shard_dir_, options_,
                         entries_[sub.entry], entry_mutex)
                  .context("fetching sharded repodata of channel " +
                           entries_[sub.entry].channel.name + "/" + entries_[sub.entry].subdir));
          // Patterns matched against the indexes (which never change) before the lock is taken.
          const NameSet reached = names_reached(shard.depends, {this});
          std::lock_guard lock(mutex);
          sub.take(name, shard);
          for (const std::string& dependency : reached) enqueue(dependency);
          return ok();
        });
      }
    };
    {
      std::lock_guard lock(mutex);
      for (const std::string& root : roots) enqueue(root);
    }
    return work.run(std::max<size_t>(options_.jobs, 1));
  }

  void for_each_name(const std::function<void(std::string_view)>& f) const override {
    for (const SubdirShards& s : sharded_)
      for (const auto& [name, hash] : s.index.shard_of) f(name);
  }

  /// Each part's records, written with their index: the loader cuts the subset into pieces
  /// without scanning it again.
  Result<std::vector<ReachedSubset>> subsets() override {
    std::vector<ReachedSubset> out;
    for (SubdirShards& s : sharded_) {
      // Sized first: grown by doubling, the ~10 MB subset of an ML environment was copied and
      // faulted in about twice over, on the one thread between the walk and the parse.
      size_t size = 256 + s.index.base_url.size();
      for (const auto* records : {&s.packages, &s.packages_conda})
        for (const auto& [fn, held] : *records) size += fn.size() + held.record.size() + 8;
      RepodataIndex::Writer writer(size);
      std::string info = "{\"subdir\":";
      append_json_string(info, entries_[s.entry].subdir);
      if (!s.index.base_url.empty()) {
        info += ",\"base_url\":";
        append_json_string(info, s.index.base_url);
      }
      info += '}';
      writer.member("info", info);
      std::string quoted;
      for (auto [key, records] : {std::pair{"packages", &s.packages},
                                  std::pair{"packages.conda", &s.packages_conda}}) {
        writer.begin_records(key);
        for (const auto& [fn, held] : *records) {
          quoted.clear();
          append_json_string(quoted, fn);
          if (held.name.find('\0') == std::string::npos)
            writer.record(quoted, held.name, held.record);
          else
            writer.record(quoted, name_as_written(held.name), held.record);
        }
        writer.end_records();
      }
      out.push_back({{}, std::make_shared<const RepodataIndex>(std::move(writer).finish())});
    }
    return out;
  }

 private:
  std::vector<SubdirRepodata>& entries_;
  std::vector<SubdirShards> sharded_;
  const RepodataOptions& options_;
  std::filesystem::path shard_dir_;
  common::HttpClients& clients_;
};

}  // namespace

Result<ShardIndexDocument> parse_shard_index_msgpack(std::string_view raw, std::string_view what) {
  ShardIndexReader reader;
  const std::string invalid = common::walk_msgpack(raw, reader);
  const std::string where(what);
  if (!invalid.empty()) return fail(Errc::Integrity, where + ": invalid msgpack: " + invalid);
  if (!reader.top_is_map || !reader.shards)
    return fail(Errc::Integrity, where + ": not a shard index (no \"shards\" map)");
  if (reader.version && (!reader.version->integer || reader.version->value != 1))
    return fail(Errc::Unsupported, where + ": shard index version " + reader.version->text +
                                       " (envbuild reads version 1)");
  ShardIndexDocument doc;
  if (reader.shards_base_url) doc.shards_base_url.emplace(*reader.shards_base_url);
  if (reader.base_url) doc.base_url = std::string(*reader.base_url);
  // Last given wins, as in a DOM: each name's last entry is the one judged and kept.
  std::map<std::string_view, std::optional<std::string_view>> last;
  for (const auto& [name, hash] : *reader.shards) last[name] = hash;
  for (const auto& [name, hash] : last) {
    if (!hash || hash->size() != 32)
      return fail(Errc::Integrity, where + ": the shard hash of '" + std::string(name) +
                                       "' is not 32 bytes of sha256");
    doc.shard_of.emplace_hint(
        doc.shard_of.end(), std::string(name),
        common::to_hex(std::span(reinterpret_cast<const uint8_t*>(hash->data()), hash->size())));
  }
  return doc;
}

Result<ShardRecords> parse_shard_msgpack(std::string_view raw, std::string_view name,
                                         std::string_view what) {
  ShardRecords shard;
  ShardTranscoder transcoder(name, what, shard);
  const std::string invalid = common::walk_msgpack(raw, transcoder);
  if (!transcoder.error().empty()) return fail(Errc::Integrity, transcoder.error());
  if (!invalid.empty()) return fail(Errc::Integrity, std::string(what) + ": invalid msgpack: " + invalid);
  return shard;
}

void add_dependency(std::string_view spec, NameSet& depends) {
  // libsolv's conda match specs compare names in lower case. A pattern stays even when it
  // starts with "__" ("__*|foo" matches names ending in foo).
  for (std::string name : {common::ascii_lower(spec_package_name(spec)), libsolv_spec_name(spec)})
    if (!name.empty() && (!name.starts_with("__") || names_a_pattern(name)))
      depends.insert(std::move(name));
}

std::string_view spec_package_name(std::string_view spec) {
  if (auto colons = spec.rfind("::"); colons != std::string_view::npos)
    spec = spec.substr(colons + 2);
  const size_t start = spec.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  spec = spec.substr(start);
  return spec.substr(0, spec.find_first_of(" \t=<>!~[,;|*"));
}

Result<std::unique_ptr<RecordSource>> open_shards(std::vector<SubdirRepodata>& entries,
                                                  const RepodataOptions& options,
                                                  const std::filesystem::path& cache_dir,
                                                  common::HttpClients& clients) {
  std::vector<size_t> remote;
  for (size_t i = 0; i < entries.size(); ++i)
    if (!entries[i].channel.is_local()) remote.push_back(i);
  std::vector<std::optional<ShardIndex>> indexes(remote.size());
  ENVB_TRY(common::for_each_index(remote.size(), options.jobs, [&](size_t i, size_t worker) -> Result<void> {
    ENVB_ASSIGN_OR_RETURN(indexes[i],
                          fetch_index(entries[remote[i]], clients.of(worker), options, cache_dir));
    return ok();
  }));
  std::vector<SubdirShards> sharded;
  for (size_t i = 0; i < remote.size(); ++i) {
    if (!indexes[i]) continue;
    SubdirRepodata& entry = entries[remote[i]];
    entry.sharded = true;  // its repodata.json is not fetched
    entry.cache_prefix =
        cache_dir / common::sha256_hex(entry.channel.url(entry.subdir, "repodata.json")).substr(0, 16);
    entry.source = redact_url(indexes[i]->url);
    sharded.push_back(SubdirShards{remote[i], std::move(*indexes[i]), {}, {}});
  }
  if (sharded.empty()) return std::unique_ptr<RecordSource>();
  const std::filesystem::path shard_dir = cache_dir / "shards";
  ENVB_TRY(common::make_dirs(shard_dir).context("shard cache"));
  // `cache prune` takes shards/ as one entry, last used when this directory's time says: a solve
  // that reads its shards but writes none must say so too.
  touch_used(shard_dir);
  return std::unique_ptr<RecordSource>(
      std::make_unique<ShardsSource>(entries, std::move(sharded), options, shard_dir, clients));
}

}  // namespace envbuild::builder
