// Who may use the gateway (docs/SECURITY.md): the host names it answers for, callers from API keys
// (Authorization: Bearer) or browser sessions (the dither_session cookie), the same-origin rule
// for cookie-authenticated changes, sessions handed out by the page, and the admin key routes.
//
// Lookups go to the IdentityStore; with `cache_seconds` > 0 a key or session checked once is
// believed for that long, and only while the store's revocation stamp stays where it was before
// the look-up (IdentityStore::revocation_stamp): with SQLite a revocation takes effect at once,
// with PostgreSQL (no stamp) within `cache_seconds`. A session is never believed past its
// expiry. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto.h"
#include "http/router.h"
#include "ports/identity.h"
#include "ports/records.h"

namespace dither {

inline constexpr std::string_view kSessionCookie = "dither_session";

struct AccessOptions {
  IdentityStore* store = nullptr;          // not owned
  std::string pepper;                      // API_KEY_PEPPER
  int cache_seconds = 0;                   // AUTH_CACHE_SECONDS
  int session_lifetime_days = 30;          // SESSION_LIFETIME_DAYS
  std::string public_base_url;             // its host (and port) is always allowed; https -> Secure
  std::vector<std::string> allowed_hosts;  // "host" (any port) or "host:port"; "*" = any
  bool loopback = true;  // the gateway listens on loopback: localhost names are allowed too
  std::function<int64_t()> wall_clock_ms = now_millis;  // Unix ms: sessions' times (tests set it)
};

class Access {
 public:
  explicit Access(AccessOptions options);

  // nullopt when the request's Host is one of ours; else the 421 to answer.
  std::optional<http::Response> check_host(const http::RequestContext& c) const;

  // The caller of an /api/ request, or the response refusing it (401, or 403 cross_origin).
  struct Outcome {
    std::optional<Caller> caller;
    std::optional<http::Response> refusal;
    std::string session_hash;  // when authenticated by the cookie
  };
  Outcome authenticate(const http::RequestContext& c);

  // For the page (GET /): whether the request's cookie names a live session; if not, the
  // gateway makes one (within the client address's budget for new sessions) with new_session,
  // which returns the Set-Cookie value. kUnavailable when the store cannot be read or written.
  Result<bool> has_live_session(const http::RequestContext& c);
  Result<std::string> new_session();

  // The routes the gateway answers itself: GET /api/me, POST/GET /api/keys,
  // DELETE /api/keys/{id}, DELETE /api/session. Each is given the authenticated caller.
  http::Response me(const Outcome& who) const;
  http::Response create_key(const http::RequestContext& c, const Caller& caller);
  http::Response list_keys(const Caller& caller);
  http::Response revoke_key(std::string_view id, const Caller& caller);
  http::Response end_session(const Outcome& who);

 private:
  Result<Caller> from_key(std::string_view key);
  Result<Caller> from_session(std::string_view session_id, std::string* hash);
  bool host_allowed(std::string_view host) const;
  std::string cookie(std::string_view value, int64_t max_age) const;

  AccessOptions options_;
  HmacSha256 peppered_;  // HMAC under options_.pepper, prepared once
  bool secure_ = false;
  std::string public_host_;    // lower-case "host" or "host:port" of PUBLIC_BASE_URL
  std::string public_origin_;  // "scheme://" + public_host_

  struct Cached {
    Caller caller;
    std::chrono::steady_clock::time_point until;
    std::optional<uint64_t> stamp;  // the store's revocation stamp before the look-up
    int64_t expires_at = 0;         // Unix ms; a session's expiry (0: a key's, none)
  };
  // Whether `cached` may still be believed at `now`, the store's stamp being `stamp`.
  bool believed(const Cached& cached, std::chrono::steady_clock::time_point now,
                const std::optional<uint64_t>& stamp) const;
  // Readers share the lock: two I/O threads checking cached keys never wait for each other.
  std::shared_mutex mutex_;
  std::map<std::string, Cached, std::less<>> keys_;      // HMAC of the key (bytes) -> caller
  std::map<std::string, Cached, std::less<>> sessions_;  // session hash -> caller
};

}  // namespace dither
