#include "builder/solve/solv/pool.hpp"

#include <stdio_ext.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "builder/solve/channel.hpp"
#include "builder/solve/solv/internal/libsolv.hpp"
#include "builder/solve/solv/internal/preferences.hpp"
#include "builder/solve/solv/internal/prune.hpp"
#include "common/clock.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"

#include <nlohmann/json.hpp>

namespace envbuild::builder::solv {

namespace {
struct PoolFree {
  void operator()(::Pool* pool) const { pool_free(pool); }
};
struct SolverFree {
  void operator()(::Solver* solver) const { solver_free(solver); }
};
struct TransactionFree {
  void operator()(::Transaction* t) const { transaction_free(t); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

/// A FILE handed to libsolv, which only this call on this thread uses: stdio need not lock it
/// (FSETLOCKING_BYCALLER), so libsolv's getc and putc, a call per byte, read and write its
/// buffer inline (internal/libc_wraps.hpp).
std::unique_ptr<FILE, FileClose> for_libsolv(FILE* fp) {
  if (fp) __fsetlocking(fp, FSETLOCKING_BYCALLER);
  return std::unique_ptr<FILE, FileClose>(fp);
}

/// RAII for a libsolv Queue.
class Queue {
 public:
  Queue() { queue_init(&q_); }
  ~Queue() { queue_free(&q_); }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ::Queue* raw() { return &q_; }
  void push(Id a) { queue_push(&q_, a); }
  void push2(Id a, Id b) { queue_push2(&q_, a, b); }
  [[nodiscard]] int size() const { return q_.count; }
  Id operator[](int i) const { return q_.elements[i]; }

 private:
  ::Queue q_;
};

std::string str_or_empty(const char* s) {
  return s ? s : "";
}

/// The .solv key that keeps a repodata's CEP 15 `info.base_url` (repo_add_conda ignores it).
constexpr const char* kBaseUrlKey = "envbuild:repodata:base_url";
/// Set in a .solv whose records' result-only fields live in the file beside it (<solv>.meta).
constexpr const char* kMetaAsideKey = "envbuild:records:meta_aside";
constexpr std::string_view kMetaMagic = "envbuild records meta 1\n";

/// What a solution reports of a record but the solver never looks at: a .solv cache keeps
/// these in a file of its own, so that a warm load reads only what solving needs (a third of
/// the data, on 300k records) and the few hundred solved records are looked up afterwards.
struct RecordMeta {
  std::string location;  // solvable_get_location: "<subdir>/<fn>"
  std::string subdir;
  std::string md5;
  std::string sha256;
  std::string license;
  uint64_t size = 0;
  uint64_t buildtime = 0;  // seconds
};

bool is_meta_key(Id key) {
  return key == SOLVABLE_MEDIADIR || key == SOLVABLE_MEDIAFILE || key == SOLVABLE_MEDIANR ||
         key == SOLVABLE_PKGID || key == SOLVABLE_CHECKSUM || key == SOLVABLE_LICENSE ||
         key == SOLVABLE_DOWNLOADSIZE || key == SOLVABLE_BUILDTIME;
}

int keep_solving_keys(::Repo* repo, Repokey* key, void* data) {
  return is_meta_key(key->name) ? 0 : repo_write_stdkeyfilter(repo, key, data);
}

RecordMeta lookup_meta(::Solvable* s) {
  RecordMeta m;
  unsigned int medianr = 0;
  const char* location = solvable_get_location(s, &medianr);
  m.location = location ? location : "";
  const char* subdir = solvable_lookup_str(s, SOLVABLE_MEDIADIR);
  m.subdir = subdir ? subdir : "";
  Id type = 0;
  const char* md5 = solvable_lookup_checksum(s, SOLVABLE_PKGID, &type);
  m.md5 = md5 ? md5 : "";
  const char* sha256 = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
  m.sha256 = sha256 ? sha256 : "";
  const char* license = solvable_lookup_str(s, SOLVABLE_LICENSE);
  m.license = license ? license : "";
  m.size = solvable_lookup_num(s, SOLVABLE_DOWNLOADSIZE, 0);
  m.buildtime = solvable_lookup_num(s, SOLVABLE_BUILDTIME, 0);
  return m;
}

// <solv>.meta: the magic, the record count n (u64), n + 1 offsets (u64, from the start of the
// entries), then per record its fields, each ended by a NUL, numbers in decimal.
std::string encode_meta(const RecordMeta& m) {
  std::string e;
  for (const std::string* f : {&m.location, &m.subdir, &m.md5, &m.sha256, &m.license}) {
    e += *f;
    e += '\0';
  }
  e += std::to_string(m.size);
  e += '\0';
  e += std::to_string(m.buildtime);
  e += '\0';
  return e;
}

std::optional<RecordMeta> decode_meta(std::string_view e) {
  std::vector<std::string_view> f;
  for (size_t at = 0; at < e.size();) {
    size_t end = e.find('\0', at);
    if (end == std::string_view::npos) return std::nullopt;
    f.push_back(e.substr(at, end - at));
    at = end + 1;
  }
  if (f.size() != 7) return std::nullopt;
  RecordMeta m{std::string(f[0]), std::string(f[1]), std::string(f[2]), std::string(f[3]),
               std::string(f[4])};
  m.size = std::strtoull(std::string(f[5]).c_str(), nullptr, 10);
  m.buildtime = std::strtoull(std::string(f[6]).c_str(), nullptr, 10);
  return m;
}

bool read_exact(int fd, void* out, size_t n, uint64_t at) {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, static_cast<off_t>(at));
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    at += static_cast<uint64_t>(got);
  }
  return true;
}

/// A <solv>.meta opened for lookups by record index.
class MetaFile {
 public:
  static std::optional<MetaFile> open(const std::filesystem::path& path) {
    MetaFile f;
    f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd_ < 0) return std::nullopt;
    std::string magic(kMetaMagic.size(), '\0');
    uint64_t count = 0;
    if (!read_exact(f.fd_, magic.data(), magic.size(), 0) || magic != kMetaMagic ||
        !read_exact(f.fd_, &count, sizeof count, magic.size()) || count > (uint64_t{1} << 32))
      return std::nullopt;
    // Whole: exactly as long as its last offset says (a full disk or a copy cut short can leave
    // it short; then the JSON is parsed again rather than the solve failing at its end).
    const uint64_t entries_at = kMetaMagic.size() + (count + 2) * sizeof(uint64_t);
    uint64_t end = 0;
    struct stat st {};
    if (!read_exact(f.fd_, &end, sizeof end, entries_at - sizeof(uint64_t)) ||
        ::fstat(f.fd_, &st) != 0 || end > static_cast<uint64_t>(st.st_size) ||
        static_cast<uint64_t>(st.st_size) != entries_at + end)
      return std::nullopt;
    f.count_ = count;
    return f;
  }
  MetaFile(MetaFile&& o) noexcept : fd_(std::exchange(o.fd_, -1)), count_(o.count_) {}
  MetaFile& operator=(MetaFile&&) = delete;
  MetaFile(const MetaFile&) = delete;
  MetaFile& operator=(const MetaFile&) = delete;
  ~MetaFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] uint64_t count() const { return count_; }
  std::optional<RecordMeta> get(uint64_t index) const {
    if (index >= count_) return std::nullopt;
    const uint64_t offsets_at = kMetaMagic.size() + sizeof(uint64_t);
    uint64_t range[2];
    if (!read_exact(fd_, range, sizeof range, offsets_at + index * sizeof(uint64_t)) ||
        range[1] < range[0] || range[1] - range[0] > (uint64_t{1} << 24))
      return std::nullopt;
    std::string entry(range[1] - range[0], '\0');
    const uint64_t entries_at = offsets_at + (count_ + 1) * sizeof(uint64_t);
    if (!read_exact(fd_, entry.data(), entry.size(), entries_at + range[0])) return std::nullopt;
    return decode_meta(entry);
  }

