#include "oci/registry/client.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/json.hpp"
#include "common/parallel.hpp"
#include "common/url.hpp"
#include "oci/manifest.hpp"
#include "oci/media_type.hpp"

namespace envbuild::oci::registry {

namespace {

constexpr std::string_view kAcceptManifests =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string strip_params(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string out(content_type.substr(0, semi));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Reads at most `remaining` bytes of a source it does not own (one PATCH chunk).
class LimitedSource final : public common::ByteSource {
 public:
  LimitedSource(common::ByteSource& inner, int64_t limit) : inner_(inner), remaining_(limit) {}
  Result<size_t> read(std::span<std::byte> buffer) override {
    if (remaining_ <= 0) return size_t{0};
    auto n = std::min<int64_t>(remaining_, static_cast<int64_t>(buffer.size()));
    ENVB_ASSIGN_OR_RETURN(size_t got, inner_.read(buffer.first(static_cast<size_t>(n))));
    if (got == 0) return fail(Errc::Integrity, "blob ended early");
    remaining_ -= static_cast<int64_t>(got);
    return got;
  }

 private:
  common::ByteSource& inner_;
  int64_t remaining_;
};

// The sink of one (possibly resumed) blob download: `have` bytes are already in `next`; fails
// as soon as more than `limit` bytes in all arrive (a registry sending more than the descriptor
// says is not allowed to fill the disk); drops the first skip() bytes of the body (a server
// that answered a ranged GET with the whole blob).
class ResumeSink final : public common::ByteSink {
 public:
  ResumeSink(common::ByteSink& next, int64_t limit, int64_t have, std::string what)
      : next_(next), limit_(limit), total_(have), what_(std::move(what)) {}
  void skip(int64_t n) { skip_ = n; }
  Result<void> write(std::span<const std::byte> data) override {
    if (skip_ > 0) {
      auto n = static_cast<size_t>(std::min<int64_t>(skip_, static_cast<int64_t>(data.size())));
      skip_ -= static_cast<int64_t>(n);
      data = data.subspan(n);
      if (data.empty()) return ok();
    }
    total_ += static_cast<int64_t>(data.size());
    if (total_ > limit_)
      return fail(Errc::Integrity,
                  what_ + ": more than the expected " + std::to_string(limit_) + " bytes");
    return next_.write(data);
  }
  /// Bytes of the blob in `next` now.
  [[nodiscard]] int64_t total() const noexcept { return total_; }

 private:
  common::ByteSink& next_;
  int64_t limit_;
  int64_t total_;
  int64_t skip_ = 0;
  std::string what_;
};

// "bytes 100-199/200" -> 100.
std::optional<int64_t> range_start(const std::string& content_range) {
  if (!content_range.starts_with("bytes ")) return std::nullopt;
  char* end = nullptr;
  long long start = std::strtoll(content_range.c_str() + 6, &end, 10);
  if (end == content_range.c_str() + 6 || *end != '-') return std::nullopt;
  return start;
}

// A manifest reference becomes a URL path segment: only a tag or a digest, never "../x".
Result<void> check_manifest_reference(const std::string& reference) {
  if (is_valid_tag(reference) || Digest::parse(reference)) return ok();
  return fail(Errc::InvalidInput,
              "invalid manifest reference '" + reference + "' (a tag or a digest)");
}

// The target of `Link: <URL>; rel="next"` (RFC 8288, as the distribution spec paginates tag
// lists), or empty when there is no next page.
std::string next_page_link(std::string_view header) {
  constexpr auto npos = std::string_view::npos;
  for (;;) {
    auto open = header.find('<');
    auto close = open == npos ? npos : header.find('>', open);
    if (close == npos) return "";
    auto end = header.find(',', close);  // the next link-value
    std::string_view params = header.substr(close + 1, end == npos ? npos : end - close - 1);
    if (params.find("rel=\"next\"") != npos || params.find("rel=next") != npos)
      return std::string(header.substr(open + 1, close - open - 1));
    if (end == npos) return "";
    header.remove_prefix(end + 1);
  }
}

/// common::for_each_index() with one Repository per worker: the caller's thread (worker 0) uses
/// `repo`, whose connection is open already; each other worker its own fork, made on first use.
Result<void> for_each_parallel(Repository& repo, size_t count, size_t jobs,
                               const std::function<Result<void>(size_t, Repository&)>& task) {
  std::vector<std::optional<Repository>> forks(common::worker_count(count, jobs));
  return common::for_each_index(count, jobs, [&](size_t i, size_t worker) -> Result<void> {
    if (worker == 0) return task(i, repo);
    if (!forks[worker]) forks[worker].emplace(repo.fork());
    return task(i, *forks[worker]);
  });
}

std::vector<Descriptor> unique_blobs(const Manifest& m) {
  std::vector<Descriptor> out{m.config};
  std::set<Digest> seen{m.config.digest};
  for (const auto& l : m.layers)
    if (seen.insert(l.digest).second) out.push_back(l);
  return out;
}

void add_counters(TransferReport& report, const common::HttpCounters& c) {
  report.requests = c.requests;
  report.put_requests = c.put;
  report.patch_requests = c.patch;
  report.post_requests = c.post;
}

}  // namespace

Result<Repository> Repository::connect(const std::string& host, const std::string& name,
                                       Action action, const RegistryOptions& options) {
  if (host.empty() || name.empty())
    return fail(Errc::InvalidInput, "registry reference needs a host and a repository name");
  // Both end up in every URL: the grammar keeps them to one host and to paths under /v2/.
  if (!is_valid_registry_host(host))
    return fail(Errc::InvalidInput, "invalid registry host '" + host + "'");
  if (!is_valid_repository_name(name))
    return fail(Errc::InvalidInput, "invalid repository name '" + name + "'");
  for (const auto& from : options.mount_from)
    if (!is_valid_repository_name(from))
      return fail(Errc::InvalidInput, "invalid repository name '" + from + "' to mount from");
  Repository r;
  r.host_ = host;
  r.name_ = name;
  std::string endpoint = host == "docker.io" ? "registry-1.docker.io" : host;
  r.origin_ = "https://" + endpoint;
  RegistryOptions own = options;
  own.transport.use_netrc = false;  // registry credentials come from --creds or auth files only
  r.options_ = std::make_shared<const RegistryOptions>(std::move(own));
  std::optional<Credentials> creds = options.credentials;
  if (!creds && options.lookup_stored_credentials) {
    ENVB_ASSIGN_OR_RETURN(creds,
                          lookup_credentials(host).context("looking up credentials for " + host));
  }
  std::vector<std::string> scopes{"repository:" + name +
                                  (action == Action::Push ? ":pull,push" : ":pull")};
  for (const auto& from : options.mount_from)
    if (from != name) scopes.push_back("repository:" + from + ":pull");
  r.auth_ = std::make_shared<Authenticator>(std::move(creds), std::move(scopes));
  r.client_ = std::make_unique<common::HttpClient>(r.options_->transport);
  return r;
}

Repository Repository::fork() const {
  Repository r;
  r.host_ = host_;
  r.name_ = name_;
  r.origin_ = origin_;
  r.options_ = options_;
  r.auth_ = auth_;
  r.client_ = std::make_unique<common::HttpClient>(client_->options(), client_->counters());
  return r;
}

Result<std::string> Repository::resolve(const std::string& location) const {
  ENVB_ASSIGN_OR_RETURN(
      std::string url, common::resolve_url(origin_ + "/v2/" + name_ + "/blobs/uploads/", location));
  ENVB_TRY(common::url_origin(url).context("the registry's upload Location"));
  if (common::is_downgrade(origin_, url))
    return fail(Errc::Network, "the registry " + host_ + " (https) sends the upload to " +
                                   common::redact_url(url) +
                                   ": refusing to leave https for plain http");
  return url;
}

Result<common::HttpResponse> Repository::send(common::HttpRequest request) {
  // The registry's credentials and tokens are for its own origin (scheme, host and port): an
  // upload Location elsewhere (a storage back end, or a hostile registry's pick) gets the
  // request without them, and its 401 is not answered.
  const bool own_origin = common::same_origin(request.url, origin_);
  const size_t base_headers = request.headers.size();
  for (int attempt = 0;; ++attempt) {
    request.headers.resize(base_headers);
    std::string seen = auth_->header();
    if (own_origin && !seen.empty()) request.headers.emplace_back("Authorization", seen);
    ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, client_->perform(request));
    if (resp.status != 401 || attempt == 1 || !own_origin) return resp;
    std::string header = resp.header("www-authenticate");
    if (header.empty()) return resp;
    ENVB_ASSIGN_OR_RETURN(Challenge challenge, parse_challenge(header));
    ENVB_TRY(auth_->refresh(challenge, seen, origin_, *client_)
                 .context(request.method + " " + common::redact_url(request.url) +
                          ": 401 Unauthorized"));
  }
}

Result<void> Repository::ping() {
  if (!options_->transport.tls.verify && origin_.starts_with("https://")) {
    // skopeo's rule for --tls-verify=false: plain http when https does not answer. One probe
    // without retries, so a plain-http registry costs one failed handshake, not a backoff.
    common::HttpOptions probe_options = client_->options();
    probe_options.max_retries = 0;
    common::HttpClient probe(probe_options, client_->counters());
    common::HttpRequest req;
    req.url = origin_ + "/v2/";
    req.metadata = true;
    if (!probe.perform(req)) origin_ = "http://" + origin_.substr(8);
  }
  common::HttpRequest req;
  req.url = origin_ + "/v2/";
  req.metadata = true;
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (resp.status == 400 && !options_->transport.tls.verify && origin_.starts_with("http://")) {
    // A TLS registry answers plain http with 400 ("Client sent an HTTP request to an HTTPS
    // server"): the https probe failed for another reason (a busy host). Use https after all.
    origin_ = "https://" + origin_.substr(7);
    req.url = origin_ + "/v2/";
    ENVB_ASSIGN_OR_RETURN(resp, send(req));
  }
  if (!resp.ok()) return common::http_status_error("GET", req.url, resp);
  return ok();
}

Result<FetchedManifest> Repository::get_manifest(const std::string& reference, size_t max_bytes) {
  ENVB_TRY(check_manifest_reference(reference));
  common::HttpRequest req;
  req.url = origin_ + "/v2/" + name_ + "/manifests/" + reference;
  req.metadata = true;
  req.headers.emplace_back("Accept", std::string(kAcceptManifests));
  req.max_body = max_bytes;
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (!resp.ok()) return common::http_status_error("GET", req.url, resp);
  if (resp.body_truncated)
    return fail(Errc::InvalidInput, "GET " + common::redact_url(req.url) + ": manifest over " +
                                        std::to_string(req.max_body) + " bytes");
  FetchedManifest out;
  out.bytes = std::move(resp.body);
  Digest actual = Digest::of(out.bytes);
  std::string expected_text =
      reference.starts_with("sha256:") ? reference : resp.header("docker-content-digest");
  if (!expected_text.empty()) {
    auto expected = Digest::parse(expected_text);
    if (expected && *expected != actual)
      return fail(Errc::Integrity, "GET " + common::redact_url(req.url) + ": manifest digest is " +
                                       actual.to_string() + ", expected " + expected->to_string());
    if (!expected && reference.starts_with("sha256:")) return std::move(expected).error();
  }
  auto j = common::parse_json(out.bytes, "manifest").value_or(nlohmann::json());
  std::string media_type;
  if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string())
    media_type = j["mediaType"].get<std::string>();
  if (media_type.empty()) media_type = strip_params(resp.header("content-type"));
  if (!media_type::is_manifest(media_type) && !media_type::is_index(media_type))
    return fail(Errc::Unsupported, "GET " + common::redact_url(req.url) +
                                       ": unsupported manifest media type '" + media_type + "'");
  out.descriptor.media_type = media_type;
  out.descriptor.digest = actual;
  out.descriptor.size = static_cast<int64_t>(out.bytes.size());
  return out;
}

