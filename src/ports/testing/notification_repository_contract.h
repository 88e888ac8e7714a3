// The contract every NotificationRepository adapter must pass (notifications.h).
//
// Header-only. An adapter's test file includes it once and instantiates it with a factory that
// yields a fresh, empty store per test:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, NotificationRepositoryContract,
//       ::testing::Values(NotificationRepositoryFactory{"file", [] { return open_fresh(); }}),
//       dither::contract::FactoryName());
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ports/notifications.h"
#include "ports/testing/contract_helpers.h"

namespace dither::contract {

using NotificationRepositoryFactory = Factory<NotificationRepository>;

class NotificationRepositoryContract
    : public ::testing::TestWithParam<NotificationRepositoryFactory> {
 protected:
  void SetUp() override {
    repo_ = GetParam().make();
    ASSERT_NE(repo_, nullptr);
  }

  // A notification as the service would compose it, distinct per (dither_id, kind).
  static Notification composed(int64_t dither_id, std::string kind = std::string(kDitherUploaded),
                               const ImageId& uuid = new_image_id()) {
    Notification n;
    n.uuid = uuid;
    n.dither_id = dither_id;
    n.kind = std::move(kind);
    n.mail.from = "Dither <noreply@dither.example>";
    n.mail.to = "owner@example.com";
    n.mail.subject = "Your image is ready (" + std::to_string(dither_id) + ")";
    n.mail.text = "Dithered: http://h/files/dithers/" + uuid.value + "/" +
                  std::to_string(dither_id) + ".png\n";
    n.mail.html = "<p><a href=\"http://h/files/dithers/" + uuid.value + "\">dithered</a></p>";
    n.mail.message_id = "<n-" + uuid.value + "-" + std::to_string(dither_id) + "@dither.example>";
    n.to_hash = kOwnersHash;
    return n;
  }

  // Records `n` under `message_id` (which must be new) and returns the stored row.
  Notification record_new(const Notification& n, const std::string& message_id) {
    const Result<bool> recorded = repo_->record(n, message_id);
    EXPECT_TRUE(recorded.ok()) << (recorded.ok() ? "" : recorded.error().message);
    EXPECT_TRUE(recorded.ok() && *recorded) << "not recorded: " << message_id;
    Page<Notification> newest = value_of(repo_->list({1, std::nullopt, ""}));
    EXPECT_EQ(newest.items.size(), 1u);
    return newest.items.empty() ? Notification{} : newest.items[0];
  }

  // A fresh notification recorded under a fresh message id.
  Notification make() {
    ++made_;
    return record_new(composed(1000 + made_), "m-" + std::to_string(made_));
  }

  Notification get(int64_t id) { return value_of(repo_->get(id)); }

  static std::vector<int64_t> ids(const std::vector<Notification>& rows) {
    std::vector<int64_t> out;
    for (const Notification& r : rows) out.push_back(r.id);
    return out;
  }

  // The ids `worker` claims now, with a lease long enough to hold for the whole test.
  std::vector<int64_t> claim_ids(int limit, std::string_view worker,
                                 std::chrono::seconds lease = std::chrono::seconds{600}) {
    return ids(value_of(repo_->claim_due(limit, worker, lease)));
  }

  // A hex HMAC-SHA256 as the service computes for owner@example.com (its value does not matter).
  static constexpr std::string_view kOwnersHash =
      "5f0c6cbd2b7a1e0e4f9b8d3c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";

  std::unique_ptr<NotificationRepository> repo_;
  int made_ = 0;
};

inline void expect_same_notification(const Notification& a, const Notification& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.dither_id, b.dither_id);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.mail.from, b.mail.from);
  EXPECT_EQ(a.mail.to, b.mail.to);
  EXPECT_EQ(a.mail.subject, b.mail.subject);
  EXPECT_EQ(a.mail.text, b.mail.text);
  EXPECT_EQ(a.mail.html, b.mail.html);
  EXPECT_EQ(a.mail.message_id, b.mail.message_id);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.to_hash, b.to_hash);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.last_error, b.last_error);
  EXPECT_EQ(a.next_attempt_at, b.next_attempt_at);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.sent_at, b.sent_at);
}

TEST_P(NotificationRepositoryContract, RecordAssignsIdPendingDueAtOnceAndTimes) {
  Notification in = composed(7);
  in.id = 99;  // the store assigns these
  in.status = std::string(kNotificationSent);
  in.attempts = 4;
  in.last_error = "old";
  in.next_attempt_at = in.created_at = in.updated_at = in.sent_at = 5;
  const int64_t before = now_millis();
  const Notification out = record_new(in, "m-1");
  const int64_t after = now_millis();

  EXPECT_GT(out.id, 0);
  EXPECT_GE(out.created_at, before);
  EXPECT_LE(out.created_at, after);
  Notification expected = composed(7, in.kind, in.uuid);
  expected.id = out.id;
  expected.created_at = expected.updated_at = expected.next_attempt_at = out.created_at;
  expect_same_notification(out, expected);  // PENDING, no attempts, no error, never sent
  expect_same_notification(get(out.id), out);
  EXPECT_EQ(claim_ids(10, "w1"), (std::vector<int64_t>{out.id}));  // due at once
}