 private:
  MetaFile() = default;
  int fd_ = -1;
  uint64_t count_ = 0;
};

std::filesystem::path meta_path_for(const std::filesystem::path& solv) {
  return solv.string() + ".meta";
}

/// SAX handler that reads the top-level "info" object and stops at its end.
class InfoSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool done = false;  // the whole "info" object was seen
  std::string base_url;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool string(string_t& value) override {
    if (depth_ == 2 && in_info_ && key_ == "base_url") base_url = value;
    return true;
  }
  bool start_object(std::size_t) override {
    ++depth_;
    if (depth_ == 2 && top_key_ == "info") in_info_ = true;
    return true;
  }
  bool end_object() override {
    if (depth_ == 2 && in_info_) {
      done = true;
      return false;  // nothing else is needed: stop the parse here
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) top_key_ = k;
    if (depth_ == 2) key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  int depth_ = 0;
  bool in_info_ = false;
  std::string top_key_, key_;
};

/// CEP 15: `info.base_url` of a repodata.json, or "" when it has none. Writers put "info" first
/// (conda-index, conda-forge, rattler), so the first 256 KiB nearly always answer; otherwise a
/// byte scan decides whether the whole document must be read.
Result<std::string> read_base_url(const std::filesystem::path& path) {
  std::unique_ptr<FILE, FileClose> fp(std::fopen(path.c_str(), "r"));
  if (!fp) return common::errno_error("open", path.string(), errno);
  std::string head(size_t{256} << 10, '\0');
  head.resize(std::fread(head.data(), 1, head.size(), fp.get()));
  InfoSax sax;
  nlohmann::json::sax_parse(head, &sax, nlohmann::json::input_format_t::json, false);
  if (sax.done || std::feof(fp.get())) return sax.base_url;
  // "info" is not at the start: look for the key anywhere before parsing everything.
  constexpr std::string_view kNeedle = "\"base_url\"";
  std::string buf = head;
  bool found = buf.find(kNeedle) != std::string::npos;
  std::vector<char> chunk(size_t{1} << 20);
  while (!found) {
    size_t n = std::fread(chunk.data(), 1, chunk.size(), fp.get());
    if (n == 0) break;
    buf.erase(0, buf.size() > kNeedle.size() ? buf.size() - kNeedle.size() : 0);
    buf.append(chunk.data(), n);
    found = buf.find(kNeedle) != std::string::npos;
  }
  if (!found) return std::string();
  std::rewind(fp.get());
  InfoSax full;
  nlohmann::json::sax_parse(fp.get(), &full, nlohmann::json::input_format_t::json, false);
  return full.base_url;
}
/// read_base_url() of a document in memory.
Result<std::string> base_url_of(std::string_view text) {
  InfoSax sax;
  nlohmann::json::sax_parse(text.substr(0, size_t{256} << 10), &sax,
                            nlohmann::json::input_format_t::json, false);
  if (sax.done || text.size() <= (size_t{256} << 10) ||
      text.find("\"base_url\"") == std::string_view::npos)
    return sax.base_url;
  InfoSax full;
  nlohmann::json::sax_parse(text, &full, nlohmann::json::input_format_t::json, false);
  return full.base_url;
}

