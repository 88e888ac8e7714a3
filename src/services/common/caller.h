// Who is calling a service, and the links its answers carry (docs/SECURITY.md).
//
// The gateway authenticates every /api/ request and tells the service the caller in two headers
// (X-Dither-Owner, X-Dither-Admin). A service believes them because nothing else can send them:
// in one process the gateway calls the service's router directly; over HTTP the service's server
// refuses every request without the service token (http::ServerOptions::required_header).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/link_signer.h"
#include "http/router.h"
#include "ports/identity.h"

namespace dither {

inline constexpr std::string_view kOwnerHeader = "X-Dither-Owner";
inline constexpr std::string_view kAdminHeader = "X-Dither-Admin";
inline constexpr std::string_view kServiceTokenHeader = "X-Service-Token";

// The caller the gateway named; nullopt when it named none.
std::optional<Caller> caller_of(const http::RequestContext& c);
// 401 for a request that reached a service without a caller (not through the gateway's checks).
http::Response no_caller_response();

// A route handler for callers only: `f(context, caller)`, or no_caller_response() when the
// request names none.
template <class F>
http::SyncHandler with_caller(F f) {
  return [f = std::move(f)](const http::RequestContext& c) -> http::Response {
    const std::optional<Caller> caller = caller_of(c);
    if (!caller) return no_caller_response();
    return f(c, *caller);
  };
}

// How answers sign the file links they carry (url, url_dither).
struct LinkPolicy {
  const LinkSigner* signer = nullptr;  // null: links as stored (tests without a gateway)
  int64_t ttl_seconds = 3600;          // LINK_TTL_SECONDS
  std::string sign(std::string_view url) const;
};

}  // namespace dither
