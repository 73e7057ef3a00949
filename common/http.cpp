#include "common/http.hpp"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fs.hpp"
#include "common/ascii.hpp"
#include "common/internal/transfer_deadlines.hpp"
#include "common/url.hpp"

namespace envbuild::common {

namespace {

using Clock = std::chrono::steady_clock;

struct CurlEasyFree {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistFree>;

// Headers that carry a credential: they go to the request's own origin only.
bool is_credential_header(std::string_view name) {
  std::string n = ascii_lower(name);
  return n == "authorization" || n == "proxy-authorization" || n == "cookie";
}

// A transport error worth another attempt: not one that the same request meets again (a
// certificate that does not verify, a URL curl cannot use).
bool retryable_curl(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_LOGIN_DENIED:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;
  }
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string http_date(time_t t) {
  char buf[64];
  struct tm tm {};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::filesystem::path> files_with_suffix(const std::string& dir, std::string_view ext) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The error of the last of several attempts says so ("... Empty reply from server (after 5
// attempts)"): a reader should not think one dropped connection ended the run.
Error with_attempts(Error error, int attempts) {
  if (attempts <= 1) return error;
  Error out(error.code(), error.message() + " (after " + std::to_string(attempts) + " attempts)");
  for (const auto& c : error.context()) out.with_context(c);
  if (!error.hint().empty()) out = std::move(out).with_hint(error.hint());
  return std::move(out).set_retryable(error.retryable());
}

// State of one hop shared with curl's C callbacks; errors are stored here, never thrown
// through C frames.
struct Transfer {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  std::unique_ptr<ByteSource> upload;
  const BodyOpener* opener = nullptr;
  std::optional<Error> error;       // from the sink, the body source or before_body
  std::optional<std::string> late;  // the deadline missed
  internal::TransferDeadlines* deadlines = nullptr;
  bool headers_done = false;
  bool body_started = false;
  uint64_t sent = 0;
  uint64_t received = 0;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {  // a new response (100 Continue): keep the final one's only
    t->response->headers.clear();
    t->headers_done = false;
    size_t sp = line.find(' ');
    t->response->status =
        sp == std::string_view::npos ? 0 : std::strtol(line.data() + sp + 1, nullptr, 10);
  } else if (ascii_trim(line).empty()) {
    t->headers_done = t->response->status >= 200;
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->response->headers[ascii_lower(ascii_trim(line.substr(0, colon)))] =
        ascii_trim(line.substr(colon + 1));
  }
  return size * count;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->received += n;
  HttpResponse& response = *t->response;
  if (response.ok() && t->request->sink) {
    if (!t->body_started) {
      t->body_started = true;
      if (t->request->before_body) {
        if (auto r = t->request->before_body(response.status, response.headers); !r) {
          t->error = std::move(r).error();
          return 0;  // aborts the transfer with CURLE_WRITE_ERROR
        }
      }
    }
    if (auto r = t->request->sink->write(std::as_bytes(std::span(data, n))); !r) {
      t->error = std::move(r).error();
      return 0;
    }
    response.body_bytes += n;
    return n;
  }
  const size_t max = t->request->max_body;
  const size_t room = max > response.body.size() ? max - response.body.size() : 0;
  response.body.append(data, std::min(room, n));
  if (n > room) response.body_truncated = true;
  return n;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->upload) return 0;
  auto r = t->upload->read(std::as_writable_bytes(std::span<char>(buffer, size * count)));
  if (!r) {
    t->error = std::move(r).error();
    return CURL_READFUNC_ABORT;
  }
  t->sent += *r;
  return *r;
}

// A body that is read again from the start when curl rewinds (an auth retry on a kept
// connection).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (offset != 0 || origin != SEEK_SET || !t->opener || !*t->opener) return CURL_SEEKFUNC_CANTSEEK;
  auto r = (*t->opener)();
  if (!r) return CURL_SEEKFUNC_FAIL;
  t->upload = std::move(*r);
  return CURL_SEEKFUNC_OK;
}

// curl calls this at least once a second, data or not: the stage deadlines are checked here.
int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  curl_off_t pretransfer = 0;
  curl_easy_getinfo(t->curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  internal::TransferProgress progress;
  // A status line proves the connection even when curl's clock says 0 microseconds.
  progress.connected = pretransfer > 0 || t->response->status != 0 || ulnow > 0;
  progress.uploaded = static_cast<uint64_t>(ulnow);
  progress.headers_done = t->headers_done;
  progress.download_size = dltotal > 0 ? static_cast<uint64_t>(dltotal) : 0;
  progress.downloaded = static_cast<uint64_t>(dlnow);
  t->late = t->deadlines->check(progress, Clock::now());
  return t->late ? 1 : 0;
}

void set_method(CURL* c, const std::string& method, uint64_t upload_size, HttpCounters& counters) {
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    ++counters.head;
  } else if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    ++counters.get;
  } else if (method == "PUT" || method == "PATCH" || method == "POST") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload_size));
    if (method != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    ++(method == "PUT" ? counters.put : method == "PATCH" ? counters.patch : counters.post);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  ++counters.requests;
}