// libsolv 0.7.23's parse_info() walks into whatever the top-level "info" object holds without
// skipping it, and compares the key of an array element (NULL) with strcmp: a repodata.json whose
// "info" holds an array crashes it (found by tests/fuzz/repodata_fuzz). One pass over the bytes,
// no parse: true when the top-level "info" value contains '[' outside strings.
/// Whether a JSON key as written (escapes and all) reads "info", as libsolv decodes it.
bool key_is_info(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos) return raw == "info";
  auto decoded = common::parse_json("\"" + std::string(raw) + "\"", "a repodata key");
  return decoded && decoded->is_string() && decoded->get_ref<const std::string&>() == "info";
}

bool info_holds_an_array(std::string_view json) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  size_t string_start = 0;
  std::string_view last_key;
  int info_depth = -1;  // depth inside a top-level "info" value, negative outside it
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
        last_key = json.substr(string_start, i - string_start);
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        string_start = i + 1;
        break;
      case ':':
        if (depth == 1 && info_depth < 0 && key_is_info(last_key)) info_depth = 0;
        break;
      case '{':
        ++depth;
        if (info_depth >= 0) ++info_depth;
        break;
      case '[':
        if (info_depth > 0) return true;
        ++depth;
        break;
      case '}':
      case ']':
        --depth;
        if (info_depth > 0 && --info_depth == 0) {
          // Done with this "info". libsolv reads every top-level "info" key, so only a second
          // one could still hold an array: where the text "info" appears nowhere after it (the
          // usual case, "info" written first), the scan stops here instead of walking the
          // whole document byte by byte (a sixth of a cold load's CPU time on 158 MB). A key
          // may also spell "info" with escapes ("\u0069nfo", which libsolv decodes): where any
          // backslash follows, the scan goes on.
          constexpr std::string_view kInfo = "\"info\"";
          if (!::memmem(json.data() + i, json.size() - i, kInfo.data(), kInfo.size()) &&
              !std::memchr(json.data() + i, '\\', json.size() - i))
            return false;
          info_depth = -2;
        }
        break;
      default:
        break;
    }
  }
  return false;
}

// info_holds_an_array() over a file, mapped rather than read (repodata can be hundreds of MB).
bool file_info_holds_an_array(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // the caller's fopen reports it
  struct stat st {};
  bool found = false;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      found = info_holds_an_array(
          std::string_view(static_cast<const char*>(map), static_cast<size_t>(st.st_size)));
      ::munmap(map, static_cast<size_t>(st.st_size));
    }
  }
  ::close(fd);
  return found;
}

/// The pool's `considered` map for one solve: set while it lives, cleared after.
class ConsideredMap {
 public:
  explicit ConsideredMap(::Pool* pool) : pool_(pool) { map_init(&map_, pool->nsolvables); }
  ~ConsideredMap() {
    if (pool_->considered == &map_) pool_->considered = nullptr;
    map_free(&map_);
  }
  ConsideredMap(const ConsideredMap&) = delete;
  ConsideredMap& operator=(const ConsideredMap&) = delete;
  ::Map* map() { return &map_; }
  void activate() { pool_->considered = &map_; }

 private:
  ::Pool* pool_;
  ::Map map_;
};

/// A spec of a solve job, as libsolv reads it.
struct Request {
  Id dep = 0;
  std::string channel;  // "channel::spec": only that channel's records
  Id name = 0;          // the package name the spec is for; 0 for a name pattern
};

enum class Narrow : bool { No, Yes };
enum class Explain : bool { No, Yes };

/// One run of libsolv over a job.
struct Attempt {
  bool ok = false;
  size_t dropped = 0;                // records left out as uninstallable before solving
  std::vector<Id> installed;         // when solved: the chosen records, virtual ones too
  std::optional<Conflict> conflict;  // when not solved and asked to explain it
  [[nodiscard]] bool solved() const { return ok; }
};

bool channel_matches(const RepoInfo& info, const std::string& channel) {
  return info.channel == channel || info.base_url == channel ||
         info.base_url.ends_with("/" + channel);
}

/// For each request with a name, the channel priority and version its package has among
/// `installed` (0, 0 when absent).
std::vector<std::pair<int, Id>> requested_versions(::Pool* pool,
                                                   const std::vector<Request>& requests,
                                                   const std::vector<Id>& installed) {
  std::vector<std::pair<int, Id>> out;
  for (const Request& r : requests) {
    std::pair<int, Id> got{0, 0};
    for (Id id : installed) {
      const ::Solvable* s = pool_id2solvable(pool, id);
      if (r.name && s->name == r.name) got = {s->repo->priority, s->evr};
    }
    out.push_back(got);
  }
  return out;
}

}  // namespace

std::string libsolv_version() {
  return solv_version;
}

struct Pool::Impl {
  std::unique_ptr<::Pool, PoolFree> pool;
  ::Repo* virtual_repo = nullptr;  // owned by the pool
  std::vector<::Repo*> repos;      // RepoId.value indexes this; owned by the pool
  std::map<::Repo*, RepoInfo> infos;
  std::map<::Repo*, std::string> base_urls;             // CEP 15 info.base_url as written, when set
  std::map<::Repo*, std::filesystem::path> meta_files;  // .solv repos with records' meta aside
  SolvePhases phases;

