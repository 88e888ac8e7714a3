#include "adapters/http_fetch/curl_url_fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace dither {
namespace {

// ---- the address check ----------------------------------------------------------------------

// `a` in host byte order.
bool ipv4_allowed(uint32_t a, bool allow_loopback) {
  struct Range {
    uint32_t network;
    int bits;
  };
  static constexpr std::array<Range, 13> kRefused{{
      {0x00000000, 8},   // 0.0.0.0/8: "this network", 0.0.0.0 reaches the local host
      {0x0A000000, 8},   // 10/8 private
      {0x64400000, 10},  // 100.64/10 carrier-grade NAT (some clouds' metadata, 100.100.100.200)
      {0xA9FE0000, 16},  // 169.254/16 link-local, 169.254.169.254 cloud metadata
      {0xAC100000, 12},  // 172.16/12 private
      {0xC0000000, 24},  // 192.0.0/24 IETF protocol assignments
      {0xC0000200, 24},  // 192.0.2/24 documentation
      {0xC0A80000, 16},  // 192.168/16 private
      {0xC6120000, 15},  // 198.18/15 benchmarking
      {0xC6336400, 24},  // 198.51.100/24 documentation
      {0xCB007100, 24},  // 203.0.113/24 documentation
      {0xE0000000, 4},   // 224/4 multicast
      {0xF0000000, 4},   // 240/4 reserved, 255.255.255.255 broadcast
  }};
  if ((a >> 24) == 127) return allow_loopback;  // 127/8 loopback
  for (const Range& r : kRefused) {
    const uint32_t mask = ~uint32_t{0} << (32 - r.bits);
    if ((a & mask) == r.network) return false;
  }
  return true;
}

uint32_t ipv4_at(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

bool all_zero(const uint8_t* b, size_t n) {
  return std::all_of(b, b + n, [](uint8_t x) { return x == 0; });
}

bool ipv6_allowed(const uint8_t* b, bool allow_loopback) {
  // ::ffff:a.b.c.d (IPv4-mapped): the IPv4 address inside decides.
  if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff)
    return ipv4_allowed(ipv4_at(b + 12), allow_loopback);
  if (all_zero(b, 12)) {
    // ::1 loopback; :: unspecified and the deprecated IPv4-compatible ::a.b.c.d are refused.
    if (all_zero(b + 12, 3) && b[15] == 1) return allow_loopback;
    return false;
  }
  // 64:ff9b::/96 (NAT64, RFC 6052): the IPv4 address inside decides.
  static constexpr std::array<uint8_t, 4> kNat64{0x00, 0x64, 0xff, 0x9b};
  if (std::equal(kNat64.begin(), kNat64.end(), b) && all_zero(b + 4, 8)) {
    return ipv4_allowed(ipv4_at(b + 12), false);  // never the local host's loopback
  }
  // Only global unicast, 2000::/3: this refuses fe80::/10 link-local, fec0::/10 site-local,
  // fc00::/7 unique-local (fd00:ec2::254, a cloud metadata address), ff00::/8 multicast,
  // 64:ff9b:1::/48 local NAT64, 100::/64 discard and everything else reserved.
  if ((b[0] & 0xe0) != 0x20) return false;
  if (b[0] == 0x20 && b[1] == 0x01) {
    if (b[2] == 0x00 && b[3] == 0x00) return false;  // 2001::/32 Teredo (IPv4 inside, obscured)
    if (b[2] == 0x0d && b[3] == 0xb8) return false;  // 2001:db8::/32 documentation
    if (b[2] == 0x00 && b[3] == 0x02 && b[4] == 0x00 && b[5] == 0x00) {
      return false;  // 2001:2::/48 benchmarking
    }
  }
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0x00)
    return false;  // 3fff::/20 documentation
  // 2002::/16 (6to4): the IPv4 address in bits 16-47 decides.
  if (b[0] == 0x20 && b[1] == 0x02) return ipv4_allowed(ipv4_at(b + 2), false);
  return true;
}

