#include "oci/registry/auth.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>

#include <arpa/inet.h>

#include <nlohmann/json.hpp>

#include "common/ascii.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/json.hpp"
#include "common/url.hpp"

namespace envbuild::oci::registry {

namespace {

std::string getenv_or(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "host:5000" stays.
std::string auth_key_host(std::string_view key) {
  if (auto p = key.find("://"); p != std::string_view::npos) key.remove_prefix(p + 3);
  if (auto p = key.find('/'); p != std::string_view::npos) key = key.substr(0, p);
  return common::ascii_lower(key);
}

bool host_matches(std::string_view key, std::string_view host) {
  std::string k = auth_key_host(key);
  std::string h = common::ascii_lower(host);
  auto docker_hub = [](const std::string& x) {
    return x == "docker.io" || x == "index.docker.io" || x == "registry-1.docker.io";
  };
  return k == h || (docker_hub(k) && docker_hub(h));
}

// The domain a host belongs to for credentials: an IP address is its own; a DNS name is
// known by its last two labels (the go-containerregistry rule: it lets auth.docker.io serve
// registry-1.docker.io without a public-suffix list, at the price of trusting siblings under a
// shared suffix such as co.uk).
std::string site_of(const std::string& host) {
  in_addr v4{};
  if (host.starts_with('[') || inet_pton(AF_INET, host.c_str(), &v4) == 1) return host;
  std::string name = host;
  while (!name.empty() && name.back() == '.') name.pop_back();
  size_t last = name.rfind('.');
  if (last == std::string::npos || last == 0) return name;
  size_t before = name.rfind('.', last - 1);
  return before == std::string::npos ? name : name.substr(before + 1);
}

}  // namespace

bool realm_may_receive_credentials(const common::Origin& realm, const common::Origin& registry) {
  return realm.host == registry.host || site_of(realm.host) == site_of(registry.host);
}

Result<Credentials> parse_creds(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return fail(Errc::InvalidInput, "--creds must be USERNAME:PASSWORD");
  return Credentials{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1)),
                     "--creds"};
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z')
      v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      v = ch - '0' + 52;
    else if (ch == '+' || ch == '-')
      v = 62;
    else if (ch == '/' || ch == '_')
      v = 63;
    else if (ch == '=' || ch == '\n' || ch == '\r')
      continue;
    else
      return fail(Errc::InvalidInput, "invalid base64 character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

Result<std::optional<Credentials>> lookup_credentials_in(const std::vector<std::string>& files,
                                                         std::string_view host) {
  for (const auto& file : files) {
    std::error_code ec;
    if (file.empty() || !std::filesystem::is_regular_file(file, ec)) continue;
    ENVB_ASSIGN_OR_RETURN(std::string text, common::read_file(file, 4u << 20));
    ENVB_ASSIGN_OR_RETURN(nlohmann::json j, common::parse_json(text, file));
    if (!j.is_object()) return fail(Errc::InvalidInput, file + ": not a JSON object");
    if (!j.contains("auths") || !j["auths"].is_object()) continue;
    for (const auto& [key, entry] : j["auths"].items()) {
      if (!host_matches(key, host) || !entry.is_object()) continue;
      Credentials c;
      c.source = file;
      if (entry.contains("auth") && entry["auth"].is_string() &&
          !entry["auth"].get<std::string>().empty()) {
        // Never quote the value: it is the secret.
        auto decoded = base64_decode(entry["auth"].get<std::string>());
        if (!decoded)
          return fail(Errc::InvalidInput, file + ": auths." + key + ".auth is not valid base64");
        auto colon = decoded->find(':');
        if (colon == std::string::npos)
          return fail(Errc::InvalidInput,
                      file + ": auths." + key + ".auth does not decode to user:password");
        c.username = decoded->substr(0, colon);
        c.password = decoded->substr(colon + 1);
      } else {
        c.username = entry.value("username", std::string());
        c.password = entry.value("password", std::string());
      }
      if (c.username.empty() && c.password.empty()) continue;
      return std::optional<Credentials>(std::move(c));
    }
  }
  return std::optional<Credentials>();
}

Result<std::optional<Credentials>> lookup_credentials(std::string_view host) {
  std::vector<std::string> files;
  files.push_back(getenv_or("REGISTRY_AUTH_FILE"));
  if (auto xdg = getenv_or("XDG_RUNTIME_DIR"); !xdg.empty())
    files.push_back(xdg + "/containers/auth.json");
  if (auto dc = getenv_or("DOCKER_CONFIG"); !dc.empty())
    files.push_back(dc + "/config.json");
  else if (auto home = getenv_or("HOME"); !home.empty())
    files.push_back(home + "/.docker/config.json");
  return lookup_credentials_in(files, host);
}

std::string Challenge::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

Result<Challenge> parse_challenge(std::string_view header) {
  auto bad = [&](std::string why) {
    return fail(Errc::InvalidInput,
                "WWW-Authenticate '" + std::string(header.substr(0, 200)) + "': " + why);
  };
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
  };
  skip_ws();
  size_t start = i;
  while (i < header.size() && header[i] != ' ') ++i;
  Challenge c;
  c.scheme = common::ascii_lower(header.substr(start, i - start));
  if (c.scheme.empty()) return bad("no scheme");
  while (i < header.size()) {
    skip_ws();
    if (i < header.size() && header[i] == ',') {
      ++i;
      continue;
    }
    size_t name_start = i;
    while (i < header.size() && header[i] != '=' && header[i] != ',' && header[i] != ' ') ++i;
    std::string name = common::ascii_lower(header.substr(name_start, i - name_start));
    skip_ws();
    if (i >= header.size() || header[i] != '=') {
      if (name.empty()) break;
      return bad("parameter '" + name + "' has no value");
    }
    ++i;
    skip_ws();
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      bool closed = false;
      while (i < header.size()) {
        char ch = header[i++];
        if (ch == '\\' && i < header.size()) {
          value += header[i++];
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value += ch;
        }
      }
      if (!closed) return bad("unterminated quoted value of '" + name + "'");
    } else {
      size_t v_start = i;
      while (i < header.size() && header[i] != ',') ++i;
      value = std::string(header.substr(v_start, i - v_start));
      while (!value.empty() && value.back() == ' ') value.pop_back();
    }
    c.params[name] = std::move(value);
  }
  return c;
}