Result<std::optional<Index>> Repository::referrers(const Digest& subject) {
  common::HttpRequest req;
  req.url = origin_ + "/v2/" + name_ + "/referrers/" + subject.to_string();
  req.metadata = true;
  req.headers.emplace_back("Accept", std::string(media_type::kOciIndex));
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (resp.status == 404) return std::optional<Index>();
  if (!resp.ok()) return common::http_status_error("GET", req.url, resp);
  // A registry without the API may answer 200 with something else (an HTML page, a JSON
  // error): only an image index counts as support.
  auto index = parse_index(resp.body);
  if (!index) return std::optional<Index>();
  return std::optional<Index>(std::move(*index));
}

Result<std::optional<Descriptor>> Repository::head_manifest(const std::string& reference) {
  ENVB_TRY(check_manifest_reference(reference));
  common::HttpRequest req;
  req.method = "HEAD";
  req.url = origin_ + "/v2/" + name_ + "/manifests/" + reference;
  req.metadata = true;
  req.headers.emplace_back("Accept", std::string(kAcceptManifests));
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (resp.status == 404) return std::optional<Descriptor>();
  if (!resp.ok()) return common::http_status_error("HEAD", req.url, resp);
  Descriptor d;
  d.media_type = strip_params(resp.header("content-type"));
  ENVB_ASSIGN_OR_RETURN(d.digest, Digest::parse(resp.header("docker-content-digest"))
                                      .context("HEAD " + common::redact_url(req.url)));
  d.size = std::atoll(resp.header("content-length").c_str());
  return std::optional<Descriptor>(std::move(d));
}

