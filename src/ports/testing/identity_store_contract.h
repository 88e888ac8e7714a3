// The contract every IdentityStore adapter must pass (identity.h).
//
// Header-only. An adapter's test file includes it once and instantiates it with a factory that
// yields a fresh, empty store per test:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, IdentityStoreContract,
//       ::testing::Values(IdentityStoreFactory{"file", [] { return open_fresh(); }}),
//       dither::contract::FactoryName());
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ports/identity.h"
#include "ports/records.h"
#include "ports/testing/contract_helpers.h"

namespace dither::contract {

using IdentityStoreFactory = Factory<IdentityStore>;

class IdentityStoreContract : public ::testing::TestWithParam<IdentityStoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }

  // A key as the gateway would create it; `n` makes id, hash and time distinct.
  static ApiKeyRecord key(int n, std::string owner = "") {
    ApiKeyRecord k;
    char id[16];
    std::snprintf(id, sizeof id, "k%011x", static_cast<unsigned>(n));
    k.id = id;
    k.owner = owner.empty() ? "key:" + k.id : std::move(owner);
    k.name = "laptop " + std::to_string(n);
    k.hash = std::string(64, static_cast<char>('a' + n % 6));
    k.created_at = 1'700'000'000'000 + n;
    return k;
  }

  // A session as the gateway would create it: valid for a day from now.
  static SessionRecord session(int n, std::string owner = "session:0123456789abcdef") {
    SessionRecord s;
    s.id_hash = std::string(60, 'f') + std::to_string(1000 + n);
    s.owner = std::move(owner);
    s.created_at = now_millis();
    s.expires_at = s.created_at + 86'400'000;
    return s;
  }
  // session(n, owner), made at `created` and expiring at `expires`.
  static SessionRecord session(int n, std::string owner, int64_t created, int64_t expires) {
    SessionRecord s = session(n, std::move(owner));
    s.created_at = created;
    s.expires_at = expires;
    return s;
  }

  std::vector<std::string> key_ids() {
    std::vector<std::string> ids;
    for (const ApiKeyRecord& k : value_of(store_->list_keys())) ids.push_back(k.id);
    return ids;
  }

  std::unique_ptr<IdentityStore> store_;
};

inline void expect_same_key(const ApiKeyRecord& a, const ApiKeyRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.admin, b.admin);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.revoked_at, b.revoked_at);
}

inline void expect_same_session(const SessionRecord& a, const SessionRecord& b) {
  EXPECT_EQ(a.id_hash, b.id_hash);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.revoked_at, b.revoked_at);
}

TEST_P(IdentityStoreContract, AKeyRoundTripsExactly) {
  ApiKeyRecord plain = key(1);
  ApiKeyRecord admin = key(2, "alice");
  admin.admin = true;
  admin.name = "CI \xE2\x9C\x93 \"quoted\" \\ back";
  ApiKeyRecord revoked = key(3);
  revoked.revoked_at = 1'700'000'000'500;
  for (const ApiKeyRecord& k : {plain, admin, revoked}) expect_ok(store_->insert_key(k));
  expect_same_key(value_of(store_->get_key(plain.id)), plain);
  expect_same_key(value_of(store_->get_key(admin.id)), admin);
  expect_same_key(value_of(store_->get_key(revoked.id)), revoked);
}

TEST_P(IdentityStoreContract, AKeyIdIsInsertedOnce) {
  const ApiKeyRecord first = key(1);
  expect_ok(store_->insert_key(first));
  ApiKeyRecord same_id = key(2, "mallory");
  same_id.id = first.id;
  same_id.admin = true;
  const Status refused = store_->insert_key(same_id);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument) << refused.error().message;
  expect_same_key(value_of(store_->get_key(first.id)), first);  // the first one stays
  EXPECT_EQ(value_of(store_->list_keys()).size(), 1u);
}