  Result<std::vector<Request>> parse_requests(const SolveJob& job) const;
  /// One libsolv solve of `requests` over the records they reach, less those carrying one of
  /// the `excluded` track features. Narrow::Yes first drops the records no solution can hold.
  /// A failure is worded (solver_problem2str) when asked to and when it is the final word:
  /// nothing was dropped, whose absence could explain it.
  Attempt try_solve(const std::vector<Request>& requests, bool strict, Narrow narrow,
                    const std::set<Id>& excluded, Explain explain);
  std::vector<Id> with_fewer_features(const std::vector<Request>& requests, bool strict,
                                      std::vector<Id> installed);
  Conflict conflict_of(::Solver* solver) const;
  Result<std::vector<SolvedRecord>> records_of(const std::vector<Id>& installed) const;

  /// Reads repodata.json from `fp` into a new repo; `text` gives the document again when
  /// libsolv refuses a record's subdir (then read without info.subdir), `base_url` its CEP 15
  /// base URL.
  Result<RepoId> add_json_repo(const RepoInfo& info, FILE* fp, const std::string& what,
                               const std::function<Result<std::string>()>& text,
                               const std::function<Result<std::string>()>& base_url) {
    ::Repo* repo = repo_create(pool.get(), (info.channel + "/" + info.subdir).c_str());
    repo->priority = info.priority;
    repo->subpriority = info.subpriority;
    int rc = repo_add_conda(repo, fp, 0);
    if (rc != 0 && std::string_view(pool_errstr(pool.get())).ends_with("subdir mismatch")) {
      // libsolv refuses records whose "subdir" differs from info.subdir (noarch records listed
      // in linux-64/, as some mirrors and subsets do). Drop info.subdir and read it again; the
      // .solv cache makes this a one-time cost.
      repo_empty(repo, 1);
      auto again = without_info_subdir(text, what);
      if (!again) {
        repo_free(repo, 1);
        return std::move(again).error();
      }
      auto mem = for_libsolv(fmemopen(again->data(), again->size(), "r"));
      rc = mem ? repo_add_conda(repo, mem.get(), 0) : -1;
    }
    if (rc != 0) {
      std::string why = pool_errstr(pool.get());
      repo_free(repo, 1);
      return fail(Errc::InvalidInput, "parsing repodata " + what + ": " + why);
    }
    repo_internalize(repo);
    internal::rank_ties_by_timestamp(repo);
    auto url = base_url();
    if (!url) {
      repo_free(repo, 1);
      return std::move(url).error();
    }
    if (!url->empty()) {
      // Kept in a repodata of its own so that repo_write puts it into the .solv.
      Repodata* meta = repo_add_repodata(repo, 0);
      repodata_set_str(meta, SOLVID_META, pool_str2id(pool.get(), kBaseUrlKey, 1), url->c_str());
      repodata_internalize(meta);
      base_urls[repo] = *url;
    }
    return registered(repo, info);
  }

  static Result<std::string> without_info_subdir(
      const std::function<Result<std::string>()>& text, const std::string& what) {
    auto whole = text();
    if (!whole) return std::move(whole).error();
    auto doc = common::parse_json(*whole, "parsing repodata " + what);
    if (!doc) return std::move(doc).error();
    if (doc->contains("info") && (*doc)["info"].is_object()) (*doc)["info"].erase("subdir");
    return doc->dump();
  }

  RepoId registered(::Repo* repo, const RepoInfo& info) {
    repos.push_back(repo);
    infos[repo] = info;
    return RepoId{static_cast<int>(repos.size() - 1)};
  }

  Result<RepoId> add_json_file(const RepoInfo& info, const std::filesystem::path& path) {
    auto fp = for_libsolv(std::fopen(path.c_str(), "r"));
    if (!fp) return fail(Errc::NotFound, "open(" + path.string() + "): no such repodata file");
    if (file_info_holds_an_array(path))
      return fail(Errc::InvalidInput,
                  "parsing repodata " + path.string() + ": \"info\" holds an array")
          .with_hint("\"info\" may only hold strings, numbers and objects (e.g. subdir, base_url)");
    return add_json_repo(
        info, fp.get(), path.string(),
        [&] { return common::read_file(path, size_t{4} << 30); },
        [&] { return read_base_url(path); });
  }

  Result<RepoId> add_json_text(const RepoInfo& info, std::string text, const std::string& what) {
    if (info_holds_an_array(text))
      return fail(Errc::InvalidInput, "parsing repodata " + what + ": \"info\" holds an array")
          .with_hint("\"info\" may only hold strings, numbers and objects (e.g. subdir, base_url)");
    auto fp = for_libsolv(fmemopen(text.data(), text.size(), "r"));
    if (!fp) return fail(Errc::Internal, "fmemopen failed for repodata " + what);
    return add_json_repo(
        info, fp.get(), what, [&]() -> Result<std::string> { return text; },
        [&] { return base_url_of(text); });
  }

  Result<RepoId> add_solv_file(const RepoInfo& info, const std::filesystem::path& path) {
    auto fp = for_libsolv(std::fopen(path.c_str(), "r"));
    if (!fp) return fail(Errc::NotFound, "open(" + path.string() + "): no such repodata file");
    ::Repo* repo = repo_create(pool.get(), (info.channel + "/" + info.subdir).c_str());
    repo->priority = info.priority;
    repo->subpriority = info.subpriority;
    if (repo_add_solv(repo, fp.get(), 0) != 0) {
      std::string why = pool_errstr(pool.get());
      repo_free(repo, 1);
      return fail(Errc::InvalidInput, "reading .solv " + path.string() + ": " + why);
    }
    if (const char* base_url =
            repo_lookup_str(repo, SOLVID_META, pool_str2id(pool.get(), kBaseUrlKey, 1)))
      base_urls[repo] = base_url;
    if (repo_lookup_str(repo, SOLVID_META, pool_str2id(pool.get(), kMetaAsideKey, 1))) {
      // The records' meta must be there, for every record and in order: else the cache is
      // damaged and the caller reads the JSON again.
      auto meta = MetaFile::open(meta_path_for(path));
      if (!meta || meta->count() != static_cast<uint64_t>(repo->nsolvables) ||
          repo->end - repo->start != repo->nsolvables) {
        repo_free(repo, 1);
        return fail(Errc::InvalidInput,
                    "reading .solv " + path.string() + ": its records' meta file is missing");
      }
      meta_files[repo] = meta_path_for(path);
    }
    return registered(repo, info);
  }
};