Result<Descriptor> Repository::put_manifest(const std::string& reference, const std::string& bytes,
                                            const std::string& media_type) {
  ENVB_TRY(check_manifest_reference(reference));
  common::HttpRequest req;
  req.method = "PUT";
  req.url = origin_ + "/v2/" + name_ + "/manifests/" + reference;
  req.metadata = true;
  req.headers.emplace_back("Content-Type", media_type);
  req.body = [&bytes]() -> Result<std::unique_ptr<common::ByteSource>> {
    return std::unique_ptr<common::ByteSource>(std::make_unique<common::StringSource>(bytes));
  };
  req.body_size = static_cast<int64_t>(bytes.size());
  // distribution 2.8 rewrites a blob's link file in place whenever an upload of that blob
  // commits (distribution 3 writes a temporary file and renames it, PR 4624): a manifest PUT
  // that reads the link meanwhile finds the blob unknown although it is there. So that answer
  // is asked again, twice at most; a blob really missing stays the error.
  constexpr int kAttempts = 3;
  common::HttpResponse resp;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    ENVB_ASSIGN_OR_RETURN(resp, send(req));
    if (resp.status != 400 || resp.body.find("MANIFEST_BLOB_UNKNOWN") == std::string::npos) break;
  }
  if (resp.status != 201 && !resp.ok()) return common::http_status_error("PUT", req.url, resp);
  Descriptor d;
  d.media_type = media_type;
  d.digest = Digest::of(bytes);
  d.size = static_cast<int64_t>(bytes.size());
  if (auto got = Digest::parse(resp.header("docker-content-digest")); got && *got != d.digest)
    return fail(Errc::Integrity, "PUT " + common::redact_url(req.url) + ": registry says digest " +
                                     got->to_string() + ", we sent " + d.digest.to_string());
  return d;
}