std::string address_text(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  } else if (address->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
              sizeof text);
  }
  return text;
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view unbracketed(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

// ---- the transfer -----------------------------------------------------------------------------

struct Sink {
  std::vector<uint8_t> bytes;
  uint64_t max_bytes = 0;
  bool too_large = false;
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->bytes.size() + n > sink->max_bytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer
  }
  sink->bytes.insert(sink->bytes.end(), data, data + n);
  return n;
}

// The connect-time check: libcurl asks this for every socket it opens, for every address of every
// host (the first URL's and each redirect's), after its own name resolution. A refused address
// gets no socket, so not one packet goes to it.
struct SocketGuard {
  const FetchPolicy* policy = nullptr;
  bool refused = false;
  std::string refused_address;
};

curl_socket_t open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* guard = static_cast<SocketGuard*>(user);
  const FetchPolicy& policy = *guard->policy;
  const bool allowed =
      purpose == CURLSOCKTYPE_IPCXN &&
      (policy.address_check
           ? policy.address_check(&address->addr, address->addrlen)
           : fetch_address_allowed(&address->addr, address->addrlen, policy.allow_loopback));
  if (!allowed) {
    guard->refused = true;
    guard->refused_address = address_text(&address->addr);
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype, address->protocol);
}

// Failures that waiting will not cure: no such host, a certificate that does not verify, a
// malformed URL.
bool permanent(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_REMOTE_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

// A URL as it may be logged: no user information, query or fragment (signed links carry their
// signature in the query), at most 200 characters.
std::string shown(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  std::string out(url);
  if (const size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find('/', start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= start) out.erase(start, at + 1 - start);
  }
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string url_part(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return {};
  std::string out(value);
  curl_free(value);
  return out;
}

constexpr size_t kMaxRemembered = 10000;  // URLs whose failures are counted, at most

}  // namespace

bool fetch_address_allowed(const sockaddr* address, socklen_t length, bool allow_loopback) {
  if (address == nullptr) return false;
  if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return ipv4_allowed(ntohl(in->sin_addr.s_addr), allow_loopback);
  }
  if (address->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return ipv6_allowed(in6->sin6_addr.s6_addr, allow_loopback);
  }
  return false;
}

bool fetch_address_allowed(std::string_view ip, bool allow_loopback) {
  const std::string text(unbracketed(ip));
  sockaddr_in in{};
  if (inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    return fetch_address_allowed(reinterpret_cast<const sockaddr*>(&in), sizeof in, allow_loopback);
  }
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    return fetch_address_allowed(reinterpret_cast<const sockaddr*>(&in6), sizeof in6,
                                 allow_loopback);
  }
  return false;
}

bool fetch_host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  host = unbracketed(host);
  if (host.empty()) return false;
  return std::any_of(allowed.begin(), allowed.end(), [host](const std::string& entry) {
    const std::string_view e = unbracketed(entry);
    return e.size() == host.size() &&
           std::equal(e.begin(), e.end(), host.begin(),
                      [](char a, char b) { return ascii_lower(a) == ascii_lower(b); });
  });
}

CurlUrlFetcher::CurlUrlFetcher(FetchPolicy policy) : policy_(std::move(policy)) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

Result<std::vector<uint8_t>> CurlUrlFetcher::fetch(std::string_view url, uint64_t max_bytes) {
  const std::string target(url);
  Result<std::vector<uint8_t>> result = fetch_once(target, max_bytes);
  if (result || result.error().kind != ErrorKind::kUnavailable) {
    forget(target);
    return result;
  }
  if (attempts_exhausted(target)) {
    return make_error(ErrorKind::kNotFound, result.error().message + " (given up after " +
                                                std::to_string(policy_.max_attempts) +
                                                " attempts)");
  }
  return result;
}

bool CurlUrlFetcher::attempts_exhausted(const std::string& url) {
  const std::lock_guard lock(mutex_);
  if (failures_.size() >= kMaxRemembered && !failures_.contains(url)) failures_.clear();
  const int failures = ++failures_[url];
  if (failures < policy_.max_attempts) return false;
  failures_.erase(url);
  return true;
}

void CurlUrlFetcher::forget(const std::string& url) {
  const std::lock_guard lock(mutex_);
  failures_.erase(url);
}

