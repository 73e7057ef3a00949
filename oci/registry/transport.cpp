#include "oci/registry/transport.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/json.hpp"

namespace envbuild::oci::registry {

namespace {

struct EasyDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// State shared with curl's C callbacks; errors are stored here, never thrown through C frames.
struct Transfer {
  CURL* curl = nullptr;
  const Request* request = nullptr;
  Response* response = nullptr;
  std::unique_ptr<common::ByteSource> body;
  std::optional<Error> error;
  uint64_t sent = 0;
  uint64_t received = 0;
  bool body_started = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    t->response->headers.clear();  // a redirect or 100 Continue: keep the final response's only
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos)
    t->response->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  return size * count;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  t->received += n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300 && t->request->sink) {
    if (!t->body_started) {
      t->body_started = true;
      t->response->status = status;
      if (t->request->on_body_start) {
        if (auto started = t->request->on_body_start(*t->response); !started) {
          t->error = std::move(started).error();
          return 0;
        }
      }
    }
    auto r = t->request->sink->write(std::as_bytes(std::span<const char>(data, n)));
    if (!r) {
      t->error = std::move(r).error();
      return 0;
    }
    t->response->sink_bytes += n;
    return n;
  }
  auto& body = t->response->body;
  size_t room = t->request->max_body > body.size() ? t->request->max_body - body.size() : 0;
  body.append(data, std::min(room, n));
  if (n > room) t->response->body_truncated = true;
  return n;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->body) return 0;
  auto r = t->body->read(std::as_writable_bytes(std::span<char>(buffer, size * count)));
  if (!r) {
    t->error = std::move(r).error();
    return CURL_READFUNC_ABORT;
  }
  t->sent += *r;
  return *r;
}

// A body that is read again from the start when curl rewinds (a redirect or an auth retry).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (offset != 0 || origin != SEEK_SET || !t->request->body) return CURL_SEEKFUNC_CANTSEEK;
  auto r = t->request->body();
  if (!r) return CURL_SEEKFUNC_FAIL;
  t->body = std::move(*r);
  return CURL_SEEKFUNC_OK;
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

}  // namespace

std::string Response::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

struct HttpTransport::Impl {
  Easy easy;
  std::string ca_bundle;  // the cert dir's *.crt files, concatenated (CURLOPT_CAINFO_BLOB)
  std::string client_cert;
  std::string client_key;
};

