// Access's cache of API keys (keyed by the key's HMAC bytes) and sessions: a key checked once is
// believed for AUTH_CACHE_SECONDS without a look-up while the store's revocation stamp stays, a
// wrong secret never matches a cached key, a revoked key leaves the cache at once (revoked here
// or by another process: the stamp moves), and a session is never believed past its expiry.
#include "gateway/access.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/api_keys.h"
#include "common/crypto.h"
#include "ports/records.h"

namespace dither {
namespace {

constexpr std::string_view kPepper = "a pepper of at least thirty-two characters";

// Keys and sessions in memory, counting look-ups; revocations move the stamp (unless the store
// is made without one, as PostgreSQL's is).
class Keys final : public IdentityStore {
 public:
  Status insert_key(const ApiKeyRecord& key) override {
    keys[key.id] = key;
    return {};
  }
  Result<ApiKeyRecord> get_key(std::string_view id) override { return look_up(keys, id); }
  Result<std::vector<ApiKeyRecord>> list_keys() override { return std::vector<ApiKeyRecord>{}; }
  Result<bool> revoke_key(std::string_view id, int64_t at) override {
    return revoke(keys, id, at, key_stamp);
  }
  Status insert_session(const SessionRecord& session) override {
    sessions[session.id_hash] = session;
    return {};
  }
  Result<SessionRecord> get_session(std::string_view id_hash) override {
    return look_up(sessions, id_hash);
  }
  Result<bool> revoke_session(std::string_view id_hash, int64_t at) override {
    return revoke(sessions, id_hash, at, session_stamp);
  }
  Result<int> revoke_sessions(std::string_view, int64_t) override { return 0; }
  std::optional<uint64_t> revocation_stamp(Credential kind) override {
    return kind == Credential::kKey ? key_stamp : session_stamp;
  }
  Status ping() override { return {}; }

  // A record by id, counted; after_lookup runs (once) when it has been read.
  template <class Record>
  Result<Record> look_up(const std::map<std::string, Record>& records, std::string_view id) {
    ++lookups;
    const auto it = records.find(std::string(id));
    if (it == records.end()) return make_error(ErrorKind::kNotFound, "no such record");
    Record found = it->second;
    if (after_lookup) std::exchange(after_lookup, nullptr)();
    return found;
  }
  // Sets revoked_at, then moves `stamp` (when the store has stamps), as the SQLite store does.
  template <class Record>
  static Result<bool> revoke(std::map<std::string, Record>& records, std::string_view id,
                             int64_t at, std::optional<uint64_t>& stamp) {
    const auto it = records.find(std::string(id));
    if (it == records.end()) return make_error(ErrorKind::kNotFound, "no such record");
    it->second.revoked_at = at;
    if (stamp) ++*stamp;
    return true;
  }

  std::map<std::string, ApiKeyRecord> keys;
  std::map<std::string, SessionRecord> sessions;
  std::optional<uint64_t> key_stamp = 7;
  std::optional<uint64_t> session_stamp = 70;
  std::function<void()> after_lookup;  // runs once, after the next look-up read its record
  int lookups = 0;
};

Access make_access(Keys& store, int cache_seconds, std::function<int64_t()> clock = now_millis) {
  AccessOptions o;
  o.store = &store;
  o.pepper = std::string(kPepper);
  o.cache_seconds = cache_seconds;
  o.wall_clock_ms = std::move(clock);
  return Access(std::move(o));
}

Access::Outcome authenticate(Access& access, std::string_view key) {
  http::Request request{http::Verb::get, "/api/me", 11};
  request.set("Host", "localhost");
  request.set("Authorization", "Bearer " + std::string(key));
  const http::RequestContext c{request, "/api/me", {}, {}, "r1"};
  return access.authenticate(c);
}

void expect_unauthorized(const Access::Outcome& who) {
  EXPECT_FALSE(who.caller);
  ASSERT_TRUE(who.refusal);
  EXPECT_EQ(who.refusal->status, 401);
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
  expect_unauthorized(authenticate(access, forged));
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

TEST(AccessKeys, ARevocationByAnotherProcessEndsTheBeliefAtOnce) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey key = add_key(store);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  EXPECT_EQ(store.lookups, 1);
  // As dither-keys does beside the server: straight into the store, not through this Access.
  ASSERT_TRUE(store.revoke_key(key.record.id, 1234));
  expect_unauthorized(authenticate(access, key.key));
  EXPECT_EQ(store.lookups, 2);
}

TEST(AccessKeys, AnyRevocationEndsTheBeliefInEveryCachedKey) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey kept = add_key(store);
  const NewApiKey other = add_key(store);
  ASSERT_TRUE(authenticate(access, kept.key).caller);
  ASSERT_TRUE(store.revoke_key(other.record.id, 1234));
  // The stamp says something was revoked, not what: the kept key is looked up again, and holds.
  ASSERT_TRUE(authenticate(access, kept.key).caller);
  EXPECT_EQ(store.lookups, 2);
  ASSERT_TRUE(authenticate(access, kept.key).caller);
  EXPECT_EQ(store.lookups, 2);
}

TEST(AccessKeys, WithoutAStampTheSecondsAloneBoundTheBelief) {
  Keys store;
  store.key_stamp.reset();  // as PostgreSQL's store: revocations elsewhere are not seen
  Access access = make_access(store, 60);
  const NewApiKey key = add_key(store);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  ASSERT_TRUE(store.revoke_key(key.record.id, 1234));
  EXPECT_TRUE(authenticate(access, key.key).caller) << "believed until AUTH_CACHE_SECONDS pass";
  EXPECT_EQ(store.lookups, 1);
}

// A session with the cookie, as the page's browser sends it; its record in `store`.
struct BrowserSession {
  std::string id = std::string(43, 'A');  // well-formed: base64url, 43 characters
  SessionRecord record;
  http::Request request{http::Verb::get, "/api/me", 11};