Result<std::optional<int64_t>> Repository::head_blob(const Digest& digest, bool server_error_is_absent) {
  common::HttpRequest req;
  req.method = "HEAD";
  req.url = origin_ + "/v2/" + name_ + "/blobs/" + digest.to_string();
  req.metadata = true;
  req.follow_redirects = true;
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (resp.status == 404 || (server_error_is_absent && resp.status >= 500))
    return std::optional<int64_t>();
  if (!resp.ok()) return common::http_status_error("HEAD", req.url, resp);
  return std::optional<int64_t>(std::atoll(resp.header("content-length").c_str()));
}

Result<void> Repository::fetch_blob(const Descriptor& blob, const BlobStore& store) {
  const std::string url = origin_ + "/v2/" + name_ + "/blobs/" + blob.digest.to_string();
  const std::string what = "GET " + common::redact_url(url);
  std::optional<BlobWriter> writer;
  int64_t have = 0;  // bytes of the blob in `writer`
  for (int attempt = 1;; ++attempt) {
    if (!writer) {
      ENVB_ASSIGN_OR_RETURN(BlobWriter fresh, store.writer());
      writer.emplace(std::move(fresh));
      have = 0;
    }
    const int64_t before = have;
    ResumeSink sink(*writer, blob.size, have, what);
    common::HttpRequest req;
    req.url = url;
    req.follow_redirects = true;  // registries hand blobs to a storage back end (S3, CDN)
    req.sink = &sink;
    if (have > 0) {
      // A connection dropped mid-blob: ask for the rest. A 206 must start where we stopped; a
      // 200 (Range ignored) resends the whole blob, whose first `have` bytes are dropped. The
      // digest is checked over all the bytes at the end either way.
      req.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
      req.before_body = [&sink, have, &what](
                            long status,
                            const std::map<std::string, std::string>& headers) -> Result<void> {
        if (status == 206) {
          auto it = headers.find("content-range");
          const std::string range = it == headers.end() ? std::string() : it->second;
          auto start = range_start(range);
          if (!start || *start != have)
            return fail(Errc::Integrity, what + ": asked for bytes " + std::to_string(have) +
                                             "-, got Content-Range '" + range + "'");
        } else {
          sink.skip(have);
        }
        return ok();
      };
    }
    auto resp = send(req);
    have = sink.total();
    Result<void> done = ok();
    bool partial = false;  // part of the blob arrived, then the connection dropped
    if (!resp) {
      partial = resp.error().code() == Errc::Network && have > 0 && have < blob.size;
      done = std::move(resp).error();
    } else if (!resp->ok()) {
      done = common::http_status_error("GET", req.url, *resp);
    } else if (have != blob.size) {
      done = fail(Errc::Integrity, what + ": got " + std::to_string(have) + " bytes, expected " +
                                       std::to_string(blob.size));
    } else {
      auto committed = writer->commit(blob.digest);
      if (!committed) done = std::move(committed).error().with_context(what);
    }
    if (done) return done;
    // A resumed attempt that made progress does not count against the attempts.
    if (partial && have > before && before > 0) --attempt;
    if (attempt >= options_->blob_attempts) return done;
    const bool ranged = before > 0;
    if (!partial) writer.reset();  // start over: a corrupt body, or a server that refused the range
    if (!partial && !ranged && !done.error().retryable() && done.error().code() != Errc::Integrity)
      return done;
  }
}