Result<std::vector<uint8_t>> CurlUrlFetcher::fetch_once(const std::string& url,
                                                        uint64_t max_bytes) {
  if (policy_.allowed_hosts.empty()) {
    return make_error(ErrorKind::kUnsupported,
                      "fetching originals by URL is off (FETCH_ALLOWED_HOSTS is empty)");
  }
  const auto deadline = std::chrono::steady_clock::now() + policy_.timeout;
  std::string current = url;
  for (int redirects = 0;; ++redirects) {
    const std::string where = shown(current);
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
    if (!parsed) return make_error(ErrorKind::kInternal, "curl_url failed");
    if (curl_url_set(parsed.get(), CURLUPART_URL, current.c_str(), 0) != CURLUE_OK) {
      return make_error(ErrorKind::kInvalidArgument, "not a URL: " + where);
    }
    std::string scheme = url_part(parsed.get(), CURLUPART_SCHEME);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), ascii_lower);
    if (scheme != "http" && scheme != "https") {
      return make_error(ErrorKind::kInvalidArgument, "not an http(s) URL: " + where);
    }
    const std::string host = url_part(parsed.get(), CURLUPART_HOST);
    if (!fetch_host_allowed(host, policy_.allowed_hosts)) {
      return make_error(ErrorKind::kUnsupported, "fetching " + where + ": host '" +
                                                     host.substr(0, 100) +
                                                     "' is not in FETCH_ALLOWED_HOSTS");
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return make_error(ErrorKind::kUnavailable, "fetching " + where + ": out of time");
    }

    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return make_error(ErrorKind::kInternal, "curl_easy_init failed");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve(nullptr,
                                                                        curl_slist_free_all);
    for (const std::string& entry : policy_.resolve) {
      resolve.reset(curl_slist_append(resolve.release(), entry.c_str()));
    }
    Sink sink;
    sink.max_bytes = max_bytes;
    SocketGuard guard;
    guard.policy = &policy_;
    CURL* c = curl.get();
    // The URL exactly as checked above.
    curl_easy_setopt(c, CURLOPT_CURLU, parsed.get());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // followed below, each target checked
    // No proxy, whatever http_proxy, https_proxy or ALL_PROXY say: a proxy would make the
    // connect-time check see the proxy's address instead of the target's.
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &guard);
    if (resolve) curl_easy_setopt(c, CURLOPT_RESOLVE, resolve.get());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(policy_.connect_timeout, left).count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dither-fetch/1");
    const CURLcode rc = curl_easy_perform(c);

    if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      return make_error(ErrorKind::kTooLarge, "the file at " + where + " is over " +
                                                  std::to_string(max_bytes) + " bytes");
    }
    if (rc != CURLE_OK && guard.refused) {
      return make_error(ErrorKind::kUnsupported,
                        "fetching " + where + ": host '" + host.substr(0, 100) +
                            "' is at a refused address (" + guard.refused_address + ")");
    }
    if (rc != CURLE_OK) {
      return make_error(permanent(rc) ? ErrorKind::kNotFound : ErrorKind::kUnavailable,
                        "fetching " + where + ": " + curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (is_redirect(status)) {
      char* location = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
      if (location == nullptr || *location == '\0') {
        return make_error(ErrorKind::kInvalidArgument, "fetching " + where + ": HTTP " +
                                                           std::to_string(status) +
                                                           " without a usable Location");
      }
      if (redirects >= policy_.max_redirects) {
        return make_error(ErrorKind::kInvalidArgument, "fetching " + shown(url) + ": more than " +
                                                           std::to_string(policy_.max_redirects) +
                                                           " redirects");
      }
      current = location;
      continue;
    }
    if (status == 404 || status == 410) {
      return make_error(ErrorKind::kNotFound, "no file at " + where);
    }
    if (status >= 500 || status == 429) {
      return make_error(ErrorKind::kUnavailable,
                        "fetching " + where + ": HTTP " + std::to_string(status));
    }
    if (status != 200) {
      return make_error(ErrorKind::kInvalidArgument,
                        "fetching " + where + ": HTTP " + std::to_string(status));
    }
    return std::move(sink.bytes);
  }
}

}  // namespace dither