TEST_P(NotificationRepositoryContract, EveryFieldRoundTripsExactly) {
  Notification n = composed(3, std::string(kDitherFailed));
  n.mail.from = "\"Dither \xC3\x9C\x62\x65rsicht\" <noreply@dither.example>";
  n.mail.to = "j\xC3\xBCrgen@m\xC3\xBCller.example";
  n.mail.subject = "Ihr Bild \xE2\x9C\x93 ist fertig \xF0\x9F\x8E\xA8 \"quoted\" 'single' \\ back";
  n.mail.text = "Zeile 1\r\nZeile 2\n\ttab \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\n";
  std::string html = "<!DOCTYPE html><html><body>";
  while (html.size() < 300000) {
    html +=
        "<p>caf\xC3\xA9 &amp; <a href=\"http://h/x?a=1&b=2\">l\xC3\xAFnk</a> "
        "\xF0\x9F\x96\xBC</p>\n";
  }
  html += "</body></html>";
  n.mail.html = html;
  n.mail.message_id = "<abc.123+x@dither.example>";
  const Notification out = record_new(n, "m-utf8");
  const Notification got = get(out.id);
  EXPECT_EQ(got.uuid, n.uuid);
  EXPECT_EQ(got.dither_id, 3);
  EXPECT_EQ(got.kind, kDitherFailed);
  EXPECT_EQ(got.mail.from, n.mail.from);
  EXPECT_EQ(got.mail.to, n.mail.to);
  EXPECT_EQ(got.mail.subject, n.mail.subject);
  EXPECT_EQ(got.mail.text, n.mail.text);
  EXPECT_EQ(got.mail.html.size(), n.mail.html.size());
  EXPECT_TRUE(got.mail.html == n.mail.html);  // not EXPECT_EQ: 300 kB in a failure message
  EXPECT_EQ(got.mail.message_id, n.mail.message_id);
  // Claimed rows carry the whole mail too: sending needs nothing else.
  const std::vector<Notification> claimed =
      value_of(repo_->claim_due(1, "w1", std::chrono::seconds{60}));
  ASSERT_EQ(claimed.size(), 1u);
  expect_same_notification(claimed[0], got);
}

TEST_P(NotificationRepositoryContract, RecordIsOncePerMessageId) {
  const Notification first = record_new(composed(1), "m-1");
  // The same message again, even about something else: nothing is recorded.
  EXPECT_FALSE(value_of(repo_->record(composed(2), "m-1")));
  EXPECT_FALSE(value_of(repo_->record(composed(0), "m-1")));
  // Without a dither id only the message id de-duplicates.
  const Notification bare = record_new(composed(0), "m-2");
  EXPECT_FALSE(value_of(repo_->record(composed(0), "m-2")));
  Page<Notification> all = value_of(repo_->list({100, std::nullopt, ""}));
  EXPECT_EQ(ids(all.items), (std::vector<int64_t>{bare.id, first.id}));
  expect_same_notification(get(first.id), first);
}

TEST_P(NotificationRepositoryContract, RecordIsOncePerDitherAndKind) {
  const ImageId uuid = new_image_id();
  const Notification uploaded = record_new(composed(5, std::string(kDitherUploaded), uuid), "m-1");
  // Republished under another message id: the same e-mail is owed once.
  EXPECT_FALSE(value_of(repo_->record(composed(5, std::string(kDitherUploaded), uuid), "m-2")));
  EXPECT_FALSE(value_of(repo_->record(composed(5, std::string(kDitherUploaded)), "m-3")));
  // Another kind or another dither is another e-mail.
  const Notification failed = record_new(composed(5, std::string(kDitherFailed), uuid), "m-4");
  const Notification other = record_new(composed(6, std::string(kDitherUploaded), uuid), "m-5");
  // Dither id 0 (the prototype's bodies named none) never de-duplicates by dither.
  const Notification zero_a = record_new(composed(0), "m-6");
  const Notification zero_b = record_new(composed(0), "m-7");
  Page<Notification> all = value_of(repo_->list({100, std::nullopt, ""}));
  EXPECT_EQ(ids(all.items),
            (std::vector<int64_t>{zero_b.id, zero_a.id, other.id, failed.id, uploaded.id}));
}