Result<bool> Repository::mount_blob(const Digest& digest, const std::string& from) {
  common::HttpRequest req;
  req.method = "POST";
  req.url = origin_ + "/v2/" + name_ +
            "/blobs/uploads/?mount=" + common::url_escape(digest.to_string()) +
            "&from=" + common::url_escape(from);
  req.metadata = true;
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (resp.status == 201) return true;
  if (resp.status == 202) return false;  // not mountable: an upload session we do not use
  return common::http_status_error("POST", req.url, resp);
}

Result<UploadOutcome> Repository::push_blob(const Descriptor& blob,
                                            const common::BodyOpener& open) {
  const std::string what = "pushing blob " + blob.digest.short_string();
  // A registry that still answers 5xx after the retries cannot say whether it has the blob:
  // it is uploaded. (distribution answers 500 for a blob whose link file a crash left torn, and
  // only committing an upload of it writes the link again.)
  ENVB_ASSIGN_OR_RETURN(auto existing, head_blob(blob.digest, /*server_error_is_absent=*/true)
                                           .context(what));
  if (existing && (*existing == blob.size || *existing == 0)) return UploadOutcome::Existed;
  const bool mountable = !options_->mountable || options_->mountable->count(blob.digest) > 0;
  for (const auto& from : options_->mount_from) {
    if (from == name_ || !mountable) continue;
    ENVB_ASSIGN_OR_RETURN(bool mounted, mount_blob(blob.digest, from).context(what));
    if (mounted) return UploadOutcome::Mounted;
  }
  for (int attempt = 1;; ++attempt) {
    common::HttpRequest post;
    post.method = "POST";
    post.url = origin_ + "/v2/" + name_ + "/blobs/uploads/";
    post.metadata = true;
    auto started = send(post);
    Result<void> done = ok();
    if (!started) {
      done = std::move(started).error();
    } else if (started->status != 202) {
      done = common::http_status_error("POST", post.url, *started);
    } else if (started->header("location").empty()) {
      done = fail(Errc::InvalidInput,
                  "POST " + common::redact_url(post.url) + ": 202 without a Location header");
    } else {
      auto location = resolve(started->header("location"));
      done = location ? upload(blob, open, std::move(*location))
                      : Result<void>(std::move(location).error());
    }
    if (done) return UploadOutcome::Uploaded;
    // The upload session is gone (registry restarted) or the connection dropped: start over.
    bool again = done.error().retryable() || done.error().code() == Errc::NotFound;
    if (!again || attempt >= options_->blob_attempts)
      return std::move(done).error().with_context(what);
  }
}

Result<void> Repository::upload(const Descriptor& blob, const common::BodyOpener& open,
                                std::string location) {
  auto with_digest = [&](const std::string& url) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           "digest=" + common::url_escape(blob.digest.to_string());
  };
  common::HttpRequest put;
  put.method = "PUT";
  put.headers.emplace_back("Content-Type", "application/octet-stream");
  if (blob.size <= options_->chunk_threshold) {
    put.url = with_digest(location);
    put.body = open;
    put.body_size = blob.size;
  } else {
    ENVB_ASSIGN_OR_RETURN(auto source, open());
    for (int64_t offset = 0; offset < blob.size;) {
      int64_t n = std::min(options_->chunk_size, blob.size - offset);
      common::HttpRequest patch;
      patch.method = "PATCH";
      patch.url = location;
      patch.headers = {
          {"Content-Type", "application/octet-stream"},
          {"Content-Range", std::to_string(offset) + "-" + std::to_string(offset + n - 1)}};
      // A chunk cannot be re-read from a stream: a failed PATCH restarts the whole upload.
      auto used = std::make_shared<bool>(false);
      patch.body = [&source, n, used]() -> Result<std::unique_ptr<common::ByteSource>> {
        if (*used) return fail(Errc::Network, "cannot rewind a chunk").set_retryable();
        *used = true;
        return std::unique_ptr<common::ByteSource>(std::make_unique<LimitedSource>(*source, n));
      };
      patch.body_size = n;
      ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(patch));
      if (resp.status != 202) return common::http_status_error("PATCH", patch.url, resp);
      if (auto next = resp.header("location"); !next.empty()) {
        ENVB_ASSIGN_OR_RETURN(location, resolve(next));
      }
      offset += n;
    }
    put.url = with_digest(location);
  }
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(put));
  if (resp.status != 201 && !resp.ok()) return common::http_status_error("PUT", put.url, resp);
  return ok();
}