HttpTransport::HttpTransport(TransportOptions options, std::shared_ptr<Counters> counters)
    : options_(std::move(options)),
      counters_(std::move(counters)),
      impl_(std::make_unique<Impl>()) {
  if (!options_.tls.cert_dir.empty()) {
    for (const auto& crt : files_with_suffix(options_.tls.cert_dir, ".crt")) {
      std::ifstream in(crt, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      impl_->ca_bundle += text.str() + "\n";
    }
    for (const auto& cert : files_with_suffix(options_.tls.cert_dir, ".cert")) {
      auto key = cert;
      key.replace_extension(".key");
      if (std::filesystem::exists(key)) {
        impl_->client_cert = cert.string();
        impl_->client_key = key.string();
        break;
      }
    }
  }
}

HttpTransport::~HttpTransport() = default;
HttpTransport::HttpTransport(HttpTransport&&) noexcept = default;
HttpTransport& HttpTransport::operator=(HttpTransport&&) noexcept = default;

Result<Response> HttpTransport::send(const Request& request) {
  auto backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    auto result = send_once(request);
    bool last = attempt > options_.max_retries;
    std::chrono::milliseconds wait = backoff;
    if (result) {
      result->attempts = attempt;
      if (!common::http_status_retryable(result->status) || last || result->sink_bytes > 0)
        return result;
      auto after = common::parse_retry_after(result->header("retry-after"),
                                             std::chrono::system_clock::now());
      if (after.count() > 0) wait = after;
    } else {
      if (!result.error().retryable()) return result;
      if (last) return with_attempts(std::move(result).error(), attempt);
    }
    std::this_thread::sleep_for(std::min(wait, options_.max_backoff));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

Result<Response> HttpTransport::send_once(const Request& request) {
  const std::string what = request.method + " " + common::redact_url(request.url);
  if (!impl_->easy) {
    impl_->easy.reset(curl_easy_init());
    if (!impl_->easy) return fail(Errc::Internal, what + ": curl_easy_init failed");
  }
  CURL* c = impl_->easy.get();
  curl_easy_reset(c);  // keeps the connection cache

  Response response;
  Transfer t;
  t.curl = c;
  t.request = &request;
  t.response = &response;
  if (request.body) {
    ENVB_ASSIGN_OR_RETURN(t.body, request.body().context(what));
  }

  Slist headers;
  auto add_header = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next) {
      (void)headers.release();
      headers.reset(next);
    }
  };
  add_header("Expect:");  // no 100-continue round trip
  for (const auto& [name, value] : request.headers) add_header(name + ": " + value);

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &t);
  curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
  curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  if (!options_.tls.verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!options_.tls.ca_file.empty())
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.tls.ca_file.c_str());
  curl_blob ca_blob{};
  if (!impl_->ca_bundle.empty()) {
    ca_blob.data = impl_->ca_bundle.data();
    ca_blob.len = impl_->ca_bundle.size();
    ca_blob.flags = CURL_BLOB_NOCOPY;
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_blob);
  }
  if (!impl_->client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, impl_->client_cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, impl_->client_key.c_str());
  }

  const std::string& m = request.method;
  if (m == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    ++counters_->head;
  } else if (m == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    ++counters_->get;
  } else if (m == "PUT" || m == "PATCH" || m == "POST") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body_size));
    if (m != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    ++(m == "PUT" ? counters_->put : m == "PATCH" ? counters_->patch : counters_->post);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  ++counters_->requests;

  CURLcode rc = curl_easy_perform(c);
  counters_->bytes_sent += t.sent;
  counters_->bytes_received += t.received;
  if (t.error) return std::move(*t.error).with_context(what);
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc);
    while (!detail.empty() && detail.back() == '\n') detail.pop_back();
    // A transfer that already delivered part of a body to the sink cannot be replayed here.
    bool retry = response.sink_bytes == 0 && rc != CURLE_SSL_CACERT_BADFILE &&
                 rc != CURLE_PEER_FAILED_VERIFICATION && rc != CURLE_UNSUPPORTED_PROTOCOL &&
                 rc != CURLE_URL_MALFORMAT;
    auto err = fail(Errc::Network, what + ": " + detail).set_retryable(retry);
    if (rc == CURLE_PEER_FAILED_VERIFICATION)
      return std::move(err).with_hint(
          "pass --cert-dir with the registry's CA, or --tls-verify=false for a test registry");
    return err;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

Error status_error(std::string_view method, std::string_view url, const Response& response) {
  long s = response.status;
  std::string msg = std::string(method) + " " + common::redact_url(url) + ": " + std::to_string(s);
  if (auto reason = common::http_reason_phrase(s); !reason.empty())
    msg += " " + std::string(reason);
  if (response.attempts > 1) msg += " (after " + std::to_string(response.attempts) + " attempts)";
  // distribution-spec: {"errors":[{"code":"...","message":"...","detail":...}]}
  auto j = common::parse_json(response.body, "error body").value_or(nlohmann::json());
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    std::string codes;
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!codes.empty()) codes += "; ";
      codes += e.value("code", std::string("?")) + ": " + e.value("message", std::string());
    }
    if (!codes.empty()) msg += " (" + codes.substr(0, 512) + ")";
  }
  Errc code = s == 401 || s == 403               ? Errc::Unauthorized
              : s == 404                         ? Errc::NotFound
              : common::http_status_retryable(s) ? Errc::Network
                                                 : Errc::InvalidInput;
  return fail(code, std::move(msg)).set_retryable(common::http_status_retryable(s));
}

std::string url_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace envbuild::oci::registry