Authenticator::Authenticator(std::optional<Credentials> credentials,
                             std::vector<std::string> scopes)
    : credentials_(std::move(credentials)), scopes_(std::move(scopes)) {}

std::string Authenticator::header() const {
  std::lock_guard lock(mutex_);
  return header_;
}

void Authenticator::add_scope(std::string scope) {
  std::lock_guard lock(mutex_);
  if (std::find(scopes_.begin(), scopes_.end(), scope) == scopes_.end())
    scopes_.push_back(std::move(scope));
}

Result<void> Authenticator::refresh(const Challenge& challenge, const std::string& seen,
                                    const std::string& registry, common::HttpClient& client) {
  std::lock_guard lock(mutex_);
  if (header_ != seen) return ok();  // another thread already answered this challenge
  if (challenge.scheme == "basic") {
    if (!credentials_)
      return fail(Errc::Unauthorized, "the registry asks for a user name and password")
          .with_hint("pass --creds USER:PASS, or log in with `podman login` / `docker login`");
    std::string next =
        "Basic " + base64_encode(credentials_->username + ":" + credentials_->password);
    if (next == seen)
      return fail(Errc::Unauthorized, "the registry refused the credentials of user '" +
                                          credentials_->username + "' (from " +
                                          credentials_->source + ")");
    header_ = std::move(next);
    return ok();
  }
  if (challenge.scheme == "bearer") {
    ENVB_ASSIGN_OR_RETURN(std::string token, fetch_token(challenge, registry, client));
    std::string next = "Bearer " + token;
    if (next == seen) return fail(Errc::Unauthorized, "the registry refused a fresh token");
    header_ = std::move(next);
    return ok();
  }
  return fail(Errc::Unsupported,
              "the registry asks for authentication scheme '" + challenge.scheme + "'");
}

