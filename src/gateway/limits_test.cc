#include "gateway/limits.h"

#include <gtest/gtest.h>

#include "http/router.h"

namespace dither {
namespace {

using namespace std::chrono_literals;

TEST(TokenBuckets, AMinutesBudgetThenOneTokenAtATime) {
  TokenBuckets buckets;
  const auto t0 = TokenBuckets::Clock::now();
  for (int i = 0; i < 60; ++i) EXPECT_FALSE(buckets.take("k", 60, t0)) << i;
  const auto wait = buckets.take("k", 60, t0);
  ASSERT_TRUE(wait);
  EXPECT_NEAR(static_cast<double>(wait->count()), 1000.0, 2.0);
  EXPECT_TRUE(buckets.take("k", 60, t0 + 500ms)) << "half a token is not one";
  EXPECT_FALSE(buckets.take("k", 60, t0 + 1001ms));
  EXPECT_FALSE(buckets.take("other", 60, t0)) << "each key has its own bucket";
  // Refilled at most to the budget, however long the pause.
  for (int i = 0; i < 60; ++i) EXPECT_FALSE(buckets.take("k", 60, t0 + 1h)) << i;
  EXPECT_TRUE(buckets.take("k", 60, t0 + 1h));
}

// A bucket may hold less than a minute's budget (RATE_LIMIT_BURST_SECONDS): the burst is smaller,
// the rate the same.
TEST(TokenBuckets, ABurstSmallerThanAMinute) {
  TokenBuckets buckets;
  const auto t0 = TokenBuckets::Clock::now();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(buckets.take("k", 60, t0, 10)) << i;
  EXPECT_TRUE(buckets.take("k", 60, t0, 10));
  EXPECT_FALSE(buckets.take("k", 60, t0 + 1001ms, 10));
  EXPECT_TRUE(buckets.take("k", 60, t0 + 1001ms, 10));
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(buckets.take("k", 60, t0 + 1h, 10)) << i;
  EXPECT_TRUE(buckets.take("k", 60, t0 + 1h, 10));
}

TEST(TokenBuckets, BoundedNumberOfKeys) {
  TokenBuckets buckets(16 * 4);
  const auto t0 = TokenBuckets::Clock::now();
  for (int i = 0; i < 10000; ++i) buckets.take("client-" + std::to_string(i), 10, t0);
  // Still answers; forgotten buckets start full again.
  EXPECT_FALSE(buckets.take("client-1", 10, t0 + 1s));
}

http::Request request_with(std::string_view forwarded) {
  http::Request r{http::Verb::get, "/api/images", 11};
  if (!forwarded.empty()) r.set("X-Forwarded-For", forwarded);
  return r;
}

TEST(RateLimits, ClientAddressTrustsOnlyConfiguredProxies) {
  RateLimits limits({.trusted_proxies = {"10.0.0.1", "10.0.0.2"}});
  const http::Request spoofed = request_with("1.2.3.4");
  EXPECT_EQ(limits.client_address({spoofed, "/", {}, {}, "r", "203.0.113.9"}), "203.0.113.9")
      << "an untrusted peer's X-Forwarded-For is ignored";
  EXPECT_EQ(limits.client_address({spoofed, "/", {}, {}, "r", "10.0.0.1"}), "1.2.3.4");
  const http::Request chain = request_with("6.6.6.6, 198.51.100.7, 10.0.0.2");
  EXPECT_EQ(limits.client_address({chain, "/", {}, {}, "r", "10.0.0.1"}), "198.51.100.7")
      << "the right-most address no trusted proxy added; what the client wrote is not believed";
  const http::Request none = request_with("");
  EXPECT_EQ(limits.client_address({none, "/", {}, {}, "r", "10.0.0.1"}), "10.0.0.1");
}

TEST(RateLimits, BudgetsPerOwnerAndAddressWith429AndRetryAfter) {
  RateLimits limits({.uploads_per_minute = 2,
                     .dithers_per_minute = 3,
                     .reads_per_minute = 5,
                     .burst_seconds = 60,
                     .address_factor = 2});
  EXPECT_EQ(RateLimits::budget_of(http::Verb::post, "/api/images"), Budget::kUpload);
  EXPECT_EQ(RateLimits::budget_of(http::Verb::post, "/api/dithers/{uuid}/{channels}"),
            Budget::kDither);
  EXPECT_EQ(RateLimits::budget_of(http::Verb::get, "/api/images"), Budget::kRead);
  const Caller alice{.owner = "alice"};
  const Caller admin{.owner = "root", .admin = true};
  EXPECT_FALSE(limits.check_owner(alice, Budget::kUpload));
  EXPECT_FALSE(limits.check_owner(alice, Budget::kUpload));
  const auto refused = limits.check_owner(alice, Budget::kUpload);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429u);
  EXPECT_NE(refused->body.find("rate_limited"), std::string::npos);
  bool retry_after = false;
  for (const auto& [name, value] : refused->headers) {
    if (name == "Retry-After") retry_after = std::stoi(value) >= 1;
  }
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(refused->delay, std::chrono::milliseconds{1000}) << "a 429 is sent a second later";
  EXPECT_FALSE(limits.check_owner(alice, Budget::kDither)) << "budgets are separate";
  EXPECT_FALSE(limits.check_owner({.owner = "bob"}, Budget::kUpload)) << "owners are separate";
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limits.check_owner(admin, Budget::kUpload));
  // An address gets factor x the budget.
  const http::Request r = request_with("");
  const http::RequestContext c{r, "/", {}, {}, "r", "192.0.2.1"};
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(limits.check_address(c, Budget::kRead)) << i;
  EXPECT_TRUE(limits.check_address(c, Budget::kRead));
  const http::RequestContext in_process{r, "/", {}, {}, "r", ""};
  EXPECT_FALSE(limits.check_address(in_process, Budget::kRead)) << "no socket, no address";
}

// The default bucket holds 10 s of budget, never less than one request.
TEST(RateLimits, BurstsAreTenSecondsOfBudget) {
  RateLimits limits({.uploads_per_minute = 2, .reads_per_minute = 600, .address_factor = 1});
  const Caller alice{.owner = "alice"};
  EXPECT_FALSE(limits.check_owner(alice, Budget::kUpload));
  EXPECT_TRUE(limits.check_owner(alice, Budget::kUpload));
  const http::Request r = request_with("");
  const http::RequestContext c{r, "/", {}, {}, "r", "192.0.2.1"};
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limits.check_address(c, Budget::kRead)) << i;
  EXPECT_TRUE(limits.check_address(c, Budget::kRead));
}

}  // namespace
}  // namespace dither