TEST_P(NotificationRepositoryContract, RecordNeedsAMessageId) {
  expect_error(repo_->record(composed(1), ""), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(value_of(repo_->list({10, std::nullopt, ""})).items.empty());
  EXPECT_TRUE(value_of(repo_->record(composed(1), "m-1")));  // the refused call recorded nothing
}

TEST_P(NotificationRepositoryContract, ConcurrentRecordsOfOneNotificationRecordOnce) {
  constexpr int kThreads = 6;
  const ImageId uuid = new_image_id();
  std::atomic<int> recorded{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads redeliver one message; the others republish it under new ids.
      const std::string message_id = t % 2 == 0 ? "m-same" : "m-" + std::to_string(t);
      auto r = repo_->record(composed(9, std::string(kDitherUploaded), uuid), message_id);
      if (!r.ok()) {
        ++failures;
        ADD_FAILURE() << r.error().message;
      } else if (*r) {
        ++recorded;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(recorded.load(), 1);
  EXPECT_EQ(value_of(repo_->list({100, std::nullopt, ""})).items.size(), 1u);
}

TEST_P(NotificationRepositoryContract, ClaimsOnlyDuePendingOnesOldestDueFirst) {
  std::vector<Notification> n;
  for (int i = 0; i < 6; ++i) n.push_back(make());
  const int64_t now = now_millis();
  ASSERT_TRUE(value_of(repo_->retry_later(n[1].id, "later", now + 3'600'000)));  // not due yet
  ASSERT_TRUE(value_of(repo_->mark_sent(n[2].id)));
  ASSERT_TRUE(value_of(repo_->mark_failed(n[3].id, "gave up")));
  ASSERT_TRUE(value_of(repo_->retry_later(n[5].id, "overdue", 1)));  // due long ago: first

  EXPECT_TRUE(claim_ids(0, "w1").empty());
  std::vector<Notification> first = value_of(repo_->claim_due(2, "w1", std::chrono::seconds{60}));
  EXPECT_EQ(ids(first), (std::vector<int64_t>{n[5].id, n[0].id}));
  ASSERT_EQ(first.size(), 2u);
  expect_same_notification(first[1], n[0]);  // the whole row, unchanged by claiming
  // Held ones are skipped: the next worker gets the last due one, then nothing is left.
  EXPECT_EQ(claim_ids(10, "w2"), (std::vector<int64_t>{n[4].id}));
  EXPECT_TRUE(claim_ids(10, "w3").empty());
  EXPECT_TRUE(claim_ids(10, "w1").empty());  // a worker's own claims are not handed out twice
  // Claiming changes nothing a reader sees.
  expect_same_notification(get(n[0].id), n[0]);
  expect_same_notification(get(n[4].id), n[4]);
}

TEST_P(NotificationRepositoryContract, AClaimNeedsAWorkerName) {
  make();
  expect_error(repo_->claim_due(1, "", std::chrono::seconds{60}), ErrorKind::kInvalidArgument);
  EXPECT_EQ(claim_ids(5, "w1").size(), 1u);  // the refused call claimed nothing
}

TEST_P(NotificationRepositoryContract, AnExpiredLeaseCanBeClaimedAgain) {
  const Notification n = make();
  EXPECT_EQ(claim_ids(5, "w1", std::chrono::seconds{0}), (std::vector<int64_t>{n.id}));
  EXPECT_EQ(claim_ids(5, "w2", std::chrono::seconds{1}), (std::vector<int64_t>{n.id}));
  EXPECT_TRUE(claim_ids(5, "w3").empty());
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  EXPECT_EQ(claim_ids(5, "w3"), (std::vector<int64_t>{n.id}));
  EXPECT_TRUE(claim_ids(5, "w2").empty());
  EXPECT_EQ(get(n.id).attempts, 0);  // claiming is not an attempt
}

TEST_P(NotificationRepositoryContract, ConcurrentWorkersNeverClaimTheSameNotification) {
  std::vector<int64_t> made;
  for (int i = 0; i < 60; ++i) made.push_back(make().id);
  expect_each_claimed_once<Notification>(
      made, 6,
      [&](int limit, const std::string& worker) {
        return repo_->claim_due(limit, worker, std::chrono::seconds{600});
      },
      [](const Notification& n) { return n.id; });
}

TEST_P(NotificationRepositoryContract, MarkSentCountsTheAttemptAndEndsTheNotification) {
  const Notification n = make();
  ASSERT_EQ(claim_ids(1, "w1"), (std::vector<int64_t>{n.id}));
  const int64_t before = now_millis();
  EXPECT_TRUE(value_of(repo_->mark_sent(n.id)));
  const int64_t after = now_millis();
  const Notification got = get(n.id);
  EXPECT_EQ(got.status, kNotificationSent);
  EXPECT_EQ(got.attempts, 1);
  EXPECT_EQ(got.last_error, "");
  EXPECT_GE(got.sent_at, before);
  EXPECT_LE(got.sent_at, after);
  EXPECT_EQ(got.updated_at, got.sent_at);
  EXPECT_EQ(got.created_at, n.created_at);
  EXPECT_EQ(got.mail.html, n.mail.html);

  // Not PENDING any more: every outcome is a no-op, and it is never claimed again.
  EXPECT_FALSE(value_of(repo_->mark_sent(n.id)));
  EXPECT_FALSE(value_of(repo_->retry_later(n.id, "late", 1)));
  EXPECT_FALSE(value_of(repo_->mark_failed(n.id, "late")));
  expect_same_notification(get(n.id), got);
  EXPECT_TRUE(claim_ids(10, "w2", std::chrono::seconds{0}).empty());
}

TEST_P(NotificationRepositoryContract, RetryLaterCountsAttemptsReschedulesAndFreesTheClaim) {
  const Notification n = make();
  ASSERT_EQ(claim_ids(1, "w1"), (std::vector<int64_t>{n.id}));
  const int64_t later = now_millis() + 3'600'000;
  EXPECT_TRUE(value_of(repo_->retry_later(n.id, "421 try again \xE2\x80\x94 busy", later)));
  Notification got = get(n.id);
  EXPECT_EQ(got.status, kNotificationPending);
  EXPECT_EQ(got.attempts, 1);
  EXPECT_EQ(got.last_error, "421 try again \xE2\x80\x94 busy");
  EXPECT_EQ(got.next_attempt_at, later);
  EXPECT_EQ(got.sent_at, 0);
  EXPECT_GE(got.updated_at, n.updated_at);
  EXPECT_TRUE(claim_ids(10, "w2").empty());  // not due yet

  // Due again: claimable at once by anyone, although w1's lease would still hold.
  EXPECT_TRUE(value_of(repo_->retry_later(n.id, "connection refused", now_millis() - 1)));
  EXPECT_EQ(get(n.id).attempts, 2);
  EXPECT_EQ(claim_ids(10, "w2"), (std::vector<int64_t>{n.id}));
  EXPECT_TRUE(value_of(repo_->mark_sent(n.id)));
  got = get(n.id);
  EXPECT_EQ(got.status, kNotificationSent);
  EXPECT_EQ(got.attempts, 3);
  EXPECT_EQ(got.last_error, "connection refused");  // the last failure stays visible
  EXPECT_GT(got.sent_at, 0);
}

TEST_P(NotificationRepositoryContract, MarkFailedRecordsTheReasonAndEndsTheNotification) {
  const Notification n = make();
  ASSERT_TRUE(value_of(repo_->retry_later(n.id, "timeout", 1)));
  ASSERT_EQ(claim_ids(1, "w1"), (std::vector<int64_t>{n.id}));
  EXPECT_TRUE(value_of(repo_->mark_failed(n.id, "550 no such user")));
  const Notification got = get(n.id);
  EXPECT_EQ(got.status, kNotificationFailed);
  EXPECT_EQ(got.attempts, 2);
  EXPECT_EQ(got.last_error, "550 no such user");
  EXPECT_EQ(got.sent_at, 0);

  EXPECT_FALSE(value_of(repo_->mark_failed(n.id, "again")));
  EXPECT_FALSE(value_of(repo_->retry_later(n.id, "again", 1)));
  EXPECT_FALSE(value_of(repo_->mark_sent(n.id)));
  expect_same_notification(get(n.id), got);
  EXPECT_TRUE(claim_ids(10, "w2", std::chrono::seconds{0}).empty());
}

TEST_P(NotificationRepositoryContract, OutcomesWithoutAClaimApplyToPendingOnes) {
  const Notification a = make();
  const Notification b = make();
  EXPECT_TRUE(value_of(repo_->mark_sent(a.id)));
  EXPECT_TRUE(value_of(repo_->mark_failed(b.id, "bad address")));
  EXPECT_EQ(get(a.id).status, kNotificationSent);
  EXPECT_EQ(get(b.id).status, kNotificationFailed);
}

TEST_P(NotificationRepositoryContract, OutcomesOfAnUnknownIdAreFalse) {
  EXPECT_FALSE(value_of(repo_->mark_sent(424242)));
  EXPECT_FALSE(value_of(repo_->retry_later(424242, "e", 1)));
  EXPECT_FALSE(value_of(repo_->mark_failed(424242, "e")));
}

TEST_P(NotificationRepositoryContract, GetUnknownIsNotFound) {
  expect_error(repo_->get(424242), ErrorKind::kNotFound);
  make();
  expect_error(repo_->get(0), ErrorKind::kNotFound);
}

TEST_P(NotificationRepositoryContract, ListIsNewestFirstAndPagesWithCursors) {
  std::vector<Notification> made;
  for (int i = 0; i < 5; ++i) made.push_back(make());
  Page<Notification> first = value_of(repo_->list({2, std::nullopt, ""}));
  EXPECT_EQ(ids(first.items), (std::vector<int64_t>{made[4].id, made[3].id}));
  EXPECT_EQ(first.next_cursor, std::to_string(made[3].id));
  ASSERT_FALSE(first.items.empty());
  expect_same_notification(first.items[0], made[4]);

  Page<Notification> second = value_of(repo_->list({2, std::stoll(first.next_cursor), ""}));
  EXPECT_EQ(ids(second.items), (std::vector<int64_t>{made[2].id, made[1].id}));
  Page<Notification> last = value_of(repo_->list({2, std::stoll(second.next_cursor), ""}));
  EXPECT_EQ(ids(last.items), (std::vector<int64_t>{made[0].id}));
  EXPECT_EQ(last.next_cursor, "");

  Page<Notification> exact = value_of(repo_->list({5, std::nullopt, ""}));
  EXPECT_EQ(exact.items.size(), 5u);
  EXPECT_EQ(exact.next_cursor, "");  // the last page has no cursor
  Page<Notification> clamped = value_of(repo_->list({0, std::nullopt, ""}));
  EXPECT_EQ(clamped.items.size(), 1u);
  Page<Notification> empty = value_of(repo_->list({10, made[0].id, ""}));
  EXPECT_TRUE(empty.items.empty());
  EXPECT_EQ(empty.next_cursor, "");
}

TEST_P(NotificationRepositoryContract, ListShowsEveryStatus) {
  const Notification a = make();
  const Notification b = make();
  const Notification c = make();
  ASSERT_TRUE(value_of(repo_->mark_sent(a.id)));
  ASSERT_TRUE(value_of(repo_->mark_failed(b.id, "boom")));
  Page<Notification> all = value_of(repo_->list({10, std::nullopt, ""}));
  ASSERT_EQ(all.items.size(), 3u);
  EXPECT_EQ(all.items[0].status, kNotificationPending);
  EXPECT_EQ(all.items[1].status, kNotificationFailed);
  EXPECT_EQ(all.items[1].last_error, "boom");
  EXPECT_EQ(all.items[2].status, kNotificationSent);
  expect_same_notification(all.items[0], c);
}

TEST_P(NotificationRepositoryContract, PingAnswers) { expect_ok(repo_->ping()); }

TEST_P(NotificationRepositoryContract, ConcurrentRecordsClaimsAndOutcomesAllSucceed) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string worker = "t" + std::to_string(t);
      for (int i = 0; i < kPerThread; ++i) {
        const std::string message_id = worker + "-" + std::to_string(i);
        auto r = repo_->record(composed(t * 1000 + i + 1), message_id);
        if (!r.ok() || !*r) ++failures;
        auto claimed = repo_->claim_due(2, worker, std::chrono::seconds{600});
        if (!claimed.ok()) {
          ++failures;
          continue;
        }
        for (const Notification& n : *claimed) {
          auto marked = n.id % 2 == 0 ? repo_->mark_sent(n.id) : repo_->mark_failed(n.id, "x");
          if (!marked.ok() || !*marked) ++failures;
          if (!repo_->get(n.id).ok()) ++failures;
        }
        if (!repo_->list({10, std::nullopt, ""}).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  Page<Notification> all = value_of(repo_->list({1000, std::nullopt, ""}));
  ASSERT_EQ(all.items.size(), static_cast<size_t>(kThreads * kPerThread));
  // Every notification was claimed by exactly one worker (else a second outcome would have
  // returned false), except those still due.
  const auto pending = static_cast<size_t>(
      std::count_if(all.items.begin(), all.items.end(),
                    [](const Notification& n) { return n.status == kNotificationPending; }));
  EXPECT_EQ(claim_ids(1000, "last").size(), pending);
}

TEST_P(NotificationRepositoryContract, OwnerAndAddressHashRoundTrip) {
  Notification n = composed(11);
  n.owner = "session:0123456789abcdef";
  n.to_hash = std::string(64, 'a');
  const Notification out = record_new(n, "m-1");
  EXPECT_EQ(out.owner, "session:0123456789abcdef");
  EXPECT_EQ(out.to_hash, std::string(64, 'a'));
  expect_same_notification(get(out.id), out);
  const std::vector<Notification> claimed =
      value_of(repo_->claim_due(1, "w1", std::chrono::seconds{600}));
  ASSERT_EQ(claimed.size(), 1u);
  expect_same_notification(claimed[0], out);

  Notification plain = composed(12);
  plain.to_hash.clear();
  const Notification stored = record_new(plain, "m-2");
  EXPECT_EQ(stored.owner, "system");
  EXPECT_EQ(stored.to_hash, "");
}

TEST_P(NotificationRepositoryContract, AnOwnersListPagesThroughItsNotificationsOnly) {
  check_owner_lists<Notification>(
      [&](const std::string& owner) {
        Notification n = composed(0);
        n.owner = owner;
        return record_new(n, "m-" + std::to_string(++made_));
      },
      [&](const PageRequest& request) { return repo_->list(request); },
      [](const Notification& n) { return n.id; }, "carol");
}

TEST_P(NotificationRepositoryContract, ASuppressedNotificationIsRecordedButNeverSent) {
  const Notification due = make();
  Notification n = composed(21);
  n.status = std::string(kNotificationSuppressed);
  n.last_error = "over the cap: 10 mails to this address in the last hour";
  ASSERT_TRUE(value_of(repo_->record(n, "m-suppressed")));
  const Notification stored =
      value_of(repo_->list({.limit = 1, .before = std::nullopt, .owner = ""})).items.at(0);
  EXPECT_EQ(stored.status, kNotificationSuppressed);
  EXPECT_EQ(stored.last_error, "over the cap: 10 mails to this address in the last hour");
  EXPECT_EQ(stored.attempts, 0);
  EXPECT_EQ(stored.sent_at, 0);
  EXPECT_EQ(stored.mail.to, n.mail.to);
  EXPECT_EQ(stored.to_hash, n.to_hash);

  // Never claimed, even with leases that end at once; no outcome applies to it.
  EXPECT_EQ(claim_ids(10, "w1", std::chrono::seconds{0}), (std::vector<int64_t>{due.id}));
  EXPECT_EQ(claim_ids(10, "w2", std::chrono::seconds{0}), (std::vector<int64_t>{due.id}));
  EXPECT_FALSE(value_of(repo_->mark_sent(stored.id)));
  EXPECT_FALSE(value_of(repo_->retry_later(stored.id, "x", 1)));
  EXPECT_FALSE(value_of(repo_->mark_failed(stored.id, "x")));
  expect_same_notification(get(stored.id), stored);
  // It still is the (dither_id, kind)'s one notification.
  Notification again = composed(21, n.kind, n.uuid);
  EXPECT_FALSE(value_of(repo_->record(again, "m-again")));
}

TEST_P(NotificationRepositoryContract, RecordIgnoresOtherStatusesAndTheirErrors) {
  Notification n = composed(22);
  n.status = std::string(kNotificationFailed);
  n.last_error = "not from the caller";
  const Notification out = record_new(n, "m-1");
  EXPECT_EQ(out.status, kNotificationPending);
  EXPECT_EQ(out.last_error, "");
}

TEST_P(NotificationRepositoryContract, CountRecentCountsOneAddressSinceATimeButNotSuppressed) {
  const std::string a = std::string(64, 'a');
  const std::string b = std::string(64, 'b');
  EXPECT_EQ(value_of(repo_->count_recent(a, 0)), 0);
  const int64_t before = now_millis();
  std::vector<Notification> of_a;
  for (int i = 0; i < 3; ++i) {
    Notification n = composed(30 + i);
    n.to_hash = a;
    of_a.push_back(record_new(n, "m-a" + std::to_string(i)));
  }
  Notification suppressed = composed(40);
  suppressed.to_hash = a;
  suppressed.status = std::string(kNotificationSuppressed);
  ASSERT_TRUE(value_of(repo_->record(suppressed, "m-s")));
  Notification other = composed(41);
  other.to_hash = b;
  record_new(other, "m-b");

  EXPECT_EQ(value_of(repo_->count_recent(a, before)), 3);
  EXPECT_EQ(value_of(repo_->count_recent(b, before)), 1);
  EXPECT_EQ(value_of(repo_->count_recent(std::string(64, 'c'), 0)), 0);
  // Sent or failed, a mail counts all the same.
  ASSERT_TRUE(value_of(repo_->mark_sent(of_a[0].id)));
  ASSERT_TRUE(value_of(repo_->mark_failed(of_a[1].id, "550")));
  EXPECT_EQ(value_of(repo_->count_recent(a, before)), 3);
  // `since` is inclusive: from the newest one's creation, it (and any as old) count.
  const auto from_newest = std::count_if(of_a.begin(), of_a.end(), [&](const Notification& n) {
    return n.created_at >= of_a[2].created_at;
  });
  EXPECT_EQ(value_of(repo_->count_recent(a, of_a[2].created_at)), from_newest);
  EXPECT_EQ(value_of(repo_->count_recent(a, now_millis() + 1000)), 0);
  // Erasing the image keeps the hash: the cap still counts its mail.
  EXPECT_GT(value_of(repo_->erase_image(of_a[0].uuid)), 0);
  EXPECT_EQ(value_of(repo_->count_recent(a, before)), 3);
}

TEST_P(NotificationRepositoryContract, EraseImageBlanksAddressAndContentOfEveryNotification) {
  const ImageId uuid = new_image_id();
  auto of_image = [&](int64_t dither_id, const std::string& kind, const std::string& message_id) {
    Notification n = composed(dither_id, kind, uuid);
    n.owner = "alice";
    return record_new(n, message_id);
  };
  const Notification pending = of_image(1, std::string(kDitherUploaded), "erase-1");
  const Notification held = of_image(2, std::string(kDitherUploaded), "erase-2");
  const Notification sent = of_image(3, std::string(kDitherUploaded), "erase-3");
  const Notification failed = of_image(3, std::string(kDitherFailed), "erase-4");
  Notification s = composed(4, std::string(kDitherUploaded), uuid);
  s.owner = "alice";
  s.status = std::string(kNotificationSuppressed);
  s.last_error = "over the cap";
  ASSERT_TRUE(value_of(repo_->record(s, "erase-5")));
  const Notification suppressed =
      value_of(repo_->list({.limit = 1, .before = std::nullopt, .owner = ""})).items.at(0);
  const Notification other = make();  // another image's
  ASSERT_TRUE(value_of(repo_->mark_sent(sent.id)));
  ASSERT_TRUE(value_of(repo_->mark_failed(failed.id, "550 no such user")));
  // `held` is being sent right now by w1.
  ASSERT_TRUE(value_of(repo_->retry_later(held.id, "busy", 1)));
  const std::vector<int64_t> claimed = claim_ids(10, "w1");
  ASSERT_EQ(claimed.size(), 3u);  // pending, held, other (oldest due first)
  ASSERT_TRUE(value_of(repo_->retry_later(pending.id, "later", now_millis() + 3'600'000)));
  const Notification sent_before = get(sent.id);
  const Notification failed_before = get(failed.id);

  EXPECT_EQ(value_of(repo_->erase_image(uuid)), 5);
  for (const Notification& n : {pending, held, sent, failed, suppressed}) {
    SCOPED_TRACE("notification " + std::to_string(n.id));
    const Notification got = get(n.id);
    EXPECT_EQ(got.mail.to, "");
    EXPECT_EQ(got.mail.subject, "");
    EXPECT_EQ(got.mail.text, "");
    EXPECT_EQ(got.mail.html, "");
    EXPECT_EQ(got.to_hash, n.to_hash);  // kept, for the cap
    EXPECT_EQ(got.owner, "alice");
    EXPECT_EQ(got.uuid, uuid);
    EXPECT_EQ(got.dither_id, n.dither_id);
    EXPECT_EQ(got.kind, n.kind);
    EXPECT_EQ(got.created_at, n.created_at);
  }
  // What was owed is given up; what ended keeps its status, its error and its time.
  EXPECT_EQ(get(pending.id).status, kNotificationFailed);
  EXPECT_EQ(get(pending.id).last_error, "the image was deleted");
  EXPECT_EQ(get(held.id).status, kNotificationFailed);
  EXPECT_EQ(get(held.id).last_error, "the image was deleted");
  EXPECT_EQ(get(sent.id).status, kNotificationSent);
  EXPECT_EQ(get(sent.id).sent_at, sent_before.sent_at);
  EXPECT_EQ(get(sent.id).attempts, sent_before.attempts);
  EXPECT_EQ(get(failed.id).status, kNotificationFailed);
  EXPECT_EQ(get(failed.id).last_error, failed_before.last_error);
  EXPECT_EQ(get(suppressed.id).status, kNotificationSuppressed);
  EXPECT_EQ(get(suppressed.id).last_error, "over the cap");
  // The sender that held one cannot send it any more; nothing of the image is claimable.
  EXPECT_FALSE(value_of(repo_->mark_sent(held.id)));
  EXPECT_FALSE(value_of(repo_->retry_later(pending.id, "x", 1)));
  EXPECT_TRUE(claim_ids(10, "w2", std::chrono::seconds{0}).empty());
  // Another image's notification is untouched.
  Notification other_now = get(other.id);
  EXPECT_EQ(other_now.mail.to, other.mail.to);
  EXPECT_EQ(other_now.mail.html, other.mail.html);
  EXPECT_EQ(other_now.status, kNotificationPending);

  // Nothing is left to change.
  EXPECT_EQ(value_of(repo_->erase_image(uuid)), 0);
  EXPECT_EQ(value_of(repo_->erase_image(new_image_id())), 0);
}

TEST_P(NotificationRepositoryContract, ARecordAfterTheImagesErasureStoresNothing) {
  const ImageId uuid = new_image_id();
  const Notification before = record_new(composed(1, std::string(kDitherUploaded), uuid), "late-1");
  const Notification other = make();  // another image's
  ASSERT_EQ(value_of(repo_->erase_image(uuid)), 1);

  // A DITHER_* message of the image consumed late (another dither, another kind, no dither id,
  // suppressed, a redelivery): nothing is recorded, least of all the address.
  EXPECT_FALSE(value_of(repo_->record(composed(2, std::string(kDitherUploaded), uuid), "late-2")));
  EXPECT_FALSE(value_of(repo_->record(composed(1, std::string(kDitherFailed), uuid), "late-3")));
  EXPECT_FALSE(value_of(repo_->record(composed(0, std::string(kDitherUploaded), uuid), "late-4")));
  Notification suppressed = composed(3, std::string(kDitherUploaded), uuid);
  suppressed.status = std::string(kNotificationSuppressed);
  suppressed.last_error = "over the cap";
  EXPECT_FALSE(value_of(repo_->record(suppressed, "late-5")));
  EXPECT_FALSE(value_of(repo_->record(composed(2, std::string(kDitherUploaded), uuid), "late-2")));
  const Page<Notification> all = value_of(repo_->list({100, std::nullopt, ""}));
  EXPECT_EQ(ids(all.items), (std::vector<int64_t>{other.id, before.id}));
  for (const Notification& n : all.items) {
    if (n.uuid == uuid) {
      EXPECT_EQ(n.mail.to, "");
    }
  }
  EXPECT_EQ(value_of(repo_->count_recent(kOwnersHash, 0)), 2);  // nothing new counted either

  // Another image is unaffected: recorded with its address, and claimable.
  const ImageId another = new_image_id();
  const Notification fresh =
      record_new(composed(2, std::string(kDitherUploaded), another), "late-6");
  EXPECT_EQ(fresh.uuid, another);
  EXPECT_EQ(fresh.mail.to, "owner@example.com");
  EXPECT_EQ(fresh.status, kNotificationPending);
  EXPECT_EQ(claim_ids(10, "w1"), (std::vector<int64_t>{other.id, fresh.id}));
}

TEST_P(NotificationRepositoryContract, ErasingAnImageWithoutNotificationsStillTombstonesIt) {
  // The IMAGE_DELETED came first: the image's DITHER_* messages are still on their way.
  const ImageId uuid = new_image_id();
  EXPECT_EQ(value_of(repo_->erase_image(uuid)), 0);
  EXPECT_FALSE(value_of(repo_->record(composed(1, std::string(kDitherUploaded), uuid), "m-1")));
  EXPECT_FALSE(value_of(repo_->record(composed(1, std::string(kDitherFailed), uuid), "m-2")));
  EXPECT_TRUE(value_of(repo_->list({10, std::nullopt, ""})).items.empty());
  EXPECT_TRUE(claim_ids(10, "w1", std::chrono::seconds{0}).empty());
  // Erasing it again (a redelivered IMAGE_DELETED) is no error and changes nothing.
  EXPECT_EQ(value_of(repo_->erase_image(uuid)), 0);
  EXPECT_FALSE(value_of(repo_->record(composed(1, std::string(kDitherUploaded), uuid), "m-3")));
  // Another uuid is unaffected, even for the same dither id and kind.
  const Notification other = record_new(composed(1), "m-4");
  EXPECT_EQ(other.mail.to, "owner@example.com");
  EXPECT_EQ(ids(value_of(repo_->list({10, std::nullopt, ""})).items),
            (std::vector<int64_t>{other.id}));
}

TEST_P(NotificationRepositoryContract, RecordsRacingAnErasureLeaveNoAddressBehind) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 12;
  const ImageId uuid = new_image_id();
  std::atomic<int> recorded{0};
  std::atomic<int> attempted{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int64_t dither_id = t * 100 + i + 1;
        auto r = repo_->record(composed(dither_id, std::string(kDitherUploaded), uuid),
                               "m-" + std::to_string(dither_id));
        ++attempted;
        if (!r.ok()) {
          ++failures;
          ADD_FAILURE() << r.error().message;
        } else if (*r) {
          ++recorded;
        }
      }
    });
  }
  threads.emplace_back([&] {
    // Erase in the middle of the records.
    while (attempted.load() < kThreads * kPerThread / 3) std::this_thread::yield();
    auto erased = repo_->erase_image(uuid);
    if (!erased.ok()) {
      ++failures;
      ADD_FAILURE() << erased.error().message;
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const Page<Notification> all = value_of(repo_->list({1000, std::nullopt, ""}));
  EXPECT_EQ(all.items.size(), static_cast<size_t>(recorded.load()));
  // Whatever was recorded before the erasure was blanked and given up; nothing is owed.
  for (const Notification& n : all.items) {
    SCOPED_TRACE("notification " + std::to_string(n.id));
    EXPECT_EQ(n.mail.to, "");
    EXPECT_EQ(n.mail.html, "");
    EXPECT_EQ(n.status, kNotificationFailed);
  }
  EXPECT_TRUE(claim_ids(100, "w1", std::chrono::seconds{0}).empty());
  // And from now on nothing of the image is recorded.
  EXPECT_FALSE(value_of(repo_->record(composed(999, std::string(kDitherUploaded), uuid), "m-x")));
}

}  // namespace dither::contract