Result<bool> Repository::delete_manifest(const Digest& digest) {
  common::HttpRequest req;
  req.method = "DELETE";
  req.url = origin_ + "/v2/" + name_ + "/manifests/" + digest.to_string();
  req.metadata = true;
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
  if (resp.ok()) return true;  // 202 Accepted
  if (resp.status == 404) return false;
  Error error = common::http_status_error("DELETE", req.url, resp);
  if (resp.status != 405) return error;
  return fail(Errc::Unsupported, error.message())
      .with_hint(
          "the registry does not delete manifests (distribution: "
          "REGISTRY_STORAGE_DELETE_ENABLED=true)");
}

Result<std::vector<std::string>> Repository::tags(const TagListLimits& limits) {
  const std::string listing = origin_ + "/v2/" + name_ + "/tags/list";
  std::vector<std::string> out;
  std::string url = listing;
  for (size_t page = 1;; ++page) {
    common::HttpRequest req;
    req.url = url;
    req.metadata = true;
    ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp, send(req));
    if (!resp.ok()) return common::http_status_error("GET", req.url, resp);
    const std::string what = "GET " + common::redact_url(req.url);
    if (resp.body_truncated)
      return fail(Errc::InvalidInput,
                  what + ": tag list over " + std::to_string(req.max_body) + " bytes");
    auto j = common::parse_json(resp.body, what).value_or(nlohmann::json());
    if (!j.is_object()) return fail(Errc::InvalidInput, what + ": not a tag list");
    // An empty repository may say "tags": null.
    if (auto t = j.find("tags"); t != j.end() && t->is_array()) {
      for (const auto& tag : *t) {
        if (!tag.is_string()) continue;
        if (out.size() == limits.max_tags)
          return fail(Errc::InvalidInput,
                      what + ": more than " + std::to_string(limits.max_tags) + " tags");
        out.push_back(tag.get<std::string>());
      }
    }
    std::string next = next_page_link(resp.header("link"));
    if (next.empty()) return out;
    if (page == limits.max_pages)
      return fail(Errc::InvalidInput,
                  what + ": more than " + std::to_string(limits.max_pages) + " pages of tags");
    // The next request carries our Authorization: it may only go to this tag list.
    url = next.starts_with("/") ? origin_ + next : next;
    if (!url.starts_with(listing) || (url.size() > listing.size() && url[listing.size()] != '?'))
      return fail(Errc::InvalidInput, what + ": the next page link '" + common::redact_url(next) +
                                          "' leaves the tag list of " + name_);
  }
}

namespace {

// A blob body that reports its bytes as they are read (sent): push progress.
class CountedSource final : public common::ByteSource {
 public:
  CountedSource(std::unique_ptr<common::ByteSource> inner,
                const std::function<void(uint64_t)>& on_bytes)
      : inner_(std::move(inner)), on_bytes_(on_bytes) {}
  Result<size_t> read(std::span<std::byte> buffer) override {
    ENVB_ASSIGN_OR_RETURN(size_t n, inner_->read(buffer));
    on_bytes_(n);
    return n;
  }

 private:
  std::unique_ptr<common::ByteSource> inner_;
  const std::function<void(uint64_t)>& on_bytes_;
};

Result<std::unique_ptr<common::ByteSource>> counted(
    Result<std::unique_ptr<common::ByteSource>> source,
    const std::function<void(uint64_t)>& on_bytes) {
  if (!source || !on_bytes) return source;
  return std::unique_ptr<common::ByteSource>(
      std::make_unique<CountedSource>(std::move(*source), on_bytes));
}

}  // namespace

Result<void> push_blobs(Repository& repo, const std::vector<Descriptor>& blobs,
                        const BlobOpener& open, TransferReport& report) {
  std::vector<UploadOutcome> outcomes(blobs.size());
  ENVB_TRY(for_each_parallel(repo, blobs.size(), repo.options().jobs,
                             [&](size_t i, Repository& r) -> Result<void> {
                               const Descriptor& d = blobs[i];
                               common::BodyOpener body = [&open, &d, &r] {
                                 return counted(open(d), r.options().on_bytes);
                               };
                               ENVB_ASSIGN_OR_RETURN(outcomes[i], r.push_blob(d, body));
                               if (r.options().on_blob) r.options().on_blob(d, outcomes[i]);
                               return ok();
                             }));
  for (size_t i = 0; i < blobs.size(); ++i) {
    ++report.blobs;
    switch (outcomes[i]) {
      case UploadOutcome::Existed:
        ++report.existed;
        break;
      case UploadOutcome::Mounted:
        ++report.mounted;
        break;
      case UploadOutcome::Uploaded:
        ++report.uploaded;
        report.blob_bytes += static_cast<uint64_t>(blobs[i].size);
        break;
    }
  }
  return ok();
}

