#include "common/http.hpp"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <mutex>
#include <thread>

#include "common/fs.hpp"

namespace envbuild::common {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool is_secret_param(std::string_view name) {
  static constexpr std::string_view kNames[] = {"token",  "access_token", "password",  "passwd",
                                                "secret", "sig",          "signature", "api_key",
                                                "apikey", "auth"};
  std::string n = lower(name);
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [&](std::string_view k) { return n == k; });
}

bool retryable_curl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::string http_date(time_t t) {
  char buf[64];
  struct tm tm {};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

struct CurlEasyFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

/// Per-attempt state the callbacks fill.
struct Transfer {
  ByteSink* sink = nullptr;
  const HttpRequest* request = nullptr;
  bool body_started = false;
  long status = 0;
  std::string status_line;
  std::map<std::string, std::string> headers;
  std::string error_body;
  uint64_t body_bytes = 0;
  std::optional<Error> sink_error;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {  // a new response (redirects, 100-continue): start over
    t->headers.clear();
    t->status_line = trim(line);
    size_t sp = line.find(' ');
    t->status = sp == std::string_view::npos ? 0 : std::strtol(line.data() + sp + 1, nullptr, 10);
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  if (t->status >= 200 && t->status < 300) {
    if (!t->body_started) {
      t->body_started = true;
      if (t->request->before_body) {
        if (auto r = t->request->before_body(t->status, t->headers); !r) {
          t->sink_error = std::move(r).error();
          return 0;
        }
      }
    }
    auto r = t->sink->write(std::as_bytes(std::span(data, n)));
    if (!r) {
      t->sink_error = std::move(r).error();
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    t->body_bytes += n;
  } else if (t->error_body.size() < 4096) {
    t->error_body.append(data, std::min(n, 4096 - t->error_body.size()));
  }
  return n;
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

}  // namespace

std::string redact_url(std::string_view url) {
  std::string out(url);
  // user:pass@ in the authority.
  size_t scheme = out.find("://");
  size_t auth_start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t auth_end = out.find_first_of("/?#", auth_start);
  if (auth_end == std::string::npos) auth_end = out.size();
  size_t at = out.rfind('@', auth_end);
  if (at != std::string::npos && at >= auth_start) {
    size_t colon = out.find(':', auth_start);
    if (colon != std::string::npos && colon < at)
      out.replace(colon + 1, at - colon - 1, "***");
    else
      out.replace(auth_start, at - auth_start, "***");
  }
  // conda tokens: /t/<token>/
  for (size_t pos = out.find("/t/"); pos != std::string::npos; pos = out.find("/t/", pos + 3)) {
    size_t start = pos + 3;
    size_t end = out.find_first_of("/?#", start);
    if (end == std::string::npos) end = out.size();
    if (end > start && out.compare(start, end - start, "***") != 0)
      out.replace(start, end - start, "***");
  }
  // query parameters.
  size_t q = out.find('?');
  if (q != std::string::npos) {
    size_t pos = q + 1;
    while (pos < out.size()) {
      size_t amp = out.find('&', pos);
      if (amp == std::string::npos) amp = out.size();
      size_t eq = out.find('=', pos);
      if (eq != std::string::npos && eq < amp &&
          is_secret_param(std::string_view(out).substr(pos, eq - pos))) {
        out.replace(eq + 1, amp - eq - 1, "***");
        amp = eq + 4;
      }
      pos = amp + 1;
    }
  }
  return out;
}

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

std::string_view http_reason_phrase(long status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

bool http_status_retryable(long status) {
  return status == 408 || status == 429 || status >= 500;
}

std::chrono::milliseconds parse_retry_after(std::string_view value,
                                            std::chrono::system_clock::time_point now) {
  std::string v = trim(value);
  if (v.empty()) return std::chrono::milliseconds(0);
  if (std::all_of(v.begin(), v.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return std::chrono::hours(24);
    return std::chrono::seconds(std::stol(v));
  }
  time_t when = curl_getdate(v.c_str(), nullptr);
  if (when < 0) return std::chrono::milliseconds(0);
  auto delta = std::chrono::system_clock::from_time_t(when) - now;
  if (delta.count() < 0) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(delta);
}

struct HttpClient::Impl {
  std::unique_ptr<CURL, CurlEasyFree> easy;
};

HttpClient::HttpClient(HttpOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpResponse> HttpClient::send_file(const HttpRequest& request, ByteSink& body) {
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
    if (lower(name) == "if-none-match" && value == response.etag) {
      response.status = 304;
      return response;
    }
  }
  response.status = 200;
  if (request.method == "HEAD") return response;
  ENVB_ASSIGN_OR_RETURN(auto source, FileSource::open(path));
  ENVB_ASSIGN_OR_RETURN(response.body_bytes, copy_stream(*source, body));
  return response;
}

Result<HttpResponse> HttpClient::send(const HttpRequest& request, ByteSink& body) {
  if (request.url.starts_with("file://")) return send_file(request, body);
  const std::string what = request.method + " " + redact_url(request.url);
  if (!impl_->easy) {
    impl_->easy.reset(curl_easy_init());
    if (!impl_->easy) return fail(Errc::Internal, what + ": curl_easy_init failed");
  }
  CURL* c = impl_->easy.get();

  std::unique_ptr<curl_slist, SlistFree> headers;
  for (const auto& [name, value] : request.headers) {
    std::string line = name + ": " + value;
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (!next) return fail(Errc::Internal, what + ": curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
  }

  std::chrono::milliseconds backoff = options_.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    Transfer t;
    t.sink = &body;
    t.request = &request;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_reset(c);  // keeps the connection, DNS and TLS session caches
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, options_.max_redirects);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(
        c, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(std::chrono::milliseconds(options_.connect_timeout).count()));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip/deflate/br if the server offers
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (options_.use_netrc) {
      curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
      if (!options_.netrc_file.empty())
        curl_easy_setopt(c, CURLOPT_NETRC_FILE, options_.netrc_file.c_str());
    }
    if (request.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

    CURLcode rc = curl_easy_perform(c);
    const bool attempts_left = attempt < options_.max_retries;
    if (t.sink_error) return std::move(*t.sink_error).with_context(what);
    if (rc != CURLE_OK) {
      std::string detail = errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc);
      // curl's messages may quote the URL: redact whatever it says.
      std::string message = what + ": " + redact_url(trim(detail));
      if (attempt > 0) message += " (after " + std::to_string(attempt + 1) + " attempts)";
      Error error = fail(Errc::Network, std::move(message));
      const bool retry = retryable_curl(rc) && t.body_bytes == 0;
      if (retry && attempts_left) {
        std::this_thread::sleep_for(std::min(backoff, options_.max_backoff));
        backoff *= 2;
        continue;
      }
      return std::move(error).set_retryable(retryable_curl(rc));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if ((status >= 200 && status < 300) || status == 304) {
      HttpResponse response;
      response.status = status;
      response.headers = std::move(t.headers);
      response.etag = response.header("etag");
      response.last_modified = response.header("last-modified");
      response.content_type = response.header("content-type");
      char* effective = nullptr;
      curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
      if (effective) response.effective_url = effective;
      long version = 0;
      curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
      response.http_version = version == CURL_HTTP_VERSION_2_0   ? "2"
                              : version == CURL_HTTP_VERSION_3   ? "3"
                              : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                                 : "1.1";
      response.body_bytes = t.body_bytes;
      response.attempts = attempt + 1;
      return response;
    }
    if (http_status_retryable(status) && attempts_left) {
      auto wait = std::max(
          backoff, parse_retry_after(t.headers["retry-after"], std::chrono::system_clock::now()));
      std::this_thread::sleep_for(std::min(wait, options_.max_backoff));
      backoff *= 2;
      continue;
    }
    std::string message = what + ": " + std::to_string(status);
    if (auto phrase = http_reason_phrase(status); !phrase.empty())
      message += " " + std::string(phrase);
    if (attempt > 0) message += " (after " + std::to_string(attempt + 1) + " attempts)";
    std::string snippet = trim(t.error_body.substr(0, t.error_body.find('\n')));
    if (!snippet.empty() && snippet.size() < 200 && snippet.find('<') == std::string::npos)
      message += ": " + snippet;
    Errc code = (status == 404 || status == 410)   ? Errc::NotFound
                : (status == 401 || status == 403) ? Errc::Unauthorized
                                                   : Errc::Network;
    Error error = fail(code, message);
    if (code == Errc::Unauthorized)
      return std::move(error).with_hint(
          "check the credentials for this host (user:password@ in the URL, a conda token "
          "/t/<token>/, or ~/.netrc)");
    return std::move(error).set_retryable(http_status_retryable(status));
  }
}

std::vector<Result<void>> run_parallel(
    size_t count, size_t jobs, const HttpOptions& options,
    const std::function<Result<void>(size_t index, HttpClient& client)>& task) {
  std::vector<Result<void>> results(count);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    HttpClient client(options);
    for (size_t i = next++; i < count; i = next++) results[i] = task(i, client);
  };
  jobs = std::max<size_t>(1, std::min(jobs, count));
  std::vector<std::jthread> threads;
  for (size_t j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  return results;
}

}  // namespace envbuild::common