TEST_P(IdentityStoreContract, ConcurrentInsertsOfOneKeyIdInsertItOnce) {
  constexpr int kThreads = 6;
  std::atomic<int> inserted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ApiKeyRecord k = key(1, "owner-" + std::to_string(t));
      const Status status = store_->insert_key(k);
      if (status.ok()) {
        ++inserted;
      } else if (status.error().kind == ErrorKind::kInvalidArgument) {
        ++refused;
      } else {
        ADD_FAILURE() << status.error().message;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(inserted.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
}

TEST_P(IdentityStoreContract, AnUnknownKeyIsNotFound) {
  expect_error(store_->get_key("k00000000000"), ErrorKind::kNotFound);
  expect_ok(store_->insert_key(key(1)));
  expect_error(store_->get_key("k00000000002"), ErrorKind::kNotFound);
  expect_error(store_->get_key(""), ErrorKind::kNotFound);
}

TEST_P(IdentityStoreContract, ListIsEveryKeyNewestFirstRevokedOnesIncluded) {
  EXPECT_TRUE(value_of(store_->list_keys()).empty());
  // Inserted out of order: the list goes by creation time.
  for (int n : {2, 5, 1, 4, 3}) expect_ok(store_->insert_key(key(n)));
  ASSERT_TRUE(value_of(store_->revoke_key(key(4).id, 1'800'000'000'000)));
  const std::vector<ApiKeyRecord> keys = value_of(store_->list_keys());
  ASSERT_EQ(keys.size(), 5u);
  EXPECT_EQ(key_ids(),
            (std::vector<std::string>{key(5).id, key(4).id, key(3).id, key(2).id, key(1).id}));
  EXPECT_EQ(keys[1].revoked_at, 1'800'000'000'000);
  expect_same_key(keys[0], key(5));
}

TEST_P(IdentityStoreContract, RevokingAKeyKeepsItsFirstTime) {
  const ApiKeyRecord k = key(1);
  const ApiKeyRecord other = key(2);
  expect_ok(store_->insert_key(k));
  expect_ok(store_->insert_key(other));
  EXPECT_TRUE(value_of(store_->revoke_key(k.id, 1'800'000'000'000)));
  EXPECT_FALSE(value_of(store_->revoke_key(k.id, 1'900'000'000'000)));
  ApiKeyRecord expected = k;
  expected.revoked_at = 1'800'000'000'000;
  expect_same_key(value_of(store_->get_key(k.id)), expected);
  expect_same_key(value_of(store_->get_key(other.id)), other);  // only that one
  expect_error(store_->revoke_key("k0000000000f", 1), ErrorKind::kNotFound);
}

TEST_P(IdentityStoreContract, ASessionRoundTripsExactly) {
  const SessionRecord s = session(1);
  SessionRecord revoked = session(2, "session:fedcba9876543210");
  revoked.revoked_at = revoked.created_at + 5;
  expect_ok(store_->insert_session(s));
  expect_ok(store_->insert_session(revoked));
  expect_same_session(value_of(store_->get_session(s.id_hash)), s);
  expect_same_session(value_of(store_->get_session(revoked.id_hash)), revoked);
}

TEST_P(IdentityStoreContract, ASessionIsInsertedOnce) {
  const SessionRecord s = session(1);
  expect_ok(store_->insert_session(s));
  const Status refused = store_->insert_session(session(1, "session:0000000000000000"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument) << refused.error().message;
  expect_same_session(value_of(store_->get_session(s.id_hash)), s);
}

TEST_P(IdentityStoreContract, AnUnknownSessionIsNotFound) {
  expect_error(store_->get_session(session(1).id_hash), ErrorKind::kNotFound);
  expect_error(store_->revoke_session(session(1).id_hash, 1), ErrorKind::kNotFound);
  expect_ok(store_->insert_session(session(1)));
  expect_error(store_->get_session(session(2).id_hash), ErrorKind::kNotFound);
}

TEST_P(IdentityStoreContract, RevokingASessionKeepsItsFirstTime) {
  const SessionRecord s = session(1);
  const SessionRecord other = session(2);
  expect_ok(store_->insert_session(s));
  expect_ok(store_->insert_session(other));
  const int64_t at = now_millis();
  EXPECT_TRUE(value_of(store_->revoke_session(s.id_hash, at)));
  EXPECT_FALSE(value_of(store_->revoke_session(s.id_hash, at + 1000)));
  SessionRecord expected = s;
  expected.revoked_at = at;
  expect_same_session(value_of(store_->get_session(s.id_hash)), expected);
  expect_same_session(value_of(store_->get_session(other.id_hash)), other);
}

TEST_P(IdentityStoreContract, RevokeSessionsOfOneOwnerThenOfEveryone) {
  const SessionRecord a1 = session(1, "session:aaaaaaaaaaaaaaaa");
  const SessionRecord a2 = session(2, "session:aaaaaaaaaaaaaaaa");
  SessionRecord a3 = session(3, "session:aaaaaaaaaaaaaaaa");
  a3.revoked_at = a3.created_at;  // revoked already: keeps its time, not counted
  const SessionRecord b1 = session(4, "session:bbbbbbbbbbbbbbbb");
  const SessionRecord c1 = session(5, "key-less");
  for (const SessionRecord& s : {a1, a2, a3, b1, c1}) expect_ok(store_->insert_session(s));

  const int64_t at = now_millis();
  EXPECT_EQ(value_of(store_->revoke_sessions("session:aaaaaaaaaaaaaaaa", at)), 2);
  EXPECT_EQ(value_of(store_->get_session(a1.id_hash)).revoked_at, at);
  EXPECT_EQ(value_of(store_->get_session(a2.id_hash)).revoked_at, at);
  expect_same_session(value_of(store_->get_session(a3.id_hash)), a3);
  expect_same_session(value_of(store_->get_session(b1.id_hash)), b1);
  EXPECT_EQ(value_of(store_->revoke_sessions("session:aaaaaaaaaaaaaaaa", at + 1)), 0);
  EXPECT_EQ(value_of(store_->revoke_sessions("session:nobody", at + 1)), 0);

  EXPECT_EQ(value_of(store_->revoke_sessions("", at + 2)), 2);  // b1 and c1
  EXPECT_EQ(value_of(store_->get_session(b1.id_hash)).revoked_at, at + 2);
  EXPECT_EQ(value_of(store_->get_session(c1.id_hash)).revoked_at, at + 2);
  EXPECT_EQ(value_of(store_->get_session(a1.id_hash)).revoked_at, at);
  EXPECT_EQ(value_of(store_->revoke_sessions("", at + 3)), 0);
}

TEST_P(IdentityStoreContract, RevokeSessionsForgetsExpiredOnes) {
  const int64_t now = now_millis();
  const SessionRecord expired = session(1, "session:aaaaaaaaaaaaaaaa", now - 100'000, now - 1'000);
  SessionRecord expired_revoked =
      session(2, "session:bbbbbbbbbbbbbbbb", now - 100'000, now - 1'000);
  expired_revoked.revoked_at = now - 50'000;
  const SessionRecord valid = session(3, "session:bbbbbbbbbbbbbbbb");
  // (The new one first: inserting a session forgets the ones expired before it was made.)
  for (const SessionRecord& s : {valid, expired, expired_revoked}) {
    expect_ok(store_->insert_session(s));
  }
  // Until then an expired session is still there (the gateway checks expires_at itself).
  expect_same_session(value_of(store_->get_session(expired.id_hash)), expired);

  // Another owner's call forgets them too; expired ones are not counted as revoked.
  EXPECT_EQ(value_of(store_->revoke_sessions("session:cccccccccccccccc", now)), 0);
  expect_error(store_->get_session(expired.id_hash), ErrorKind::kNotFound);
  expect_error(store_->get_session(expired_revoked.id_hash), ErrorKind::kNotFound);
  expect_same_session(value_of(store_->get_session(valid.id_hash)), valid);
  // Forgotten, the hash may be inserted again.
  expect_ok(store_->insert_session(session(1, "session:aaaaaaaaaaaaaaaa")));
}

// Page loads make sessions; the table keeps live ones only, so it cannot grow for ever.
TEST_P(IdentityStoreContract, InsertingASessionForgetsExpiredOnes) {
  const int64_t now = now_millis();
  const SessionRecord old = session(1, "session:aaaaaaaaaaaaaaaa", now - 100'000, now - 1'000);
  const SessionRecord later = session(2, "session:bbbbbbbbbbbbbbbb", now - 100'000, now + 1'000);
  expect_ok(store_->insert_session(old));
  expect_ok(store_->insert_session(later));
  expect_same_session(value_of(store_->get_session(old.id_hash)), old);
  expect_ok(store_->insert_session(session(3)));  // made now: `old` expired before
  expect_error(store_->get_session(old.id_hash), ErrorKind::kNotFound);
  expect_same_session(value_of(store_->get_session(later.id_hash)), later);
}

TEST_P(IdentityStoreContract, KeysAndSessionsAreApart) {
  const ApiKeyRecord k = key(1, "alice");
  SessionRecord s = session(1, "alice");
  s.id_hash = k.id;  // the same text in both tables
  expect_ok(store_->insert_key(k));
  expect_ok(store_->insert_session(s));
  EXPECT_EQ(value_of(store_->revoke_sessions("alice", now_millis())), 1);
  EXPECT_EQ(value_of(store_->get_key(k.id)).revoked_at, 0);  // keys are not sessions
  EXPECT_TRUE(value_of(store_->revoke_key(k.id, 5)));
  EXPECT_FALSE(value_of(store_->revoke_session(s.id_hash, 6)));  // revoked above
}

TEST_P(IdentityStoreContract, PingAnswers) { expect_ok(store_->ping()); }

// A store has revocation stamps always or never; when it has them, every revocation that returns
// moves its kind's stamp, even one that finds nothing to revoke, and leaves the other kind's
// (identity.h: the gateway believes a checked key while the keys' stamp stays).
TEST_P(IdentityStoreContract, EveryRevocationMovesItsKindsStampOnly) {
  using Credential = IdentityStore::Credential;
  std::optional<uint64_t> keys = store_->revocation_stamp(Credential::kKey);
  std::optional<uint64_t> sessions = store_->revocation_stamp(Credential::kSession);
  EXPECT_EQ(keys.has_value(), sessions.has_value());
  // After a revocation of kind `moved`: that stamp moved (if there is one), the other did not.
  const auto check = [&](Credential moved, const char* what) {
    const std::optional<uint64_t> k = store_->revocation_stamp(Credential::kKey);
    const std::optional<uint64_t> s = store_->revocation_stamp(Credential::kSession);
    EXPECT_EQ(k.has_value(), keys.has_value()) << what;
    EXPECT_EQ(s.has_value(), sessions.has_value()) << what;
    if (k && s) {
      EXPECT_EQ(*k != *keys, moved == Credential::kKey) << what << ": the keys' stamp";
      EXPECT_EQ(*s != *sessions, moved == Credential::kSession) << what << ": the sessions' stamp";
    }
    keys = k;
    sessions = s;
  };
  const ApiKeyRecord k = key(1);
  expect_ok(store_->insert_key(k));
  const SessionRecord s = session(1, "o1");
  expect_ok(store_->insert_session(s));
  EXPECT_EQ(store_->revocation_stamp(Credential::kKey), keys) << "an insert revokes nothing";
  EXPECT_EQ(store_->revocation_stamp(Credential::kSession), sessions)
      << "an insert revokes nothing";
  EXPECT_TRUE(value_of(store_->revoke_key(k.id, 5)));
  check(Credential::kKey, "revoke_key");
  EXPECT_FALSE(value_of(store_->revoke_key(k.id, 6)));
  check(Credential::kKey, "revoke_key, revoked already");
  EXPECT_TRUE(value_of(store_->revoke_session(s.id_hash, 5)));
  check(Credential::kSession, "revoke_session");
  expect_ok(store_->insert_session(session(2, "o2")));
  EXPECT_EQ(value_of(store_->revoke_sessions("o2", now_millis())), 1);
  check(Credential::kSession, "revoke_sessions of one owner");
  EXPECT_EQ(value_of(store_->revoke_sessions("", now_millis())), 0);
  check(Credential::kSession, "revoke_sessions of everyone, none left");
}

TEST_P(IdentityStoreContract, ConcurrentCallsAllSucceed) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * 100 + i;
        if (!store_->insert_key(key(n)).ok()) ++failures;
        if (!store_->insert_session(session(n, "o" + std::to_string(t))).ok()) ++failures;
        if (!store_->get_key(key(n).id).ok()) ++failures;
        auto revoked = store_->revoke_key(key(n).id, 1);
        if (!revoked.ok() || !*revoked) ++failures;
        if (!store_->list_keys().ok()) ++failures;
        if (!store_->revoke_sessions("o" + std::to_string(t), now_millis()).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(value_of(store_->list_keys()).size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace dither::contract