Result<std::vector<std::optional<FetchedManifest>>> get_manifests(
    Repository& repo, const std::vector<std::string>& references, size_t max_bytes) {
  std::vector<std::optional<FetchedManifest>> out(references.size());
  ENVB_TRY(for_each_parallel(repo, references.size(), repo.options().jobs,
                             [&](size_t i, Repository& r) -> Result<void> {
                               auto got = r.get_manifest(references[i], max_bytes);
                               if (got) {
                                 out[i] = std::move(*got);
                                 return ok();
                               }
                               if (got.error().code() == Errc::NotFound) return ok();
                               return std::move(got).error();
                             }));
  return out;
}

namespace {

// Pushes the blobs of one image in parallel, then its manifest under `reference`.
Result<Descriptor> push_one(Repository& repo, const Image& image, const std::string& reference,
                            TransferReport& report) {
  ENVB_TRY(push_blobs(
      repo, unique_blobs(image.manifest()),
      [&image](const Descriptor& d) { return image.open_blob(d); }, report));
  std::string media_type = image.descriptor().media_type.empty() ? image.manifest().media_type
                                                                 : image.descriptor().media_type;
  ENVB_ASSIGN_OR_RETURN(
      Descriptor d, repo.put_manifest(reference, image.raw_manifest(), media_type)
                        .context("pushing manifest " + image.descriptor().digest.short_string()));
  d.platform = image.descriptor().platform;
  return d;
}

Result<Repository> connect_checked(const ImageReference& ref, Action action,
                                   const RegistryOptions& options) {
  if (ref.transport != oci::Transport::Registry)
    return fail(Errc::InvalidInput, "'" + ref.to_string() + "' is not a docker:// reference");
  ENVB_ASSIGN_OR_RETURN(Repository repo, Repository::connect(ref.host, ref.name, action, options));
  ENVB_TRY(repo.ping());
  return repo;
}

}  // namespace