  BrowserSession(Keys& store, int64_t now, int64_t lifetime_ms) {
    record.id_hash = to_hex(sha256(id));
    record.owner = "session:0123456789abcdef";
    record.created_at = now;
    record.expires_at = now + lifetime_ms;
    EXPECT_TRUE(store.insert_session(record));
    request.set("Host", "localhost");
    request.set("Cookie", std::string(kSessionCookie) + "=" + id);
  }
  Access::Outcome authenticate(Access& access) const {
    const http::RequestContext c{request, "/api/me", {}, {}, "r1"};
    return access.authenticate(c);
  }
};

TEST(AccessSessions, ACachedSessionIsNotBelievedPastItsExpiry) {
  Keys store;
  int64_t now = 1'800'000'000'000;
  Access access = make_access(store, 60, [&now] { return now; });
  const BrowserSession session(store, now, 500);
  const Access::Outcome first = session.authenticate(access);
  ASSERT_TRUE(first.caller);
  EXPECT_EQ(first.caller->owner, session.record.owner);
  now += 499;
  ASSERT_TRUE(session.authenticate(access).caller);
  EXPECT_EQ(store.lookups, 1);
  now += 1;  // its expiry: no longer believed, and looked up it is refused
  expect_unauthorized(session.authenticate(access));
  EXPECT_EQ(store.lookups, 2);
}

TEST(AccessSessions, ASessionEndedByAnotherProcessIsRefusedAtOnce) {
  Keys store;
  Access access = make_access(store, 60);
  const BrowserSession session(store, now_millis(), 86'400'000);
  ASSERT_TRUE(session.authenticate(access).caller);
  ASSERT_TRUE(session.authenticate(access).caller);
  EXPECT_EQ(store.lookups, 1);
  // As `dither-keys end-sessions` does: straight into the store.
  ASSERT_TRUE(store.revoke_session(session.record.id_hash, 1234));
  EXPECT_FALSE(session.authenticate(access).caller);
  EXPECT_EQ(store.lookups, 2);
}

TEST(AccessSessions, ASessionEndedDuringTheLookUpIsNotMissed) {
  Keys store;
  Access access = make_access(store, 60);
  const BrowserSession session(store, now_millis(), 86'400'000);
  store.after_lookup = [&] { ASSERT_TRUE(store.revoke_session(session.record.id_hash, 1234)); };
  ASSERT_TRUE(session.authenticate(access).caller) << "what the look-up read: not ended yet";
  expect_unauthorized(session.authenticate(access));
  EXPECT_EQ(store.lookups, 2);
}

TEST(AccessSessions, EndingASessionSendsNoKeyBackToTheStore) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey key = add_key(store);
  const BrowserSession session(store, now_millis(), 86'400'000);
  ASSERT_TRUE(authenticate(access, key.key).caller);
  ASSERT_TRUE(store.revoke_session(session.record.id_hash, 1234));  // any browser may end its own
  ASSERT_TRUE(authenticate(access, key.key).caller);
  EXPECT_EQ(store.lookups, 1) << "the keys' stamp did not move";
}

// A revocation committed while a look-up is under way (after it read the record, before the
// answer is cached): the stamp was read before the look-up, so the entry is stale at once.
TEST(AccessKeys, ARevocationDuringTheLookUpIsNotMissed) {
  Keys store;
  Access access = make_access(store, 60);
  const NewApiKey key = add_key(store);
  store.after_lookup = [&] { ASSERT_TRUE(store.revoke_key(key.record.id, 1234)); };
  ASSERT_TRUE(authenticate(access, key.key).caller) << "what the look-up read: not revoked yet";
  EXPECT_FALSE(authenticate(access, key.key).caller);
  EXPECT_EQ(store.lookups, 2);
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