Pool::Pool() : impl_(std::make_unique<Impl>()) {
  impl_->pool.reset(pool_create());
  ENVB_CHECK(impl_->pool != nullptr);
  pool_setdisttype(impl_->pool.get(), DISTTYPE_CONDA);
  // Conda solvables carry no arch: setting one (e.g. "noarch") makes every job resolve to nothing.
}
Pool::~Pool() = default;
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;

Result<void> Pool::add_repodata_json(const std::string& name, const std::string& json,
                                     int priority) {
  if (info_holds_an_array(json))
    return fail(Errc::InvalidInput, "repodata of " + name + ": \"info\" holds an array")
        .with_hint("\"info\" may only hold strings, numbers and objects (e.g. subdir, base_url)");
  auto fp = for_libsolv(fmemopen(const_cast<char*>(json.data()), json.size(), "r"));
  if (!fp) return fail(Errc::Internal, "fmemopen failed for repodata of " + name);
  ::Repo* repo = repo_create(impl_->pool.get(), name.c_str());
  repo->priority = priority;
  if (repo_add_conda(repo, fp.get(), 0) != 0) {
    std::string why = pool_errstr(impl_->pool.get());
    repo_free(repo, 1);
    return fail(Errc::InvalidInput, "repodata of " + name + ": " + why);
  }
  repo_internalize(repo);
  internal::rank_ties_by_timestamp(repo);
  impl_->repos.push_back(repo);
  impl_->infos[repo] = RepoInfo{name, "", "", priority, 0};
  return ok();
}

Result<void> Pool::add_repodata_file(const std::string& name, const std::string& path,
                                     int priority) {
  auto id = impl_->add_json_file(RepoInfo{name, "", "", priority, 0}, path);
  if (!id) return std::move(id).error();
  // Keep the legacy repo name (tests compare it).
  ::Repo* repo = impl_->repos[id->value];
  solv_free(const_cast<char*>(repo->name));  // repo_create strdup'ed the first name
  repo->name = solv_strdup(name.c_str());
  return ok();
}

Result<RepoId> Pool::add_repo_json_file(const RepoInfo& info, const std::filesystem::path& path) {
  return impl_->add_json_file(info, path);
}

Result<RepoId> Pool::add_repo_json_text(const RepoInfo& info, std::string text,
                                        const std::string& what) {
  return impl_->add_json_text(info, std::move(text), what);
}

Result<RepoId> Pool::add_repo_solv_file(const RepoInfo& info, const std::filesystem::path& path) {
  return impl_->add_solv_file(info, path);
}

void Pool::remove_repo(RepoId repo) {
  if (repo.value < 0 || repo.value >= static_cast<int>(impl_->repos.size())) return;
  ::Repo*& r = impl_->repos[repo.value];
  if (!r) return;
  impl_->infos.erase(r);
  impl_->base_urls.erase(r);
  impl_->meta_files.erase(r);
  repo_free(r, 1);
  r = nullptr;
}

size_t Pool::repo_size(RepoId repo) const {
  if (repo.value < 0 || repo.value >= static_cast<int>(impl_->repos.size()) ||
      !impl_->repos[repo.value])
    return 0;
  return static_cast<size_t>(impl_->repos[repo.value]->nsolvables);
}

std::filesystem::path Pool::meta_path_of(const std::filesystem::path& solv) {
  return meta_path_for(solv);
}

Result<void> Pool::write_repo_solv(RepoId repo, const std::filesystem::path& path,
                                   Sync sync) const {
  if (repo.value < 0 || repo.value >= static_cast<int>(impl_->repos.size()) ||
      !impl_->repos[repo.value])
    return fail(Errc::Internal, "write_repo_solv: bad repo id");
  ENVB_ASSIGN_OR_RETURN(auto file, common::AtomicFile::create(path));
  int fd = ::dup(file.fd().get());
  if (fd < 0) return common::errno_error("dup", path.string(), errno);
  auto fp = for_libsolv(fdopen(fd, "w"));
  if (!fp) {
    ::close(fd);
    return common::errno_error("fdopen", path.string(), errno);
  }
  ::Repo* r = impl_->repos[repo.value];
  // Records' result-only fields go aside (RecordMeta) where the repo's records are one run of
  // solvable ids, as after repo_add_conda: the .solv then keeps what solving reads.
  const bool aside =
      r->nsolvables > 0 && r->end - r->start == r->nsolvables && !impl_->meta_files.contains(r);
  if (aside) {
    const auto meta_path = meta_path_for(path);
    ENVB_ASSIGN_OR_RETURN(auto meta, common::AtomicFile::create(meta_path));
    std::string entries;
    std::vector<uint64_t> offsets{0};
    for (Id p = r->start; p < r->end; ++p) {
      entries += encode_meta(lookup_meta(pool_id2solvable(impl_->pool.get(), p)));
      offsets.push_back(entries.size());
    }
    const uint64_t count = offsets.size() - 1;
    std::string head(kMetaMagic);
    head.append(reinterpret_cast<const char*>(&count), sizeof count);
    head.append(reinterpret_cast<const char*>(offsets.data()), offsets.size() * sizeof(uint64_t));
    ENVB_TRY(meta.write(head));
    ENVB_TRY(meta.write(entries));
    ENVB_TRY(sync == Sync::Now ? meta.commit() : meta.commit_unsynced());
    Repodata* marker = repo_add_repodata(r, 0);
    repodata_set_str(marker, SOLVID_META, pool_str2id(impl_->pool.get(), kMetaAsideKey, 1), "1");
    repodata_internalize(marker);
  }
  const int rc = aside ? repo_write_filtered(r, fp.get(), keep_solving_keys, nullptr, nullptr)
                       : repo_write(r, fp.get());
  if (rc != 0)
    return fail(Errc::Io, "repo_write(" + path.string() + "): " + pool_errstr(impl_->pool.get()));
  if (std::fflush(fp.get()) != 0) return common::errno_error("fflush", path.string(), errno);
  fp.reset();
  return sync == Sync::Now ? file.commit() : file.commit_unsynced();
}