Result<TransferReport> push(const Image& image, const ImageReference& dest,
                            const RegistryOptions& options) {
  auto started = std::chrono::steady_clock::now();
  const std::string what = "pushing " + dest.to_string();
  ENVB_ASSIGN_OR_RETURN(Repository repo,
                        connect_checked(dest, Action::Push, options).context(what));
  std::string reference = dest.tag;
  if (dest.digest.valid()) {
    if (dest.digest != image.descriptor().digest)
      return fail(Errc::InvalidInput,
                  what + ": the image's digest is " + image.descriptor().digest.to_string());
    if (reference.empty()) reference = dest.digest.to_string();
  }
  if (reference.empty()) reference = "latest";
  TransferReport report;
  ENVB_ASSIGN_OR_RETURN(report.manifest, push_one(repo, image, reference, report).context(what));
  add_counters(report, repo.counters());
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

Result<TransferReport> push_index(const std::vector<const Image*>& images,
                                  const ImageReference& dest, const RegistryOptions& options) {
  auto started = std::chrono::steady_clock::now();
  const std::string what = "pushing " + dest.to_string();
  if (images.empty()) return fail(Errc::InvalidInput, what + ": no images");
  ENVB_ASSIGN_OR_RETURN(Repository repo,
                        connect_checked(dest, Action::Push, options).context(what));
  TransferReport report;
  Index index;
  bool docker = true;
  for (const Image* image : images) {
    ENVB_ASSIGN_OR_RETURN(
        Descriptor d,
        push_one(repo, *image, image->descriptor().digest.to_string(), report).context(what));
    if (!d.platform) d.platform = image->config().platform();
    docker = docker && d.media_type == media_type::kDockerManifest;
    index.manifests.push_back(std::move(d));
  }
  if (docker) index.media_type = std::string(media_type::kDockerManifestList);
  std::string bytes = to_canonical_json(index);
  ENVB_ASSIGN_OR_RETURN(report.manifest, repo.put_manifest(dest.tag.empty() ? "latest" : dest.tag,
                                                           bytes, index.media_type)
                                             .context(what + ": pushing the index"));
  add_counters(report, repo.counters());
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

namespace {

// The manifest `src` names for `platform` (the host's by default): the one it names, or the
// matching one of the index it names. The platform is the index's, if it gave one.
Result<std::pair<FetchedManifest, std::optional<Platform>>> choose_manifest(
    Repository& repo, const ImageReference& src, const std::optional<Platform>& platform,
    const std::string& what) {
  std::string reference = src.digest.valid() ? src.digest.to_string()
                          : src.tag.empty()  ? std::string("latest")
                                             : src.tag;
  ENVB_ASSIGN_OR_RETURN(FetchedManifest chosen, repo.get_manifest(reference).context(what));
  std::optional<Platform> chosen_platform;
  if (media_type::is_index(chosen.descriptor.media_type)) {
    ENVB_ASSIGN_OR_RETURN(Index index, parse_index(chosen.bytes).context(what));
    Platform want = platform ? *platform : host_platform();
    const Descriptor* match = nullptr;
    std::string available;
    for (const auto& m : index.manifests) {
      if (!m.platform) continue;
      available += (available.empty() ? "" : ", ") + m.platform->to_string();
      if (m.platform->os == want.os && m.platform->architecture == want.architecture &&
          (want.variant.empty() || m.platform->variant == want.variant) && !match)
        match = &m;
    }
    if (!match)
      return fail(Errc::NotFound, what + ": no image for platform " + want.to_string() +
                                      " (available: " + available + ")");
    chosen_platform = match->platform;
    ENVB_ASSIGN_OR_RETURN(chosen, repo.get_manifest(match->digest.to_string()).context(what));
  }
  if (!media_type::is_manifest(chosen.descriptor.media_type))
    return fail(Errc::Unsupported, what + ": nested index");
  return std::make_pair(std::move(chosen), std::move(chosen_platform));
}

}  // namespace

Result<Descriptor> pull_manifest_and_config(const ImageReference& src,
                                            const std::optional<Platform>& platform,
                                            const BlobStore& store,
                                            const RegistryOptions& options) {
  const std::string what = "reading " + src.to_string();
  ENVB_ASSIGN_OR_RETURN(Repository repo, connect_checked(src, Action::Pull, options).context(what));
  ENVB_ASSIGN_OR_RETURN(auto chosen, choose_manifest(repo, src, platform, what));
  ENVB_ASSIGN_OR_RETURN(Manifest manifest, parse_manifest(chosen.first.bytes).context(what));
  if (!store.contains(manifest.config.digest, manifest.config.size)) {
    ENVB_TRY(repo.fetch_blob(manifest.config, store).context(what));
  }
  ENVB_ASSIGN_OR_RETURN(BlobInfo info, store.put(chosen.first.bytes).context(what));
  ENVB_CHECK(info.digest == chosen.first.descriptor.digest);
  Descriptor out = chosen.first.descriptor;
  out.platform = chosen.second;
  return out;
}

Result<TransferReport> pull(const ImageReference& src, const std::optional<Platform>& platform,
                            const BlobStore& store, const RegistryOptions& options) {
  auto started = std::chrono::steady_clock::now();
  const std::string what = "pulling " + src.to_string();
  ENVB_ASSIGN_OR_RETURN(Repository repo, connect_checked(src, Action::Pull, options).context(what));
  ENVB_ASSIGN_OR_RETURN(auto selected, choose_manifest(repo, src, platform, what));
  FetchedManifest chosen = std::move(selected.first);
  std::optional<Platform> chosen_platform = std::move(selected.second);
  ENVB_ASSIGN_OR_RETURN(Manifest manifest, parse_manifest(chosen.bytes).context(what));

  TransferReport report;
  auto blobs = unique_blobs(manifest);
  std::vector<char> present(blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i)
    present[i] = store.contains(blobs[i].digest, blobs[i].size);
  ENVB_TRY(for_each_parallel(repo, blobs.size(), options.jobs,
                             [&](size_t i, Repository& r) -> Result<void> {
                               if (present[i]) return ok();
                               return r.fetch_blob(blobs[i], store)
                                   .context("pulling blob " + blobs[i].digest.short_string());
                             })
               .context(what));
  for (size_t i = 0; i < blobs.size(); ++i) {
    ++report.blobs;
    if (present[i]) {
      ++report.existed;
    } else {
      ++report.uploaded;
      report.blob_bytes += static_cast<uint64_t>(blobs[i].size);
    }
  }
  ENVB_ASSIGN_OR_RETURN(BlobInfo info, store.put(chosen.bytes).context(what));
  ENVB_CHECK(info.digest == chosen.descriptor.digest);
  report.manifest = chosen.descriptor;
  if (!chosen_platform) {
    ENVB_ASSIGN_OR_RETURN(std::string raw, store.read_small(manifest.config.digest).context(what));
    ENVB_ASSIGN_OR_RETURN(ImageConfig config, parse_image_config(raw).context(what));
    chosen_platform = config.platform();
  }
  report.manifest.platform = chosen_platform;
  add_counters(report, repo.counters());
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return report;
}

}  // namespace envbuild::oci::registry
