#include "gateway/limits.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "http/errors.h"

namespace dither {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view budget_name(Budget b) {
  switch (b) {
    case Budget::kUpload:
      return "uploads";
    case Budget::kDither:
      return "dither requests";
    case Budget::kSession:
      return "new sessions";
    case Budget::kRead:
      break;
  }
  return "requests";
}

}  // namespace

std::optional<std::chrono::milliseconds> TokenBuckets::take(std::string_view key, int per_minute,
                                                            Clock::time_point now,
                                                            double capacity) {
  if (capacity <= 0) capacity = per_minute;
  const double per_ms = per_minute / 60000.0;
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_keys_ / kShards) {
      // Forget the buckets that are full again (idle clients); if none is, the whole shard.
      std::erase_if(shard.buckets, [&](const auto& entry) {
        const double ms = std::chrono::duration<double, std::milli>(now - entry.second.at).count();
        return entry.second.tokens + ms * per_ms >= capacity;
      });
      if (shard.buckets.size() >= max_keys_ / kShards) shard.buckets.clear();
    }
    it = shard.buckets.emplace(std::string(key), Bucket{capacity, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double, std::milli>(now - b.at).count();
  b.tokens = std::min(capacity, b.tokens + std::max(0.0, elapsed) * per_ms);
  b.at = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  return std::chrono::milliseconds{static_cast<int64_t>(std::ceil((1.0 - b.tokens) / per_ms))};
}

RateLimits::RateLimits(RateLimitOptions options) : options_(std::move(options)) {}

Budget RateLimits::budget_of(http::Verb verb, std::string_view path) {
  if (verb == http::Verb::post && path == "/api/images") return Budget::kUpload;
  if (verb == http::Verb::post && path.starts_with("/api/dithers/")) return Budget::kDither;
  return Budget::kRead;
}

bool RateLimits::trusted(std::string_view address) const {
  return std::find(options_.trusted_proxies.begin(), options_.trusted_proxies.end(), address) !=
         options_.trusted_proxies.end();
}

std::string RateLimits::client_address(const http::RequestContext& c) const {
  return client_address(c.remote_address, c.header("X-Forwarded-For"));
}

std::string RateLimits::client_address(std::string_view peer, std::string_view forwarded) const {
  if (peer.empty() || !trusted(peer)) return std::string(peer);
  // Right to left: the entries the trusted proxies added; the first other one is the client.
  while (!forwarded.empty()) {
    const size_t comma = forwarded.rfind(',');
    const std::string_view item =
        trim(comma == std::string_view::npos ? forwarded : forwarded.substr(comma + 1));
    forwarded = comma == std::string_view::npos ? std::string_view{} : forwarded.substr(0, comma);
    if (item.empty()) continue;
    if (!trusted(item)) return std::string(item.substr(0, 64));
  }
  return std::string(peer);
}

int RateLimits::per_minute(Budget budget) const {
  switch (budget) {
    case Budget::kUpload:
      return options_.uploads_per_minute;
    case Budget::kDither:
      return options_.dithers_per_minute;
    case Budget::kSession:
      return options_.sessions_per_minute;
    case Budget::kRead:
      break;
  }
  return options_.reads_per_minute;
}

std::optional<http::Response> RateLimits::take(const std::string& key, Budget budget, int limit) {
  if (limit <= 0) return std::nullopt;
  const double burst = std::max(1.0, limit * options_.burst_seconds / 60.0);
  const auto wait = buckets_.take(key, limit, TokenBuckets::Clock::now(), burst);
  if (!wait) return std::nullopt;
  const int64_t seconds = std::max<int64_t>(1, (wait->count() + 999) / 1000);
  http::Response r = http::error_response(
      429, "rate_limited",
      "too many " + std::string(budget_name(budget)) + " (at most " + std::to_string(limit) +
          " a minute); try again in " + std::to_string(seconds) + " s");
  r.headers.emplace_back("Retry-After", std::to_string(seconds));
  r.delay = options_.tarpit;
  return r;
}

std::optional<http::Response> RateLimits::check_address(const http::RequestContext& c,
                                                        Budget budget) {
  const std::string address = client_address(c);
  if (address.empty()) return std::nullopt;  // in process: no client
  const int64_t limit = int64_t{per_minute(budget)} * options_.address_factor;
  return take("a/" + std::to_string(static_cast<int>(budget)) + "/" + address, budget,
              static_cast<int>(std::min<int64_t>(limit, 1'000'000'000)));
}

std::optional<http::Response> RateLimits::check_owner(const Caller& caller, Budget budget) {
  if (caller.admin) return std::nullopt;
  return take("o/" + std::to_string(static_cast<int>(budget)) + "/" + caller.owner, budget,
              per_minute(budget));
}

}  // namespace dither