void Pool::add_virtual_package(const std::string& name, const std::string& version,
                               const std::string& build) {
  ::Pool* pool = impl_->pool.get();
  if (!impl_->virtual_repo) {
    // Not the pool's installed repo: with an installed repo, libsolv's choice rules look up
    // every provider of every candidate's name for each dependency (over half of a large
    // solve). solve_records installs each virtual package by a job instead, which keeps them
    // present just the same. Above every channel, so strict priority never rules one out.
    impl_->virtual_repo = repo_create(pool, "__virtual__");
    impl_->virtual_repo->priority = std::numeric_limits<int>::max();
  }
  ::Repo* repo = impl_->virtual_repo;
  Id id = repo_add_solvable(repo);
  ::Solvable* s = pool_id2solvable(pool, id);
  s->name = pool_str2id(pool, name.c_str(), 1);
  s->evr = pool_str2id(pool, version.c_str(), 1);
  repodata_set_str(repo_last_repodata(repo), id, SOLVABLE_BUILDFLAVOR, build.c_str());
  s->dep_provides =
      repo_addid_dep(repo, s->dep_provides, pool_rel2id(pool, s->name, s->evr, REL_EQ, 1), 0);
  repo_internalize(repo);
}

Result<SolveOutcome> Pool::solve(const std::vector<std::string>& specs) {
  ENVB_ASSIGN_OR_RETURN(RecordOutcome outcome, solve_records(SolveJob{specs, false}));
  if (auto* conflict = std::get_if<Conflict>(&outcome)) return SolveOutcome(std::move(*conflict));
  std::vector<SolvedPackage> out;
  for (const SolvedRecord& r : std::get<std::vector<SolvedRecord>>(outcome)) {
    out.push_back(SolvedPackage{r.name, r.version, r.build, r.channel});
  }
  std::sort(out.begin(), out.end());
  return SolveOutcome(std::move(out));
}

const SolvePhases& Pool::last_phases() const {
  return impl_->phases;
}

Result<std::vector<Request>> Pool::Impl::parse_requests(const SolveJob& job) const {
  std::vector<Request> requests;
  for (const std::string& full : job.specs) {
    std::string spec = full;
    std::string channel;
    if (size_t sep = spec.find("::"); sep != std::string::npos) {
      channel = spec.substr(0, sep);
      spec = spec.substr(sep + 2);
      while (!channel.empty() && channel.back() == '/') channel.pop_back();
    }
    Id dep = pool_conda_matchspec(pool.get(), spec.c_str());
    if (!dep) return fail(Errc::InvalidInput, "bad match spec '" + full + "'");
    if (!channel.empty() && std::none_of(infos.begin(), infos.end(), [&](const auto& kv) {
          return channel_matches(kv.second, channel);
        }))
      return fail(Errc::InvalidInput, "match spec '" + full + "': channel '" + channel +
                                          "' is not one of the environment's channels");
    // pool_conda_matchspec gives a name, or REL_CONDA(name, "version build").
    Id name = dep;
    if (ISRELDEP(name)) {
      const ::Reldep* rd = GETRELDEP(pool.get(), name);
      name = rd->flags == REL_CONDA && !ISRELDEP(rd->name) ? rd->name : 0;
    }
    requests.push_back(Request{dep, std::move(channel), name});
  }
  return requests;
}

