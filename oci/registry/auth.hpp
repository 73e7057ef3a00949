#pragma once

// Registry authentication: credentials (--creds, podman's auth.json, Docker's config.json), the
// WWW-Authenticate challenge (RFC 7235; Docker token auth spec "token.md"), and the Basic and
// Bearer token flows. Secrets never appear in messages: only the user name and where it came
// from do. Where secrets may go (docs/security.md "Network"): the registry's Authorization to its
// own origin only (Repository::send), the Basic credentials to a token realm only over https (or
// http when the registry itself is plain http) and only on the registry's host or in its domain
// (realm_may_receive_credentials()).

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http.hpp"
#include "common/result.hpp"
#include "common/url.hpp"

namespace envbuild::oci::registry {

struct Credentials {
  std::string username;
  std::string password;
  std::string source;  // "--creds", "/root/.docker/config.json" (for messages)
};

/// Parses "user:pass" (what --creds takes); the password may contain ':'.
Result<Credentials> parse_creds(std::string_view text);

/// The credentials stored for `host`, looked up like skopeo: $REGISTRY_AUTH_FILE,
/// ${XDG_RUNTIME_DIR}/containers/auth.json, then $DOCKER_CONFIG/config.json or
/// ~/.docker/config.json. Each file's `auths` keys may be "host", "https://host" or
/// "https://host/v1/"; docker.io also matches index.docker.io. Entries hold a base64 `auth`
/// ("user:pass") or `username`/`password`. nullopt when none is stored; an unreadable or
/// malformed file is an error naming it.
Result<std::optional<Credentials>> lookup_credentials(std::string_view host);

/// A credentials lookup in explicit files, in order (for tests and the above).
Result<std::optional<Credentials>> lookup_credentials_in(const std::vector<std::string>& files,
                                                         std::string_view host);

/// One challenge of a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`.
struct Challenge {
  std::string scheme;                         // lower-case: "basic", "bearer"
  std::map<std::string, std::string> params;  // names lower-cased
  [[nodiscard]] std::string param(const std::string& name) const;
};

/// Parses a WWW-Authenticate value (quoted strings with escapes, commas inside quotes).
Result<Challenge> parse_challenge(std::string_view header);

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

/// Whether a registry's Basic credentials may go to a token realm at `realm`: the same host (any
/// port), or DNS names in the same domain by their last two labels (registry-1.docker.io and
/// auth.docker.io, registry.gitlab.com and gitlab.com), as go-containerregistry checks; IP
/// addresses only when equal. The scheme is checked apart (no https registry takes a plain-http
/// realm).
bool realm_may_receive_credentials(const common::Origin& realm, const common::Origin& registry);

/// The Authorization header shared by the threads working on one repository. On a 401 the
/// caller passes the challenge to refresh(), which answers Basic with the credentials or fetches
/// a Bearer token from the challenge's realm for `scopes` (plus the challenge's own scope).
/// Thread-safe.
class Authenticator {
 public:
  Authenticator(std::optional<Credentials> credentials, std::vector<std::string> scopes);

  /// The current Authorization header value, or "" (anonymous).
  [[nodiscard]] std::string header() const;

  /// Answers a challenge of the registry at `registry` (its origin, "https://host:port");
  /// `seen` is the header value the failed request used (so that several threads hitting the
  /// same 401 fetch one token). Unauthorized when there is nothing to try, and when the realm is
  /// one the credentials may not go to (plain http for an https registry, another site).
  Result<void> refresh(const Challenge& challenge, const std::string& seen,
                       const std::string& registry, common::HttpClient& client);

  [[nodiscard]] bool has_credentials() const noexcept { return credentials_.has_value(); }
  /// Adds a scope ("repository:other/repo:pull" for a cross-repository mount).
  void add_scope(std::string scope);

 private:
  Result<std::string> fetch_token(const Challenge& challenge, const std::string& registry,
                                  common::HttpClient& client) const;

  std::optional<Credentials> credentials_;
  std::vector<std::string> scopes_;
  mutable std::mutex mutex_;
  std::string header_;  // guarded by mutex_
};

}  // namespace envbuild::oci::registry
