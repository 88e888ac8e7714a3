// Access's cache of API keys (keyed by the key's HMAC bytes): a key checked once is believed for
// AUTH_CACHE_SECONDS without a look-up, a wrong secret never matches a cached key, and a revoked
// key leaves the cache at once.
#include "gateway/access.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/api_keys.h"

namespace dither {
namespace {

constexpr std::string_view kPepper = "a pepper of at least thirty-two characters";

// Keys in memory, counting look-ups.
class Keys final : public IdentityStore {
 public:
  Status insert_key(const ApiKeyRecord& key) override {
    keys[key.id] = key;
    return {};
  }
  Result<ApiKeyRecord> get_key(std::string_view id) override {
    ++lookups;
    const auto it = keys.find(std::string(id));
    if (it == keys.end()) return make_error(ErrorKind::kNotFound, "no such key");
    return it->second;
  }
  Result<std::vector<ApiKeyRecord>> list_keys() override { return std::vector<ApiKeyRecord>{}; }
  Result<bool> revoke_key(std::string_view id, int64_t at) override {
    const auto it = keys.find(std::string(id));
    if (it == keys.end()) return make_error(ErrorKind::kNotFound, "no such key");
    it->second.revoked_at = at;
    return true;
  }
  Status insert_session(const SessionRecord&) override { return {}; }
  Result<SessionRecord> get_session(std::string_view) override {
    return make_error(ErrorKind::kNotFound, "no such session");
  }
  Result<bool> revoke_session(std::string_view, int64_t) override { return false; }
  Result<int> revoke_sessions(std::string_view, int64_t) override { return 0; }
  Status ping() override { return {}; }

  std::map<std::string, ApiKeyRecord> keys;
  int lookups = 0;
};

Access make_access(Keys& store, int cache_seconds) {
  AccessOptions o;
  o.store = &store;
  o.pepper = std::string(kPepper);
  o.cache_seconds = cache_seconds;
  return Access(std::move(o));
}

Access::Outcome authenticate(Access& access, std::string_view key) {
  http::Request request{http::Verb::get, "/api/me", 11};
  request.set("Host", "localhost");
  request.set("Authorization", "Bearer " + std::string(key));
  const http::RequestContext c{request, "/api/me", {}, {}, "r1"};
  return access.authenticate(c);
}

NewApiKey add_key(Keys& store, bool admin = false) {
  Result<NewApiKey> key = make_api_key("", "test", admin, kPepper);
  EXPECT_TRUE(key);
  EXPECT_TRUE(store.insert_key(key->record));
  return *key;
}

TEST(AccessKeys, CachedKeyIsBelievedWithoutALookUp) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey key = add_key(store, true);
  for (int i = 0; i < 3; ++i) {
    const Access::Outcome who = authenticate(access, key.key);
    ASSERT_TRUE(who.caller) << i;
    EXPECT_EQ(who.caller->owner, key.record.owner);
    EXPECT_EQ(who.caller->key_id, key.record.id);
    EXPECT_EQ(who.caller->via, "key");
    EXPECT_TRUE(who.caller->admin);
  }
  EXPECT_EQ(store.lookups, 1);
}

TEST(AccessKeys, WrongSecretNeverMatchesACachedKey) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey key = add_key(store);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  // Same id, another secret of the same shape: looked up, and refused.
  std::string forged = key.key;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  const Access::Outcome who = authenticate(access, forged);
  EXPECT_FALSE(who.caller);
  ASSERT_TRUE(who.refusal);
  EXPECT_EQ(who.refusal->status, 401);
  EXPECT_EQ(store.lookups, 2);
  // Refused again, never cached.
  EXPECT_FALSE(authenticate(access, forged).caller);
  EXPECT_EQ(store.lookups, 3);
}

TEST(AccessKeys, RevokedKeyLeavesTheCache) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey admin = add_key(store, true);
  const NewApiKey key = add_key(store);
  const Access::Outcome who = authenticate(access, admin.key);
  ASSERT_TRUE(who.caller);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  EXPECT_EQ(access.revoke_key(key.record.id, *who.caller).status, 200);
  EXPECT_FALSE(authenticate(access, key.key).caller);
  EXPECT_TRUE(authenticate(access, admin.key).caller);
}

TEST(AccessKeys, WithoutCacheEveryRequestLooksUp) {
  Keys store;
  Access access = make_access(store, 0);
  const NewApiKey key = add_key(store);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  EXPECT_EQ(store.lookups, 2);
  // Stored hashed: what the store holds is api_key_hash of the key.
  EXPECT_EQ(store.keys.at(key.record.id).hash, api_key_hash(kPepper, key.key));
}

}  // namespace
}  // namespace dither