Result<std::string> Authenticator::fetch_token(const Challenge& challenge,
                                               const std::string& registry,
                                               common::HttpClient& client) const {
  std::string realm = challenge.param("realm");
  if (realm.empty()) return fail(Errc::InvalidInput, "Bearer challenge without a realm");
  ENVB_ASSIGN_OR_RETURN(common::Origin realm_origin,
                        common::url_origin(realm).context("the registry's token realm"));
  ENVB_ASSIGN_OR_RETURN(common::Origin registry_origin, common::url_origin(registry));
  // The realm comes from the registry's answer: it decides where the credentials would go, so
  // it gets them only on the registry's terms (docs/security.md "Network").
  if (registry_origin.scheme == "https" && realm_origin.scheme == "http")
    return fail(Errc::Unauthorized, "the registry " + registry_origin.host +
                                        " (https) sends token requests to the plain-http realm " +
                                        common::redact_url(realm) + ": refused");
  if (credentials_ && !realm_may_receive_credentials(realm_origin, registry_origin))
    return fail(Errc::Unauthorized, "the registry " + registry_origin.host +
                                        " sends token requests to " + realm_origin.host +
                                        ", which is neither its host nor in its domain: the " +
                                        "credentials of user '" + credentials_->username +
                                        "' (from " + credentials_->source + ") are not sent there")
        .with_hint(
            "pull without credentials if the image is public; otherwise the registry's "
            "token service must be on the registry's host or domain");
  std::vector<std::string> scopes = scopes_;
  if (auto s = challenge.param("scope");
      !s.empty() && std::find(scopes.begin(), scopes.end(), s) == scopes.end())
    scopes.push_back(s);
  std::string url = realm;
  char sep = realm.find('?') == std::string::npos ? '?' : '&';
  auto add = [&](std::string_view name, std::string_view value) {
    url += sep;
    url += name;
    url += '=';
    url += common::url_escape(value);
    sep = '&';
  };
  if (auto service = challenge.param("service"); !service.empty()) add("service", service);
  for (const auto& s : scopes) add("scope", s);
  if (credentials_) add("account", credentials_->username);

  common::HttpRequest req;
  req.url = url;
  req.follow_redirects = true;  // the client drops the Authorization on a hop elsewhere
  req.metadata = true;
  req.max_body = 1u << 20;
  if (credentials_)
    req.headers.emplace_back(
        "Authorization",
        "Basic " + base64_encode(credentials_->username + ":" + credentials_->password));
  ENVB_ASSIGN_OR_RETURN(common::HttpResponse resp,
                        client.perform(req).context("fetching a registry token"));
  if (!resp.ok()) {
    auto err =
        common::http_status_error("GET", url, resp).with_context("fetching a registry token");
    if (resp.status == 401 && !credentials_)
      return std::move(err).with_hint("pass --creds USER:PASS, or log in with podman/docker");
    return err;
  }
  auto j = common::parse_json(resp.body, "token response").value_or(nlohmann::json());
  if (!j.is_object())
    return fail(Errc::InvalidInput,
                "GET " + common::redact_url(url) + ": token response is not JSON");
  for (const char* field : {"token", "access_token"})
    if (j.contains(field) && j[field].is_string() && !j[field].get<std::string>().empty())
      return j[field].get<std::string>();
  return fail(Errc::InvalidInput,
              "GET " + common::redact_url(url) + ": token response has no token");
}

}  // namespace envbuild::oci::registry