// The fields of a completed transfer's response that come from curl and its headers.
void finish_response(CURL* c, const std::string& url, HttpResponse& response) {
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  response.etag = response.header("etag");
  response.last_modified = response.header("last-modified");
  response.content_type = response.header("content-type");
  response.effective_url = url;
  long version = 0;
  curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
  response.http_version = version == CURL_HTTP_VERSION_2_0   ? "2"
                          : version == CURL_HTTP_VERSION_3   ? "3"
                          : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                             : "1.1";
}

}  // namespace

/// One request of a redirect chain.
struct HttpClient::Hop {
  std::string url;
  std::string method;
  bool credentials = true;  // the request's own origin: its credentials go along
  bool body = true;         // a 303 turns a PUT or POST into a GET without one
};

struct HttpClient::Impl {
  std::unique_ptr<CURL, CurlEasyFree> easy;
  std::string ca_bundle;  // the cert dir's *.crt files, concatenated (CURLOPT_CAINFO_BLOB)
  std::string client_cert;
  std::string client_key;
  std::optional<Error> environment_error;  // a bad ENVBUILD_HTTP_TIMEOUTS, reported by perform()
  Clock::time_point started;               // of the current attempt (metadata deadline)

  void load_cert_dir(const std::string& dir) {
    for (const auto& crt : files_with_suffix(dir, ".crt")) {
      std::ifstream in(crt, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      ca_bundle += text.str() + "\n";
    }
    for (const auto& cert : files_with_suffix(dir, ".cert")) {
      auto key = cert;
      key.replace_extension(".key");
      std::error_code ec;
      if (std::filesystem::exists(key, ec)) {
        client_cert = cert.string();
        client_key = key.string();
        break;
      }
    }
  }

  void set_tls(CURL* c, const TlsOptions& tls, curl_blob& ca_blob) {
    if (!tls.verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!tls.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, tls.ca_file.c_str());
    if (!ca_bundle.empty()) {
      ca_blob.data = ca_bundle.data();
      ca_blob.len = ca_bundle.size();
      ca_blob.flags = CURL_BLOB_NOCOPY;
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_blob);
    }
    if (!client_cert.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, client_cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, client_key.c_str());
    }
  }
};

