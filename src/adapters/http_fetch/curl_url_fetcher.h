// UrlFetcher over libcurl, made safe for URLs that come from messages (issue 13, item 6;
// docs/SECURITY.md "URL fetcher"):
// - only hosts on an allow-list (exact, case-insensitive); an empty list turns fetching off;
// - every address libcurl is about to connect to is checked first (fetch_address_allowed):
//   loopback, private, link-local, unique-local, unspecified, multicast, broadcast, carrier-grade
//   NAT, cloud metadata and IPv4 hidden in IPv6 are refused, so DNS rebinding gains nothing;
// - redirects are followed here, not by libcurl: at most `max_redirects`, each target's host must
//   be on the list too, and its connection goes through the same address check;
// - http and https only, no proxy (the environment's proxy variables are ignored), bounded time
//   and size;
// - a URL that keeps failing in a way that waiting might cure (kUnavailable) is given up after
//   `max_attempts` tries (counted per URL in this process): then a permanent error.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ports/url_fetcher.h"

namespace dither {

struct FetchPolicy {
  // FETCH_ALLOWED_HOSTS: host names (or IP literals) that may be fetched from; empty = none.
  std::vector<std::string> allowed_hosts;
  // FETCH_ALLOW_LOOPBACK: also connect to 127.0.0.0/8 and ::1 (for tests only).
  bool allow_loopback = false;
  int max_redirects = 3;
  // kUnavailable failures of one URL before it is given up (a permanent error from then on).
  int max_attempts = 5;
  std::chrono::milliseconds timeout{30000};  // the whole fetch, redirects included
  std::chrono::milliseconds connect_timeout{5000};

  // For tests only. `resolve`: libcurl's CURLOPT_RESOLVE entries ("host:port:address") that pin
  // names to addresses without DNS. `address_check`: replaces fetch_address_allowed (with
  // allow_loopback) as the connect-time check.
  std::vector<std::string> resolve;
  std::function<bool(const sockaddr*, socklen_t)> address_check;
};

// Whether a connection to this address is allowed: false for loopback (unless `allow_loopback`),
// 0.0.0.0/8, 10/8, 100.64/10, 169.254/16 (metadata 169.254.169.254 included), 172.16/12,
// 192.0.0/24, 192.168/16, 198.18/15, documentation ranges, 224/4 multicast, 240/4 and broadcast;
// IPv6 outside 2000::/3 (::, ::1, fe80::/10, fc00::/7 with fd00:ec2::254, ff00::/8, ...), and
// Teredo, 6to4 and documentation prefixes; ::ffff:a.b.c.d, 64:ff9b::a.b.c.d and 6to4 are judged
// by the IPv4 address inside (NAT64 and 6to4 never as loopback: that would not be this host).
// Anything but AF_INET/AF_INET6 is refused.
bool fetch_address_allowed(const sockaddr* address, socklen_t length, bool allow_loopback);
// The same for an address in text ("10.0.0.1", "::ffff:127.0.0.1"); false when it is not one.
bool fetch_address_allowed(std::string_view ip, bool allow_loopback);

// Whether `host` (as in a URL: a name, an IPv4 literal, or an IPv6 literal with or without
// brackets) is on `allowed`: exact match, ASCII case-insensitive.
bool fetch_host_allowed(std::string_view host, const std::vector<std::string>& allowed);

class CurlUrlFetcher : public UrlFetcher {
 public:
  explicit CurlUrlFetcher(FetchPolicy policy = {});
  // Errors: kUnsupported when fetching is off, the host is not allowed or every address it
  // resolves to is refused; kInvalidArgument for another scheme, a malformed URL, a redirect
  // without a target or one too many; otherwise as UrlFetcher says. Messages name the URL without
  // its query (signed links carry signatures) and are meant for the log only.
  Result<std::vector<uint8_t>> fetch(std::string_view url, uint64_t max_bytes) override;

 private:
  Result<std::vector<uint8_t>> fetch_once(const std::string& url, uint64_t max_bytes);
  // Counts a kUnavailable failure of `url`; true when it was the last attempt allowed.
  bool attempts_exhausted(const std::string& url);
  void forget(const std::string& url);

  FetchPolicy policy_;
  std::mutex mutex_;
  std::unordered_map<std::string, int> failures_;  // kUnavailable failures per URL
};

}  // namespace dither
