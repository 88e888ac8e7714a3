// Rate limits (issue 13, docs/SECURITY.md "Limits"): token buckets per owner and per client
// address, with separate budgets for uploads, dither requests and everything else (reads). A
// bucket refills continuously at the budget's rate and holds `burst_seconds` of it (at least one
// token); a request takes one token; an empty bucket answers 429 with Retry-After. Buckets live in
// this gateway process (each instance counts its own). Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/router.h"
#include "ports/identity.h"

namespace dither {

// Token buckets keyed by strings.
class TokenBuckets {
 public:
  using Clock = std::chrono::steady_clock;
  // `max_keys`: past it, full (idle) buckets are forgotten; if all are busy, the oldest go.
  explicit TokenBuckets(size_t max_keys = 200000) : max_keys_(max_keys) {}
  // Takes one token from `key`'s bucket, which refills at `per_minute` and holds `capacity`
  // tokens (0: per_minute). nullopt when taken; else how long until one is there.
  std::optional<std::chrono::milliseconds> take(std::string_view key, int per_minute,
                                                Clock::time_point now, double capacity = 0);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point at;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr size_t kShards = 16;
  std::array<Shard, kShards> shards_;
  const size_t max_keys_;
};

// kSession: new browser sessions (GET / without a live session cookie), per client address only.
enum class Budget { kUpload, kDither, kRead, kSession };

struct RateLimitOptions {
  int uploads_per_minute = 120;  // RATE_LIMIT_UPLOADS (per owner; 0 = none)
  int dithers_per_minute = 240;  // RATE_LIMIT_DITHERS
  int reads_per_minute = 6000;   // RATE_LIMIT_READS: every other request
  int sessions_per_minute = 15;  // RATE_LIMIT_SESSIONS: new browser sessions
  int burst_seconds = 10;        // RATE_LIMIT_BURST_SECONDS: a full bucket holds this much budget
  // RATE_LIMIT_TARPIT_MS: a 429 is sent this much later (http::Response::delay), so that each
  // connection of a client over its rate asks at most once per delay; 0: at once.
  std::chrono::milliseconds tarpit{1000};
  int address_factor = 4;  // RATE_LIMIT_ADDRESS_FACTOR: a client address gets this many
                           // owners' budgets (people behind one NAT)
  std::vector<std::string>
      trusted_proxies{};  // TRUSTED_PROXIES: peers whose X-Forwarded-For counts
};

class RateLimits {
 public:
  explicit RateLimits(RateLimitOptions options);

  // Which budget a request draws on.
  static Budget budget_of(http::Verb verb, std::string_view path);
  // The client's address: the TCP peer, or, when the peer is a trusted proxy, the right-most
  // address of X-Forwarded-For that is not itself a trusted proxy.
  std::string client_address(const http::RequestContext& c) const;
  std::string client_address(std::string_view peer, std::string_view forwarded_for) const;
  // nullopt when the client address may go on; else the 429 to answer.
  std::optional<http::Response> check_address(const http::RequestContext& c, Budget budget);
  // nullopt when the owner may go on (admins always may); else the 429.
  std::optional<http::Response> check_owner(const Caller& caller, Budget budget);

 private:
  int per_minute(Budget budget) const;
  std::optional<http::Response> take(const std::string& key, Budget budget, int per_minute);
  bool trusted(std::string_view address) const;

  RateLimitOptions options_;
  TokenBuckets buckets_;
};

}  // namespace dither