HttpClient::HttpClient(HttpOptions options, std::shared_ptr<HttpCounters> counters)
    : options_(std::move(options)),
      counters_(counters ? std::move(counters) : std::make_shared<HttpCounters>()),
      impl_(std::make_unique<Impl>()) {
  if (const char* spec = std::getenv(kHttpOverridesEnv); spec && *spec) {
    if (auto applied = apply_http_overrides(options_, spec); !applied)
      impl_->environment_error = std::move(applied).error();
  }
  if (!options_.tls.cert_dir.empty()) impl_->load_cert_dir(options_.tls.cert_dir);
}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpResponse> HttpClient::send_file(const HttpRequest& request) {
  std::string_view rest = std::string_view(request.url).substr(7);  // after file://
  if (rest.starts_with("localhost/")) rest.remove_prefix(9);
  if (!rest.starts_with("/"))
    return fail(Errc::InvalidInput, request.method + " " + redact_url(request.url) +
                                        ": only local absolute file:// URLs are supported");
  std::string path = percent_decode(rest);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return fail(Errc::NotFound, request.method + " " + redact_url(request.url) + ": no such file");
  HttpResponse response;
  response.attempts = 1;
  response.http_version = "file";
  response.effective_url = request.url;
  response.last_modified = http_date(st.st_mtime);
  char etag[96];
  std::snprintf(
      etag, sizeof etag, "\"%llx-%llx\"", static_cast<unsigned long long>(st.st_size),
      static_cast<unsigned long long>(st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec));
  response.etag = etag;
  response.headers["etag"] = response.etag;
  response.headers["last-modified"] = response.last_modified;
  for (const auto& [name, value] : request.headers) {
    if (ascii_lower(name) == "if-none-match" && value == response.etag) {
      response.status = 304;
      return response;
    }
  }
  response.status = 200;
  if (request.method == "HEAD") return response;
  ENVB_ASSIGN_OR_RETURN(auto source, FileSource::open(path));
  if (request.sink) {
    ENVB_ASSIGN_OR_RETURN(response.body_bytes, copy_stream(*source, *request.sink));
    return response;
  }
  StringSink captured;
  ENVB_TRY(copy_stream(*source, captured));
  response.body = std::move(captured.out);
  return response;
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request) {
  if (impl_->environment_error) return *impl_->environment_error;
  if (request.url.starts_with("file://")) return send_file(request);
  for (int attempt = 1;; ++attempt) {
    uint64_t delivered = 0;  // body bytes the sink took: they cannot be taken back
    auto result = follow(request, delivered);
    const bool retryable = delivered == 0 && (result ? http_status_retryable(result->status)
                                                     : result.error().retryable());
    const std::string retry_after = result ? result->header("retry-after") : std::string();
    auto wait =
        next_retry(options_, attempt, retryable, retry_after, std::chrono::system_clock::now());
    if (!wait) {
      if (!result) return with_attempts(std::move(result).error(), attempt);
      result->attempts = attempt;
      return result;
    }
    std::this_thread::sleep_for(*wait);
  }
}

Result<HttpResponse> HttpClient::follow(const HttpRequest& request, uint64_t& delivered) {
  impl_->started = Clock::now();
  Hop hop{request.url, request.method, true, true};
  for (long redirects = 0;; ++redirects) {
    ENVB_ASSIGN_OR_RETURN(HttpResponse response, transfer(request, hop, delivered));
    if (!request.follow_redirects || !is_redirect(response.status)) return response;
    const std::string what = hop.method + " " + redact_url(hop.url);
    const std::string location = response.header("location");
    if (location.empty()) return response;
    if (redirects >= options_.max_redirects)
      return fail(Errc::Network,
                  what + ": more than " + std::to_string(options_.max_redirects) + " redirects");
    ENVB_ASSIGN_OR_RETURN(std::string next, resolve_url(hop.url, location).context(what));
    ENVB_TRY(url_origin(next).context(what + ": redirected"));
    // A redirect out of TLS would hand the rest of the exchange (credentials, a token, the
    // bytes whose digests we trust) to anyone on the path: refused, as apt refuses it.
    if (is_downgrade(hop.url, next))
      return fail(Errc::Network, what + ": redirected to " + redact_url(next) +
                                     ": refusing to leave https for plain http")
          .with_hint(
              "the server (or someone on the way) downgrades the connection; use a "
              "mirror that stays on https");
    if (response.status == 303 ||
        ((response.status == 301 || response.status == 302) && hop.method == "POST")) {
      if (hop.method != "HEAD") hop.method = "GET";
      hop.body = false;
    }
    hop.credentials = same_origin(next, request.url);
    hop.url = hop.credentials ? std::move(next) : strip_userinfo(next);
  }
}

std::string proxy_for(std::string_view url, const std::map<std::string, std::string>& proxies) {
  if (proxies.empty()) return "";
  auto origin = url_origin(url);
  if (!origin) return "";
  std::string host = origin->host;
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  for (const std::string& key :
       {origin->scheme + "://" + host, origin->scheme, "all://" + host, std::string("all")}) {
    auto it = proxies.find(key);
    if (it != proxies.end() && !it->second.empty()) return it->second;
  }
  return "";
}