Attempt Pool::Impl::try_solve(const std::vector<Request>& requests, bool strict, Narrow narrow,
                              const std::set<Id>& excluded, Explain explain) {
  using common::Clock;
  const auto since = common::ms_since;
  const auto prepare_start = Clock::now();
  ::Pool* p = pool.get();
  Attempt out;
  // Only the records a solve can reach take part: libsolv itself never looks past them, but
  // pool_createwhatprovides indexes every record of every channel first.
  std::vector<Id> roots;
  for (const Request& r : requests) roots.push_back(r.dep);
  ConsideredMap considered(p);
  bool reachable = internal::mark_reachable_names(p, roots, virtual_repo, considered.map());
  if (!excluded.empty()) {
    if (!reachable) map_setall(considered.map());
    internal::exclude_featured(p, excluded, considered.map());
    reachable = true;
  }
  if (reachable) considered.activate();
  // No pool_addfileprovides: conda records have no file dependencies, and it walks every
  // dependency of every record (a tenth of a second on 300k records) for nothing.
  pool_createwhatprovides(p);
  auto candidates_of = [&](const Request& r) {
    std::vector<Id> found;
    for (Id* c = pool_whatprovides_ptr(p, r.dep); *c; ++c) {
      auto it = infos.find(pool_id2solvable(p, *c)->repo);
      if (r.channel.empty() || (it != infos.end() && channel_matches(it->second, r.channel)))
        found.push_back(*c);
    }
    return found;
  };
  if (narrow == Narrow::Yes && reachable) {
    internal::work_out_version_providers(p, considered.map());
    std::vector<internal::RootChoice> choices;
    for (const Request& r : requests) {
      if (!r.name) continue;
      std::vector<Id> allowed = candidates_of(r);
      std::sort(allowed.begin(), allowed.end());
      choices.push_back(internal::RootChoice{r.name, std::move(allowed), !r.channel.empty()});
    }
    out.dropped = internal::drop_uninstallable(p, choices, strict, virtual_repo, considered.map());
    std::vector<Id> chosen;
    for (const Request& r : requests) {
      const std::vector<Id> found = candidates_of(r);
      chosen.insert(chosen.end(), found.begin(), found.end());
    }
    out.dropped += internal::drop_unrequired(p, chosen, virtual_repo, considered.map());
    out.dropped += internal::drop_equivalent_builds(p, roots, virtual_repo, considered.map());
    if (out.dropped) {
      const internal::KnownRelProviders known = internal::known_rel_providers(p);
      pool_createwhatprovides(p);
      internal::restore_rel_providers(p, known, considered.map());
    }
  }
  const bool final_word = explain == Explain::Yes && (narrow == Narrow::No || out.dropped == 0);

  Queue jobs;
  if (::Repo* vrepo = virtual_repo) {
    // Virtual packages are what the target has: always present, so a `constrains` on one
    // applies even when nothing requires it, and no other build of the name can come in.
    for (Id v = vrepo->start; v < vrepo->end; ++v)
      if (pool_id2solvable(p, v)->repo == vrepo) jobs.push2(SOLVER_INSTALL | SOLVER_SOLVABLE, v);
  }
  for (const Request& r : requests) {
    if (r.channel.empty()) {
      jobs.push2(SOLVER_INSTALL | SOLVER_SOLVABLE_PROVIDES, r.dep);
      continue;
    }
    Queue candidates;
    for (Id c : candidates_of(r)) candidates.push(c);
    // libsolv takes "install one of nothing" as done: say it instead (or, narrowed, see
    // whether the whole pool has one).
    if (candidates.size() == 0) {
      if (final_word)
        out.conflict = Conflict{
            {"nothing in channel " + r.channel + " provides requested " + pool_dep2str(p, r.dep)},
            {}};
      phases.prepare_ms += since(prepare_start);
      return out;
    }
    Id what = pool_queuetowhatprovides(p, candidates.raw());
    // SETREPO: a spec naming its channel overrides strict priority for its name (as in
    // conda): the rules that keep the name to the best channel are off for this job.
    jobs.push2(SOLVER_INSTALL | SOLVER_SOLVABLE_ONE_OF | SOLVER_SETREPO, what);
  }

  // The flags mamba/conda-libmamba-solver use for a new environment: downgrades allowed,
  // channel priority as asked. Nothing is installed (virtual packages come in by jobs), so
  // SOLVER_FLAG_ALLOW_UNINSTALL has nothing to act on and stays off.
  std::unique_ptr<::Solver, SolverFree> solver(solver_create(p));
  solver_set_flag(solver.get(), SOLVER_FLAG_ALLOW_DOWNGRADE, 1);
  solver_set_flag(solver.get(), SOLVER_FLAG_STRICT_REPO_PRIORITY, strict ? 1 : 0);
  phases.prepare_ms += since(prepare_start);
  const auto solver_start = Clock::now();
  out.ok = solver_solve(solver.get(), jobs.raw()) == 0;
  if (out.ok) {
    std::unique_ptr<::Transaction, TransactionFree> trans(solver_create_transaction(solver.get()));
    Queue installed;
    transaction_installedresult(trans.get(), installed.raw());
    for (int i = 0; i < installed.size(); ++i) out.installed.push_back(installed[i]);
  } else if (final_word) {
    out.conflict = conflict_of(solver.get());
  }
  phases.solver_ms += since(solver_start);
  return out;
}

std::vector<Id> Pool::Impl::with_fewer_features(const std::vector<Request>& requests, bool strict,
                                                std::vector<Id> installed) {
  ::Pool* p = pool.get();
  std::set<Id> features = internal::track_features_of(p, installed);
  if (features.empty()) return installed;  // the usual case: nothing to minimize
  // All of them first, then each alone: a handful at most (mkl/nomkl, blas variants, R's
  // anacondar), and each try is one more solve.
  std::vector<std::set<Id>> tries{features};
  if (features.size() > 1)
    for (Id f : features) tries.push_back({f});
  const auto wanted = requested_versions(p, requests, installed);
  for (const std::set<Id>& excluded : tries) {
    Attempt alt = try_solve(requests, strict, Narrow::Yes, excluded, Explain::No);
    if (alt.solved() && requested_versions(p, requests, alt.installed) == wanted &&
        internal::track_features_of(p, alt.installed).size() < features.size())
      return std::move(alt.installed);
  }
  return installed;
}

Conflict Pool::Impl::conflict_of(::Solver* solver) const {
  Conflict conflict;
  int count = solver_problem_count(solver);
  for (Id problem = 1; problem <= count; ++problem) {
    conflict.problems.emplace_back(solver_problem2str(solver, problem));
    Queue rules;
    solver_findallproblemrules(solver, problem, rules.raw());
    std::vector<std::string> details;
    std::set<std::string> seen;
    for (int i = 0; i < rules.size(); ++i) {
      Id source = 0, target = 0, dep = 0;
      SolverRuleinfo type = solver_ruleinfo(solver, rules[i], &source, &target, &dep);
      std::string text = solver_problemruleinfo2str(solver, type, source, target, dep);
      if (seen.insert(text).second) details.push_back(std::move(text));
    }
    conflict.details.push_back(std::move(details));
  }
  return conflict;
}

Result<std::vector<SolvedRecord>> Pool::Impl::records_of(const std::vector<Id>& installed) const {
  ::Pool* p = pool.get();
  std::vector<SolvedRecord> out;
  std::map<::Repo*, MetaFile> meta_open;
  for (Id id : installed) {
    ::Solvable* s = pool_id2solvable(p, id);
    if (s->repo == virtual_repo) continue;
    SolvedRecord r;
    r.name = pool_id2str(p, s->name);
    r.version = pool_id2str(p, s->evr);
    r.build = str_or_empty(solvable_lookup_str(s, SOLVABLE_BUILDFLAVOR));
    // "<number>.<timestamp>" where rank_ties_by_timestamp ranked the record: the number is
    // what comes before the dot.
    r.build_number = std::strtoull(
        str_or_empty(solvable_lookup_str(s, SOLVABLE_BUILDVERSION)).c_str(), nullptr, 10);
    RecordMeta meta;
    if (auto aside = meta_files.find(s->repo); aside != meta_files.end()) {
      auto file = meta_open.find(s->repo);
      if (file == meta_open.end()) {
        auto opened = MetaFile::open(aside->second);
        if (!opened)
          return fail(Errc::Io, "reading " + aside->second.string() + ": cannot open it");
        file = meta_open.emplace(s->repo, std::move(*opened)).first;
      }
      auto got = file->second.get(static_cast<uint64_t>(id - s->repo->start));
      if (!got) return fail(Errc::Io, "reading " + aside->second.string() + ": damaged");
      meta = std::move(*got);
    } else {
      meta = lookup_meta(s);
    }
    size_t slash = meta.location.rfind('/');
    r.fn = slash == std::string::npos ? meta.location : meta.location.substr(slash + 1);
    r.subdir = std::move(meta.subdir);
    r.md5 = std::move(meta.md5);
    r.sha256 = std::move(meta.sha256);
    r.size = meta.size;
    r.license = std::move(meta.license);
    r.timestamp = meta.buildtime * 1000;
    Queue q;
    solvable_lookup_deparray(s, SOLVABLE_REQUIRES, q.raw(), -1);
    for (int k = 0; k < q.size(); ++k) r.depends.emplace_back(pool_dep2str(p, q[k]));
    Queue c;
    solvable_lookup_deparray(s, SOLVABLE_CONSTRAINS, c.raw(), -1);
    for (int k = 0; k < c.size(); ++k) r.constrains.emplace_back(pool_dep2str(p, c[k]));
    // .solv files do not keep the order of dependency arrays: sort for stable output.
    std::sort(r.depends.begin(), r.depends.end());
    std::sort(r.constrains.begin(), r.constrains.end());
    Queue f;
    solvable_lookup_idarray(s, SOLVABLE_TRACK_FEATURES, f.raw());
    for (int k = 0; k < f.size(); ++k) r.track_features.emplace_back(pool_id2str(p, f[k]));
    if (auto it = infos.find(s->repo); it != infos.end()) {
      r.channel = it->second.channel;
      if (r.subdir.empty()) r.subdir = it->second.subdir;
      auto b = base_urls.find(s->repo);
      if (b != base_urls.end() && !it->second.base_url.empty()) {
        // CEP 15: packages live under info.base_url, relative to the repodata.json's URL.
        std::string dir = resolve_url(
            it->second.base_url + "/" + it->second.subdir + "/repodata.json", b->second);
        if (!dir.ends_with('/')) dir += '/';
        r.url = dir + r.fn;
      } else if (!it->second.base_url.empty()) {
        r.url = it->second.base_url + "/" + it->second.subdir + "/" + r.fn;
      }
    } else {
      r.channel = str_or_empty(s->repo->name);
    }
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const SolvedRecord& a, const SolvedRecord& b) { return a.name < b.name; });
  return out;
}

Result<RecordOutcome> Pool::solve_records(const SolveJob& job) {
  impl_->phases = {};
  ENVB_ASSIGN_OR_RETURN(std::vector<Request> requests, impl_->parse_requests(job));
  // The first try drops the records no solution can hold; when it fails, a second try with all
  // reachable records finds libsolv's explanation (the dropped records are what it talks about).
  const bool strict = job.strict_channel_priority;
  Attempt attempt = impl_->try_solve(requests, strict, Narrow::Yes, {}, Explain::Yes);
  if (!attempt.solved() && attempt.dropped > 0)
    attempt = impl_->try_solve(requests, strict, Narrow::No, {}, Explain::Yes);
  impl_->phases.dropped_records = attempt.dropped;
  if (!attempt.solved()) {
    ENVB_CHECK(attempt.conflict.has_value());
    return RecordOutcome(std::move(*attempt.conflict));
  }
  std::vector<Id> installed = impl_->with_fewer_features(requests, strict, attempt.installed);
  const auto result_start = common::Clock::now();
  ENVB_ASSIGN_OR_RETURN(std::vector<SolvedRecord> out, impl_->records_of(installed));
  impl_->phases.result_ms = common::ms_since(result_start);
  return RecordOutcome(std::move(out));
}

}  // namespace envbuild::builder::solv