Result<HttpResponse> HttpClient::transfer(const HttpRequest& request, const Hop& hop,
                                          uint64_t& delivered) {
  const std::string what = hop.method + " " + redact_url(hop.url);
  if (!impl_->easy) {
    impl_->easy.reset(curl_easy_init());
    if (!impl_->easy) return fail(Errc::Internal, what + ": curl_easy_init failed");
  }
  CURL* c = impl_->easy.get();
  curl_easy_reset(c);  // keeps the connection, DNS and TLS session caches

  HttpResponse response;
  Transfer t;
  t.curl = c;
  t.request = &request;
  t.response = &response;
  const bool has_body = hop.body && request.body;
  if (has_body) {
    t.opener = &request.body;
    ENVB_ASSIGN_OR_RETURN(t.upload, request.body().context(what));
  }
  const uint64_t upload_size = has_body ? static_cast<uint64_t>(request.body_size) : 0;
  // The metadata deadline covers the whole chain of redirects: it started with the first hop.
  internal::TransferDeadlines deadlines(options_, request.metadata, upload_size, impl_->started);
  t.deadlines = &deadlines;

  Slist headers;
  auto add_header = [&](const std::string& line) -> Result<void> {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (!next) return fail(Errc::Internal, what + ": curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
    return ok();
  };
  ENVB_TRY(add_header("Expect:"));  // no 100-continue round trip
  for (const auto& [name, value] : request.headers)
    if (hop.credentials || !is_credential_header(name)) ENVB_TRY(add_header(name + ": " + value));

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_blob ca_blob{};
  curl_easy_setopt(c, CURLOPT_URL, hop.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::chrono::milliseconds(options_.connect_timeout).count()));
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // follow() decides, hop by hop
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  if (request.metadata) curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip, br if offered
  if (options_.use_netrc) {
    // netrc holds credentials by host: a hop to another host gets that host's, if any.
    curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
    if (!options_.netrc_file.empty())
      curl_easy_setopt(c, CURLOPT_NETRC_FILE, options_.netrc_file.c_str());
  }
  impl_->set_tls(c, options_.tls, ca_blob);
  // curl_easy_reset() above cleared the previous hop's proxy: each hop gets its own host's.
  const std::string proxy = proxy_for(hop.url, options_.proxies);
  if (!proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, proxy.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &t);
  curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
  curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

  set_method(c, hop.method, upload_size, *counters_);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  CURLcode rc = curl_easy_perform(c);
  counters_->bytes_sent += t.sent;
  counters_->bytes_received += t.received;
  delivered += response.body_bytes;
  if (t.error) return std::move(*t.error).with_context(what);
  if (t.late) return fail(Errc::Network, what + ": " + *t.late).set_retryable();
  if (rc != CURLE_OK) {
    std::string detail = ascii_trim(errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc));
    // curl's messages may quote the URL: redact whatever it says.
    auto error =
        fail(Errc::Network, what + ": " + redact_url(detail)).set_retryable(retryable_curl(rc));
    if (rc == CURLE_PEER_FAILED_VERIFICATION)
      return std::move(error).with_hint(
          "pass --cert-dir with the server's CA, or --tls-verify=false for a test registry");
    return error;
  }
  finish_response(c, hop.url, response);
  return response;
}

Result<HttpResponse> HttpClient::send(const HttpRequest& request, ByteSink& body) {
  HttpRequest with_sink = request;
  with_sink.sink = &body;
  ENVB_ASSIGN_OR_RETURN(HttpResponse response, perform(with_sink));
  if (response.ok() || response.not_modified()) return response;
  Error error = http_status_error(request.method, request.url, response);
  if (error.code() == Errc::Unauthorized)
    return std::move(error).with_hint(
        "check the credentials for this host (user:password@ in the URL, a conda token "
        "/t/<token>/, or ~/.netrc)");
  return error;
}

HttpClients::HttpClients(HttpOptions options, size_t workers)
    : options_(std::move(options)), clients_(workers) {}

HttpClient& HttpClients::of(size_t worker) {
  auto& client = clients_.at(worker);
  if (!client) client = std::make_unique<HttpClient>(options_);
  return *client;
}

}  // namespace envbuild::common
