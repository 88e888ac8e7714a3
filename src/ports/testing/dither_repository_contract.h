// The contract every DitherRepository adapter must pass (metadata.h, outbox.h).
//
// Header-only. An adapter's test file includes it once and instantiates it with a factory that
// yields a fresh, empty store per test:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, DitherRepositoryContract,
//       ::testing::Values(DitherRepositoryFactory{"file", [] { return open_fresh_store(); }}),
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
#include <utility>
#include <vector>

#include "ports/metadata.h"
#include "ports/testing/contract_helpers.h"
#include "ports/testing/outbox_contract.h"

namespace dither::contract {

using DitherRepositoryFactory = Factory<DitherRepository>;

class DitherRepositoryContract : public ::testing::TestWithParam<DitherRepositoryFactory> {
 protected:
  void SetUp() override {
    repo_ = GetParam().make();
    ASSERT_NE(repo_, nullptr);
  }

  static OriginalRecord original(const ImageId& uuid, const std::string& url = "") {
    OriginalRecord o;
    o.uuid = uuid;
    o.url = url.empty() ? "http://localhost:8080/files/originals/" + uuid.value + ".png" : url;
    o.filename = "dog.png";
    o.blob_key = ObjectKey{"originals/" + uuid.value + ".png"};
    o.email = "owner@example.com";
    o.content_type = "image/png";
    return o;
  }

  static DitherRecord requested(const ImageId& uuid, std::string request_id, int channels = 4) {
    DitherRecord d;
    d.uuid = uuid;
    d.channels = channels;
    d.algorithm = "atkinson";
    d.palette = "uniform";
    d.format = "png";
    d.options_json = R"({"algorithm":"atkinson","channels":)" + std::to_string(channels) + "}";
    d.request_id = std::move(request_id);
    d.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    return d;
  }

  DitherRecord create(const ImageId& uuid, int channels = 4) {
    return value_of(
        repo_->create_dither(requested(uuid, "req-" + std::to_string(++requests_), channels)));
  }

  DitherRecord get(DitherId id) { return value_of(repo_->get_dither(id)); }

  static std::vector<int64_t> ids(const std::vector<DitherRecord>& rows) {
    std::vector<int64_t> out;
    for (const DitherRecord& r : rows) out.push_back(r.id.value);
    return out;
  }

  // The ids `worker` claims now, with a lease long enough to hold for the whole test.
  std::vector<int64_t> claim_ids(int limit, std::string_view worker,
                                 std::chrono::seconds lease = std::chrono::seconds{600}) {
    return ids(value_of(repo_->claim_dithers(limit, worker, lease)));
  }

  static Message event(std::string_view type, const ImageId& uuid, const std::string& tag = "") {
    return test_message("dithers", type, uuid.value, tag);
  }

  std::unique_ptr<DitherRepository> repo_;
  int requests_ = 0;
};

inline void expect_same_dither(const DitherRecord& a, const DitherRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.algorithm, b.algorithm);
  EXPECT_EQ(a.palette, b.palette);
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.options_json, b.options_json);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.url_dither, b.url_dither);
  EXPECT_EQ(a.blob_key, b.blob_key);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.traceparent, b.traceparent);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.requested_by, b.requested_by);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

TEST_P(DitherRepositoryContract, CreateAssignsIdPendingAndTimestamps) {
  const ImageId uuid = new_image_id();
  DitherRecord in = requested(uuid, "req-1");
  in.id = DitherId{77};
  in.status = std::string(kStatusFinished);  // a requested dither always starts PENDING
  in.created_at = in.updated_at = 3;
  const int64_t before = now_millis();
  DitherRecord out = value_of(repo_->create_dither(in));
  const int64_t after = now_millis();

  EXPECT_GT(out.id.value, 0);
  EXPECT_EQ(out.status, kStatusPending);
  EXPECT_GE(out.created_at, before);
  EXPECT_LE(out.created_at, after);
  EXPECT_EQ(out.updated_at, out.created_at);
  DitherRecord expected = in;
  expected.id = out.id;
  expected.status = std::string(kStatusPending);
  expected.created_at = expected.updated_at = out.created_at;
  expect_same_dither(out, expected);
  expect_same_dither(get(out.id), out);
  expect_outbox(*repo_, {});  // creating queues nothing
}

TEST_P(DitherRepositoryContract, CreateWithASeenRequestIdReturnsTheExistingDither) {
  const ImageId uuid = new_image_id();
  DitherRecord first = value_of(repo_->create_dither(requested(uuid, "req-1", 4)));
  DitherRecord second = value_of(repo_->create_dither(requested(uuid, "req-1", 16)));
  expect_same_dither(second, first);
  EXPECT_EQ(value_of(repo_->dithers_of(uuid)).size(), 1u);
  EXPECT_EQ(value_of(repo_->create_dither(requested(uuid, "req-2"))).uuid, uuid);
  EXPECT_EQ(value_of(repo_->dithers_of(uuid)).size(), 2u);
}

TEST_P(DitherRepositoryContract, GetUnknownIsNotFound) {
  expect_error(repo_->get_dither(DitherId{424242}), ErrorKind::kNotFound);
  expect_error(repo_->get_original(new_image_id()), ErrorKind::kNotFound);
}

TEST_P(DitherRepositoryContract, ListIsNewestFirstAndPagesWithCursors) {
  std::vector<DitherRecord> made;
  for (int i = 0; i < 5; ++i) made.push_back(create(new_image_id(), 2 + i));
  Page<DitherRecord> first = value_of(repo_->list_dithers({2, std::nullopt, ""}));
  EXPECT_EQ(ids(first.items), (std::vector<int64_t>{made[4].id.value, made[3].id.value}));
  EXPECT_EQ(first.next_cursor, std::to_string(made[3].id.value));
  expect_same_dither(first.items[0], made[4]);

  Page<DitherRecord> second = value_of(repo_->list_dithers({2, std::stoll(first.next_cursor), ""}));
  EXPECT_EQ(ids(second.items), (std::vector<int64_t>{made[2].id.value, made[1].id.value}));
  Page<DitherRecord> last = value_of(repo_->list_dithers({2, std::stoll(second.next_cursor), ""}));
  EXPECT_EQ(ids(last.items), (std::vector<int64_t>{made[0].id.value}));
  EXPECT_EQ(last.next_cursor, "");

  Page<DitherRecord> clamped = value_of(repo_->list_dithers({0, std::nullopt, ""}));
  EXPECT_EQ(clamped.items.size(), 1u);
  Page<DitherRecord> empty = value_of(repo_->list_dithers({10, made[0].id.value, ""}));
  EXPECT_TRUE(empty.items.empty());
  EXPECT_EQ(empty.next_cursor, "");
}

TEST_P(DitherRepositoryContract, DithersOfOneOriginalNewestFirst) {
  const ImageId a = new_image_id();
  const ImageId b = new_image_id();
  const DitherRecord a1 = create(a);
  const DitherRecord b1 = create(b);
  const DitherRecord a2 = create(a);
  EXPECT_EQ(ids(value_of(repo_->dithers_of(a))), (std::vector<int64_t>{a2.id.value, a1.id.value}));
  EXPECT_EQ(ids(value_of(repo_->dithers_of(b))), (std::vector<int64_t>{b1.id.value}));
  EXPECT_TRUE(value_of(repo_->dithers_of(new_image_id())).empty());
}

TEST_P(DitherRepositoryContract, ClaimsArePendingOldestFirstAndHeldByOneWorker) {
  const ImageId uuid = new_image_id();
  std::vector<DitherRecord> d;
  for (int i = 0; i < 6; ++i) d.push_back(create(uuid));
  const Message uploaded = event(kDitherUploaded, uuid);
  const Message failed = event(kDitherFailed, uuid);
  ASSERT_TRUE(value_of(repo_->finish_dither(d[1].id, ObjectKey{"dithers/x/1.png"}, "u", uploaded)));
  ASSERT_TRUE(value_of(repo_->fail_dither(d[3].id, "boom", failed)));

  EXPECT_TRUE(claim_ids(0, "w1").empty());
  std::vector<DitherRecord> first =
      value_of(repo_->claim_dithers(2, "w1", std::chrono::seconds{60}));
  EXPECT_EQ(ids(first), (std::vector<int64_t>{d[0].id.value, d[2].id.value}));
  ASSERT_EQ(first.size(), 2u);
  expect_same_dither(first[0], d[0]);  // the whole record, unchanged by claiming
  // Held ones are skipped: the next worker gets the later ones, then nothing is left.
  EXPECT_EQ(claim_ids(10, "w2"), (std::vector<int64_t>{d[4].id.value, d[5].id.value}));
  EXPECT_TRUE(claim_ids(10, "w3").empty());
  EXPECT_TRUE(claim_ids(10, "w1").empty());  // a worker's own claims are not handed out twice
  // Claiming changes nothing a reader sees.
  expect_same_dither(get(d[0].id), d[0]);
  expect_outbox(*repo_, {uploaded, failed});
}

TEST_P(DitherRepositoryContract, AClaimNeedsAWorkerName) {
  create(new_image_id());
  expect_error(repo_->claim_dithers(1, "", std::chrono::seconds{60}), ErrorKind::kInvalidArgument);
  EXPECT_EQ(claim_ids(5, "w1").size(), 1u);  // the refused call claimed nothing
}

TEST_P(DitherRepositoryContract, AnExpiredLeaseCanBeClaimedAgain) {
  const DitherRecord d = create(new_image_id());
  EXPECT_EQ(claim_ids(5, "w1", std::chrono::seconds{0}), (std::vector<int64_t>{d.id.value}));
  EXPECT_EQ(claim_ids(5, "w2", std::chrono::seconds{1}), (std::vector<int64_t>{d.id.value}));
  EXPECT_TRUE(claim_ids(5, "w3").empty());
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  EXPECT_EQ(claim_ids(5, "w3"), (std::vector<int64_t>{d.id.value}));
  EXPECT_TRUE(claim_ids(5, "w2").empty());
}

TEST_P(DitherRepositoryContract, RenewingALeaseKeepsItFromOtherWorkers) {
  const DitherRecord d = create(new_image_id());
  EXPECT_EQ(claim_ids(5, "w1", std::chrono::seconds{1}), (std::vector<int64_t>{d.id.value}));
  EXPECT_FALSE(value_of(repo_->renew_lease(d.id, "w2", std::chrono::seconds{600})));
  EXPECT_TRUE(value_of(repo_->renew_lease(d.id, "w1", std::chrono::seconds{600})));
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});  // past the first lease
  EXPECT_TRUE(claim_ids(5, "w2").empty()) << "renewed: still w1's";
  EXPECT_FALSE(value_of(repo_->renew_lease(DitherId{987654}, "w1", std::chrono::seconds{60})));
  expect_error(repo_->renew_lease(d.id, "", std::chrono::seconds{60}), ErrorKind::kInvalidArgument);

  // A short renewal ends like a short claim; then another worker takes it and the first can no
  // longer renew.
  EXPECT_TRUE(value_of(repo_->renew_lease(d.id, "w1", std::chrono::seconds{0})));
  EXPECT_EQ(claim_ids(5, "w2"), (std::vector<int64_t>{d.id.value}));
  EXPECT_FALSE(value_of(repo_->renew_lease(d.id, "w1", std::chrono::seconds{600})));
  EXPECT_TRUE(value_of(repo_->renew_lease(d.id, "w2", std::chrono::seconds{600})));

  // Released, finished or failed: nothing to renew.
  expect_ok(repo_->release_dither(d.id, "w2"));
  EXPECT_FALSE(value_of(repo_->renew_lease(d.id, "w2", std::chrono::seconds{600})));
  EXPECT_EQ(claim_ids(5, "w3"), (std::vector<int64_t>{d.id.value}));
  ASSERT_TRUE(value_of(repo_->fail_dither(d.id, "boom", event(kDitherFailed, d.uuid))));
  EXPECT_FALSE(value_of(repo_->renew_lease(d.id, "w3", std::chrono::seconds{600})));
}

TEST_P(DitherRepositoryContract, EveryClaimCountsAnAttempt) {
  const DitherRecord d = create(new_image_id());
  EXPECT_EQ(get(d.id).attempts, 0);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::vector<DitherRecord> claimed =
        value_of(repo_->claim_dithers(1, "w" + std::to_string(attempt), std::chrono::seconds{0}));
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].attempts, attempt);
    EXPECT_EQ(get(d.id).attempts, attempt);
  }
  // Releasing does not undo the count; renewing does not add to it.
  ASSERT_EQ(claim_ids(1, "w4"), (std::vector<int64_t>{d.id.value}));
  EXPECT_TRUE(value_of(repo_->renew_lease(d.id, "w4", std::chrono::seconds{600})));
  expect_ok(repo_->release_dither(d.id, "w4"));
  EXPECT_EQ(get(d.id).attempts, 4);
  EXPECT_EQ(value_of(repo_->claim_dithers(1, "w5", std::chrono::seconds{60})).at(0).attempts, 5);
  // The count is in lists too.
  EXPECT_EQ(value_of(repo_->dithers_of(d.uuid)).at(0).attempts, 5);
}

TEST_P(DitherRepositoryContract, OutboxParksAndRepublishes) {
  const ImageId uuid = new_image_id();
  check_outbox_parking(*repo_, [&](int i) {
    const DitherRecord d = create(uuid);
    Message m = event(kDitherUploaded, uuid, "park-" + std::to_string(i));
    EXPECT_TRUE(value_of(repo_->finish_dither(d.id, ObjectKey{"dithers/p.png"}, "u", m)));
    return m;
  });
}

TEST_P(DitherRepositoryContract, ReleaseGivesADitherBackAtOnce) {
  const DitherRecord a = create(new_image_id());
  const DitherRecord b = create(new_image_id());
  EXPECT_EQ(claim_ids(5, "w1"), (std::vector<int64_t>{a.id.value, b.id.value}));
  expect_ok(repo_->release_dither(a.id, "w2"));  // not w2's: nothing happens
  EXPECT_TRUE(claim_ids(5, "w2").empty());
  expect_ok(repo_->release_dither(a.id, "w1"));
  expect_ok(repo_->release_dither(DitherId{987654}, "w1"));  // unknown: a no-op
  EXPECT_EQ(claim_ids(5, "w2"), (std::vector<int64_t>{a.id.value}));
  expect_ok(repo_->release_dither(a.id, "w1"));  // w2 holds it now: w1 cannot give it back
  EXPECT_TRUE(claim_ids(5, "w3").empty());
}

TEST_P(DitherRepositoryContract, FinishedAndFailedDithersAreNeverClaimed) {
  const ImageId uuid = new_image_id();
  const DitherRecord a = create(uuid);
  const DitherRecord b = create(uuid);
  const DitherRecord c = create(uuid);
  EXPECT_EQ(claim_ids(2, "w1", std::chrono::seconds{0}),
            (std::vector<int64_t>{a.id.value, b.id.value}));
  EXPECT_EQ(claim_ids(1, "w2"), (std::vector<int64_t>{a.id.value}));
  // Finishing and failing apply to PENDING dithers whoever holds them, as before.
  EXPECT_TRUE(value_of(
      repo_->finish_dither(a.id, ObjectKey{"dithers/a.png"}, "u", event(kDitherUploaded, uuid))));
  EXPECT_TRUE(value_of(repo_->fail_dither(b.id, "boom", event(kDitherFailed, uuid))));
  expect_ok(repo_->release_dither(a.id, "w2"));
  EXPECT_EQ(claim_ids(10, "w3", std::chrono::seconds{0}), (std::vector<int64_t>{c.id.value}));
  EXPECT_TRUE(value_of(
      repo_->finish_dither(c.id, ObjectKey{"dithers/c.png"}, "u", event(kDitherUploaded, uuid))));
  EXPECT_TRUE(claim_ids(10, "w4").empty());
  EXPECT_EQ(get(a.id).status, kStatusFinished);
  EXPECT_EQ(get(b.id).status, kStatusFailed);
}

TEST_P(DitherRepositoryContract, ConcurrentWorkersNeverClaimTheSameDither) {
  std::vector<int64_t> made;
  for (int i = 0; i < 60; ++i) made.push_back(create(new_image_id()).id.value);
  expect_each_claimed_once<DitherRecord>(
      made, 6,
      [&](int limit, const std::string& worker) {
        return repo_->claim_dithers(limit, worker, std::chrono::seconds{600});
      },
      [](const DitherRecord& r) { return r.id.value; });
}

TEST_P(DitherRepositoryContract, FinishCompletesAPendingDitherAndQueuesTheEvent) {
  const ImageId uuid = new_image_id();
  const DitherRecord d = create(uuid);
  const Message done = event(kDitherUploaded, uuid, "done");
  const ObjectKey key{"dithers/" + uuid.value + "/1.png"};
  EXPECT_TRUE(value_of(repo_->finish_dither(d.id, key, "http://h/files/dithers/1.png", done)));

  DitherRecord got = get(d.id);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.blob_key, key);
  EXPECT_EQ(got.url_dither, "http://h/files/dithers/1.png");
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.created_at, d.created_at);
  EXPECT_GE(got.updated_at, d.updated_at);
  expect_outbox(*repo_, {done});

  // Not PENDING any more: nothing changes and no event is queued.
  EXPECT_FALSE(value_of(repo_->finish_dither(d.id, ObjectKey{"dithers/other.png"}, "other",
                                             event(kDitherUploaded, uuid, "again"))));
  EXPECT_FALSE(value_of(repo_->fail_dither(d.id, "late failure", event(kDitherFailed, uuid))));
  expect_same_dither(get(d.id), got);
  expect_outbox(*repo_, {done});
}

TEST_P(DitherRepositoryContract, FailMarksAPendingDitherFailedAndQueuesTheEvent) {
  const ImageId uuid = new_image_id();
  const DitherRecord d = create(uuid);
  const Message failed = event(kDitherFailed, uuid, "failed");
  EXPECT_TRUE(value_of(repo_->fail_dither(d.id, "cannot decode", failed)));
  DitherRecord got = get(d.id);
  EXPECT_EQ(got.status, kStatusFailed);
  EXPECT_EQ(got.error, "cannot decode");
  EXPECT_EQ(got.url_dither, "");

  EXPECT_FALSE(value_of(
      repo_->finish_dither(d.id, ObjectKey{"dithers/x.png"}, "u", event(kDitherUploaded, uuid))));
  EXPECT_FALSE(value_of(repo_->fail_dither(d.id, "again", event(kDitherFailed, uuid))));
  expect_same_dither(get(d.id), got);
  expect_outbox(*repo_, {failed});
}

TEST_P(DitherRepositoryContract, FinishOrFailOfUnknownDitherIsFalse) {
  const ImageId uuid = new_image_id();
  EXPECT_FALSE(value_of(repo_->finish_dither(DitherId{5555}, ObjectKey{"dithers/x.png"}, "u",
                                             event(kDitherUploaded, uuid))));
  EXPECT_FALSE(value_of(repo_->fail_dither(DitherId{5555}, "e", event(kDitherFailed, uuid))));
  expect_outbox(*repo_, {});
}

TEST_P(DitherRepositoryContract, EventsAreQueuedInCommitOrderAndRemovable) {
  const ImageId uuid = new_image_id();
  std::vector<Message> queued;
  for (int i = 0; i < 4; ++i) {
    const DitherRecord d = create(uuid);
    queued.push_back(event(kDitherUploaded, uuid, std::to_string(i)));
    ASSERT_TRUE(value_of(repo_->finish_dither(d.id, ObjectKey{"dithers/a.png"}, "u", queued[i])));
  }
  expect_outbox(*repo_, queued);
  std::vector<OutboxEntry> first = value_of(repo_->pending_messages(1));
  ASSERT_EQ(first.size(), 1u);
  expect_same_message(first[0].message, queued[0]);
  expect_ok(repo_->remove_message(first[0].seq));
  queued.erase(queued.begin());
  expect_outbox(*repo_, queued);
}

TEST_P(DitherRepositoryContract, RecordOriginalWithoutAutoDitherRemembersIt) {
  const ImageId uuid = new_image_id();
  const OriginalRecord o = original(uuid);
  std::optional<DitherRecord> created = value_of(repo_->record_original(o, std::nullopt, "m-1"));
  EXPECT_FALSE(created.has_value());
  OriginalRecord got = value_of(repo_->get_original(uuid));
  EXPECT_EQ(got.uuid, o.uuid);
  EXPECT_EQ(got.url, o.url);
  EXPECT_EQ(got.filename, o.filename);
  EXPECT_EQ(got.blob_key, o.blob_key);
  EXPECT_EQ(got.email, o.email);
  EXPECT_EQ(got.content_type, "image/png");
  EXPECT_EQ(got.frames, 1);
  EXPECT_TRUE(value_of(repo_->dithers_of(uuid)).empty());
  expect_outbox(*repo_, {});

  // A later message about the same original updates it.
  ASSERT_TRUE(repo_->record_original(original(uuid, "http://h/new.png"), std::nullopt, "m-2").ok());
  EXPECT_EQ(value_of(repo_->get_original(uuid)).url, "http://h/new.png");
}

// An animated original keeps its type and frame count (what a dither without a format is made
// as); one whose message said neither is a still image of unknown type.
TEST_P(DitherRepositoryContract, RecordOriginalKeepsTheFramesOfAnAnimation) {
  const ImageId uuid = new_image_id();
  OriginalRecord o = original(uuid);
  o.content_type = "image/webp";
  o.frames = 7;
  ASSERT_TRUE(repo_->record_original(o, std::nullopt, "m-1").ok());
  OriginalRecord got = value_of(repo_->get_original(uuid));
  EXPECT_EQ(got.content_type, "image/webp");
  EXPECT_EQ(got.frames, 7);

  const ImageId bare = new_image_id();
  OriginalRecord unknown = original(bare);
  unknown.content_type = "";
  ASSERT_TRUE(repo_->record_original(unknown, std::nullopt, "m-2").ok());
  got = value_of(repo_->get_original(bare));
  EXPECT_EQ(got.content_type, "");
  EXPECT_EQ(got.frames, 1);
}

TEST_P(DitherRepositoryContract, RecordOriginalWithAutoDitherCreatesItOnce) {
  const ImageId uuid = new_image_id();
  DitherRecord wanted = requested(uuid, "ignored");
  std::optional<DitherRecord> created =
      value_of(repo_->record_original(original(uuid), wanted, "m-1"));
  ASSERT_TRUE(created.has_value());
  EXPECT_GT(created->id.value, 0);
  EXPECT_EQ(created->status, kStatusPending);
  EXPECT_EQ(created->request_id, "m-1");
  EXPECT_EQ(created->uuid, uuid);
  EXPECT_EQ(created->channels, wanted.channels);
  EXPECT_EQ(created->options_json, wanted.options_json);
  expect_same_dither(get(created->id), *created);
  EXPECT_EQ(claim_ids(10, "w1"), (std::vector<int64_t>{created->id.value}));

  // The same message again: nothing changes.
  std::optional<DitherRecord> again =
      value_of(repo_->record_original(original(uuid, "http://h/changed.png"), wanted, "m-1"));
  EXPECT_FALSE(again.has_value());
  EXPECT_EQ(value_of(repo_->dithers_of(uuid)).size(), 1u);
  EXPECT_EQ(value_of(repo_->get_original(uuid)).url, original(uuid).url);
  expect_outbox(*repo_, {});
}

TEST_P(DitherRepositoryContract, RecordOriginalIsOncePerMessageIdEvenWithoutAutoDither) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(uuid), std::nullopt, "m-1").ok());
  std::optional<DitherRecord> later =
      value_of(repo_->record_original(original(uuid), requested(uuid, "x"), "m-1"));
  EXPECT_FALSE(later.has_value());
  EXPECT_TRUE(value_of(repo_->dithers_of(uuid)).empty());
}

TEST_P(DitherRepositoryContract, DeleteDithersOfRemovesThemAndQueuesOneEvent) {
  const ImageId uuid = new_image_id();
  const ImageId other = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(uuid), requested(uuid, ""), "m-1").ok());
  const DitherRecord extra = create(uuid);
  const DitherRecord kept = create(other);
  const Message deleted = event(kDitherDeleted, uuid, "deleted");

  std::vector<DitherRecord> removed =
      value_of(repo_->delete_dithers_of(uuid, deleted, /*forget_original=*/false, ""));
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].id, extra.id);  // newest first
  expect_same_dither(removed[0], extra);
  EXPECT_TRUE(value_of(repo_->dithers_of(uuid)).empty());
  expect_error(repo_->get_dither(extra.id), ErrorKind::kNotFound);
  EXPECT_EQ(get(kept.id).id, kept.id);
  EXPECT_TRUE(repo_->get_original(uuid).ok());  // kept without forget_original
  expect_outbox(*repo_, {deleted});

  // Nothing left to delete: no event.
  EXPECT_TRUE(value_of(repo_->delete_dithers_of(uuid, deleted, false, "")).empty());
  expect_outbox(*repo_, {deleted});
}

TEST_P(DitherRepositoryContract, DeleteDithersOfWithForgetOriginal) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(uuid), requested(uuid, ""), "m-1").ok());
  const Message deleted = event(kDitherDeleted, uuid);
  EXPECT_EQ(value_of(repo_->delete_dithers_of(uuid, deleted, true, "m-2")).size(), 1u);
  expect_error(repo_->get_original(uuid), ErrorKind::kNotFound);
  expect_outbox(*repo_, {deleted});

  // An original without dithers is forgotten too, without an event.
  const ImageId bare = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(bare), std::nullopt, "m-3").ok());
  EXPECT_TRUE(
      value_of(repo_->delete_dithers_of(bare, event(kDitherDeleted, bare), true, "m-4")).empty());
  expect_error(repo_->get_original(bare), ErrorKind::kNotFound);
  expect_outbox(*repo_, {deleted});
}

TEST_P(DitherRepositoryContract, DeleteDithersOfIsOncePerMessageId) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(uuid), std::nullopt, "m-1").ok());
  create(uuid);
  const Message deleted = event(kDitherDeleted, uuid);
  EXPECT_EQ(value_of(repo_->delete_dithers_of(uuid, deleted, false, "m-2")).size(), 1u);

  const DitherRecord newer = create(uuid);
  EXPECT_TRUE(value_of(repo_->delete_dithers_of(uuid, deleted, true, "m-2")).empty());
  EXPECT_EQ(get(newer.id).id, newer.id);        // not deleted by the repeated message
  EXPECT_TRUE(repo_->get_original(uuid).ok());  // nor the original
  expect_outbox(*repo_, {deleted});

  // Without a message id (an HTTP request) there is no de-duplication.
  EXPECT_EQ(value_of(repo_->delete_dithers_of(uuid, deleted, false, "")).size(), 1u);
  create(uuid);
  EXPECT_EQ(value_of(repo_->delete_dithers_of(uuid, deleted, false, "")).size(), 1u);
  expect_outbox(*repo_, {deleted, deleted, deleted});
}

TEST_P(DitherRepositoryContract, DeleteDitherRemovesOnlyThatOneAndQueuesTheEvent) {
  const ImageId uuid = new_image_id();
  const ImageId other = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(uuid), requested(uuid, ""), "m-1").ok());
  const DitherRecord older = value_of(repo_->dithers_of(uuid)).at(0);
  DitherRecord newer = create(uuid);
  const DitherRecord kept = create(other);
  const Message uploaded = event(kDitherUploaded, uuid, "uploaded");
  const ObjectKey key{"dithers/" + uuid.value + "/" + std::to_string(newer.id.value) + ".png"};
  ASSERT_TRUE(value_of(repo_->finish_dither(newer.id, key, "http://h/n.png", uploaded)));
  newer = get(newer.id);
  const Message deleted = event(kDitherDeleted, uuid, "one");

  DitherRecord removed = value_of(repo_->delete_dither(uuid, newer.id, deleted));
  expect_same_dither(removed, newer);  // the whole row as it was, blob key included
  expect_error(repo_->get_dither(newer.id), ErrorKind::kNotFound);
  EXPECT_EQ(ids(value_of(repo_->dithers_of(uuid))), (std::vector<int64_t>{older.id.value}));
  expect_same_dither(get(older.id), older);
  expect_same_dither(get(kept.id), kept);
  EXPECT_TRUE(repo_->get_original(uuid).ok());
  expect_outbox(*repo_, {uploaded, deleted});

  // Gone: a second delete is kNotFound and queues nothing; finishing it now changes nothing.
  expect_error(repo_->delete_dither(uuid, newer.id, deleted), ErrorKind::kNotFound);
  EXPECT_FALSE(value_of(repo_->finish_dither(newer.id, key, "u", event(kDitherUploaded, uuid))));
  EXPECT_FALSE(value_of(repo_->fail_dither(newer.id, "late", event(kDitherFailed, uuid))));
  expect_outbox(*repo_, {uploaded, deleted});

  // The last one of the image goes the same way.
  EXPECT_EQ(value_of(repo_->delete_dither(uuid, older.id, deleted)).id, older.id);
  EXPECT_TRUE(value_of(repo_->dithers_of(uuid)).empty());
  expect_outbox(*repo_, {uploaded, deleted, deleted});
}

TEST_P(DitherRepositoryContract, DeleteDitherOfAnotherOriginalOrUnknownIsNotFound) {
  const ImageId uuid = new_image_id();
  const ImageId other = new_image_id();
  const DitherRecord mine = create(uuid);
  const DitherRecord theirs = create(other);
  const Message deleted = event(kDitherDeleted, uuid);
  expect_error(repo_->delete_dither(uuid, theirs.id, deleted), ErrorKind::kNotFound);
  expect_error(repo_->delete_dither(other, mine.id, event(kDitherDeleted, other)),
               ErrorKind::kNotFound);
  expect_error(repo_->delete_dither(uuid, DitherId{987654}, deleted), ErrorKind::kNotFound);
  expect_error(repo_->delete_dither(new_image_id(), mine.id, deleted), ErrorKind::kNotFound);
  expect_same_dither(get(mine.id), mine);
  expect_same_dither(get(theirs.id), theirs);
  expect_outbox(*repo_, {});
  // A PENDING one (perhaps being worked on) can be deleted; claims do not protect it.
  EXPECT_EQ(claim_ids(5, "w1"), (std::vector<int64_t>{mine.id.value, theirs.id.value}));
  EXPECT_EQ(value_of(repo_->delete_dither(uuid, mine.id, deleted)).status, kStatusPending);
  EXPECT_TRUE(claim_ids(5, "w2").empty());
  expect_outbox(*repo_, {deleted});
}

TEST_P(DitherRepositoryContract, ConcurrentDeletesOfOneDitherRemoveItOnce) {
  const ImageId uuid = new_image_id();
  constexpr int kThreads = 4;
  std::vector<DitherRecord> made;
  for (int i = 0; i < 5; ++i) made.push_back(create(uuid));
  std::atomic<int> removed{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (const DitherRecord& d : made) {
        auto r = repo_->delete_dither(uuid, d.id, event(kDitherDeleted, uuid));
        if (r.ok()) {
          ++removed;
        } else if (r.error().kind != ErrorKind::kNotFound) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(removed.load(), 5);
  EXPECT_TRUE(value_of(repo_->dithers_of(uuid)).empty());
  EXPECT_EQ(all_pending(*repo_).size(), 5u);  // one event per removed dither
}

TEST_P(DitherRepositoryContract, PingAnswers) { expect_ok(repo_->ping()); }

TEST_P(DitherRepositoryContract, ConcurrentWritesAndReadsAllSucceed) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const ImageId uuid = new_image_id();
      if (!repo_->record_original(original(uuid), std::nullopt, uuid.value).ok()) ++failures;
      for (int i = 0; i < kPerThread; ++i) {
        auto d = repo_->create_dither(
            requested(uuid, "t" + std::to_string(t) + "-" + std::to_string(i)));
        if (!d.ok()) {
          ++failures;
          continue;
        }
        auto got = repo_->get_dither(d->id);
        if (!got.ok() || got->uuid != uuid) ++failures;
        if (!repo_->claim_dithers(5, "t" + std::to_string(t), std::chrono::seconds{0}).ok()) {
          ++failures;
        }
        if (!repo_->list_dithers({10, std::nullopt, ""}).ok()) ++failures;
        if (i % 2 == 0 && !repo_
                               ->finish_dither(d->id, ObjectKey{"dithers/a.png"}, "u",
                                               event(kDitherUploaded, uuid))
                               .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  Page<DitherRecord> all = value_of(repo_->list_dithers({1000, std::nullopt, ""}));
  EXPECT_EQ(all.items.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(claim_ids(1000, "last").size(), static_cast<size_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(all_pending(*repo_).size(), static_cast<size_t>(kThreads * kPerThread / 2));
}

TEST_P(DitherRepositoryContract, OwnerAndRequesterRoundTripEverywhere) {
  const ImageId uuid = new_image_id();
  DitherRecord in = requested(uuid, "req-owned");
  in.owner = "alice";
  in.requested_by = "key:k0123456789a";  // an admin's dither of alice's image
  const DitherRecord out = value_of(repo_->create_dither(in));
  EXPECT_EQ(out.owner, "alice");
  EXPECT_EQ(out.requested_by, "key:k0123456789a");
  expect_same_dither(get(out.id), out);
  const std::vector<DitherRecord> of = value_of(repo_->dithers_of(uuid));
  ASSERT_EQ(of.size(), 1u);
  expect_same_dither(of[0], out);
  const Page<DitherRecord> page =
      value_of(repo_->list_dithers({.limit = 10, .before = std::nullopt, .owner = ""}));
  ASSERT_EQ(page.items.size(), 1u);
  expect_same_dither(page.items[0], out);
  const std::vector<DitherRecord> claimed =
      value_of(repo_->claim_dithers(1, "w1", std::chrono::seconds{600}));
  ASSERT_EQ(claimed.size(), 1u);
  expect_same_dither(claimed[0], out);
  // The same request again returns the stored dither, whoever asks.
  DitherRecord again = in;
  again.requested_by = "mallory";
  expect_same_dither(value_of(repo_->create_dither(again)), out);

  // Unset, both are the system owner (the prototype's bodies name none).
  const DitherRecord plain = create(new_image_id());
  EXPECT_EQ(plain.owner, "system");
  EXPECT_EQ(plain.requested_by, "system");
  expect_same_dither(get(plain.id), plain);
}

TEST_P(DitherRepositoryContract, RecordOriginalKeepsTheOwnerOfTheOriginalAndOfItsAutoDither) {
  const ImageId uuid = new_image_id();
  OriginalRecord o = original(uuid);
  o.owner = "session:0123456789abcdef";
  DitherRecord wanted = requested(uuid, "ignored");
  wanted.owner = wanted.requested_by = "session:0123456789abcdef";
  std::optional<DitherRecord> created = value_of(repo_->record_original(o, wanted, "m-1"));
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->owner, "session:0123456789abcdef");
  EXPECT_EQ(created->requested_by, "session:0123456789abcdef");
  expect_same_dither(get(created->id), *created);
  EXPECT_EQ(value_of(repo_->get_original(uuid)).owner, "session:0123456789abcdef");

  const ImageId bare = new_image_id();
  ASSERT_TRUE(repo_->record_original(original(bare), std::nullopt, "m-2").ok());
  EXPECT_EQ(value_of(repo_->get_original(bare)).owner, "system");
}

TEST_P(DitherRepositoryContract, AnOwnersListPagesThroughItsDithersOnly) {
  check_owner_lists<DitherRecord>(
      [&](const std::string& owner) {
        DitherRecord d = requested(new_image_id(), "req-" + std::to_string(++requests_));
        d.owner = owner;
        d.requested_by = "someone else";  // lists go by owner, not by requester
        return value_of(repo_->create_dither(d));
      },
      [&](const PageRequest& request) { return repo_->list_dithers(request); },
      [](const DitherRecord& r) { return r.id.value; }, "someone else");
}

TEST_P(DitherRepositoryContract, OldestPendingAtIsTheOldestPendingDithersRequestTime) {
  EXPECT_EQ(value_of(repo_->oldest_pending_at()), 0);
  const ImageId uuid = new_image_id();
  const int64_t before = now_millis();
  const DitherRecord first = value_of(repo_->create_dither(requested(uuid, "req-old-1")));
  const DitherRecord second = value_of(repo_->create_dither(requested(uuid, "req-old-2")));
  const int64_t oldest = value_of(repo_->oldest_pending_at());
  EXPECT_EQ(oldest, first.created_at);
  EXPECT_GE(oldest, before);
  // Claimed is still pending; once the first is done, the second is the oldest; then none.
  ASSERT_EQ(claim_ids(1, "w1").size(), 1u);
  EXPECT_EQ(value_of(repo_->oldest_pending_at()), first.created_at);
  EXPECT_TRUE(value_of(repo_->finish_dither(first.id, ObjectKey{"dithers/o.png"}, "u",
                                            event(kDitherUploaded, uuid))));
  EXPECT_EQ(value_of(repo_->oldest_pending_at()), second.created_at);
  EXPECT_TRUE(value_of(repo_->fail_dither(second.id, "boom", event(kDitherFailed, uuid))));
  EXPECT_EQ(value_of(repo_->oldest_pending_at()), 0);
}

TEST_P(DitherRepositoryContract, CountPendingCountsPendingDithersPerOwnerAndInAll) {
  EXPECT_EQ(value_of(repo_->count_pending("")), 0);
  EXPECT_EQ(value_of(repo_->count_pending("alice")), 0);
  const ImageId uuid = new_image_id();
  auto make = [&](const std::string& owner) {
    DitherRecord d = requested(uuid, "req-" + std::to_string(++requests_));
    d.owner = owner;
    d.requested_by = owner;
    return value_of(repo_->create_dither(d));
  };
  const DitherRecord a1 = make("alice");
  const DitherRecord a2 = make("alice");
  make("alice");
  make("bob");
  EXPECT_EQ(value_of(repo_->count_pending("alice")), 3);
  EXPECT_EQ(value_of(repo_->count_pending("bob")), 1);
  EXPECT_EQ(value_of(repo_->count_pending("carol")), 0);
  EXPECT_EQ(value_of(repo_->count_pending("")), 4);
  // A claimed dither is still pending; a finished or failed one is not.
  ASSERT_EQ(claim_ids(1, "w1").size(), 1u);
  EXPECT_EQ(value_of(repo_->count_pending("alice")), 3);
  EXPECT_TRUE(value_of(
      repo_->finish_dither(a1.id, ObjectKey{"dithers/a.png"}, "u", event(kDitherUploaded, uuid))));
  EXPECT_TRUE(value_of(repo_->fail_dither(a2.id, "boom", event(kDitherFailed, uuid))));
  EXPECT_EQ(value_of(repo_->count_pending("alice")), 1);
  EXPECT_EQ(value_of(repo_->count_pending("")), 2);
  // An automatic dither counts for its owner as well.
  const ImageId other = new_image_id();
  OriginalRecord o = original(other);
  o.owner = "bob";
  DitherRecord wanted = requested(other, "ignored");
  wanted.owner = wanted.requested_by = "bob";
  ASSERT_TRUE(repo_->record_original(o, wanted, "m-count").ok());
  EXPECT_EQ(value_of(repo_->count_pending("bob")), 2);
  EXPECT_EQ(value_of(repo_->count_pending("")), 3);
}

// --- Canonical options ---------------------------------------------------------------------
// Rows that an older version wrote (options_form 0) cannot be made through the port: each
// adapter's own tests make them by migrating a database of the previous schema version.

TEST_P(DitherRepositoryContract, NewDithersAreCanonicalAlready) {
  EXPECT_TRUE(value_of(repo_->legacy_options(100)).empty());
  const ImageId uuid = new_image_id();
  create(uuid);
  ASSERT_TRUE(repo_->record_original(original(uuid), requested(uuid, ""), "m-1").ok());
  const DitherRecord finished = create(uuid);
  ASSERT_TRUE(value_of(repo_->finish_dither(finished.id, ObjectKey{"dithers/f.png"}, "u",
                                            event(kDitherUploaded, uuid))));
  ASSERT_EQ(value_of(repo_->dithers_of(uuid)).size(), 3u);
  EXPECT_TRUE(value_of(repo_->legacy_options(100)).empty());
  EXPECT_TRUE(value_of(repo_->legacy_options(0)).empty());
  EXPECT_TRUE(value_of(repo_->legacy_options(-1)).empty());
}

TEST_P(DitherRepositoryContract, SetCanonicalOptionsRewritesTheOptionsOnly) {
  const ImageId uuid = new_image_id();
  const DitherRecord d = create(uuid);
  const DitherRecord other = create(uuid);
  const Message uploaded = event(kDitherUploaded, uuid);
  ASSERT_TRUE(
      value_of(repo_->finish_dither(d.id, ObjectKey{"dithers/d.png"}, "http://h/d.png", uploaded)));
  const DitherRecord before = get(d.id);
  const std::string canonical =
      R"({"algorithm":"atkinson","channels":"4","linear_light":"true","serpentine":"false"})";
  EXPECT_TRUE(value_of(repo_->set_canonical_options(d.id, canonical)));

  DitherRecord expected = before;
  expected.options_json = canonical;
  expect_same_dither(get(d.id), expected);  // updated_at too: the options mean the same
  expect_same_dither(get(other.id), other);
  EXPECT_TRUE(value_of(repo_->legacy_options(100)).empty());
  // Again (a restart that rewrites it once more) is harmless.
  EXPECT_TRUE(value_of(repo_->set_canonical_options(d.id, canonical)));
  expect_same_dither(get(d.id), expected);
  EXPECT_EQ(value_of(repo_->dithers_of(uuid)).at(1).options_json, canonical);
  expect_outbox(*repo_, {uploaded});  // queues nothing
}

TEST_P(DitherRepositoryContract, SetCanonicalOptionsOfAnUnknownDitherIsFalse) {
  const DitherRecord d = create(new_image_id());
  EXPECT_FALSE(value_of(repo_->set_canonical_options(DitherId{987654}, "{}")));
  ASSERT_EQ(
      value_of(repo_->delete_dithers_of(d.uuid, event(kDitherDeleted, d.uuid), false, "")).size(),
      1u);
  EXPECT_FALSE(value_of(repo_->set_canonical_options(d.id, "{}")));  // deleted meanwhile
  expect_error(repo_->get_dither(d.id), ErrorKind::kNotFound);
}

// --- Presets -------------------------------------------------------------------------------

inline PresetRecord preset(std::string owner, std::string name,
                           std::string description = "my favourite",
                           std::string options_json = R"({"algorithm":"atkinson"})") {
  PresetRecord p;
  p.owner = std::move(owner);
  p.name = std::move(name);
  p.description = std::move(description);
  p.options_json = std::move(options_json);
  return p;
}

inline void expect_same_preset(const PresetRecord& a, const PresetRecord& b) {
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.options_json, b.options_json);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

// "owner/name" of each preset, in the order given.
inline std::vector<std::string> keys(const std::vector<PresetRecord>& presets) {
  std::vector<std::string> out;
  for (const PresetRecord& p : presets) out.push_back(p.owner + "/" + p.name);
  return out;
}

TEST_P(DitherRepositoryContract, APutPresetIsStoredWithItsTimes) {
  PresetRecord in = preset("alice", "crisp", "", R"({"algorithm":"bayer","bayer_size":"4"})");
  in.created_at = in.updated_at = 3;  // assigned by the store
  const int64_t before = now_millis();
  bool replaced = true;
  const PresetRecord out = value_of(repo_->put_preset(in, &replaced));
  const int64_t after = now_millis();
  EXPECT_FALSE(replaced);
  EXPECT_GE(out.created_at, before);
  EXPECT_LE(out.created_at, after);
  EXPECT_EQ(out.updated_at, out.created_at);
  PresetRecord expected = in;
  expected.created_at = expected.updated_at = out.created_at;
  expect_same_preset(out, expected);
  expect_same_preset(value_of(repo_->get_preset("alice", "crisp")), out);
  const std::vector<PresetRecord> listed = value_of(repo_->presets_of("alice"));
  ASSERT_EQ(listed.size(), 1u);
  expect_same_preset(listed[0], out);
  EXPECT_TRUE(value_of(repo_->presets_of("bob")).empty());
  expect_outbox(*repo_, {});  // presets are no events
  // `replaced` may be left out.
  EXPECT_EQ(value_of(repo_->put_preset(preset("alice", "second"))).name, "second");
}

TEST_P(DitherRepositoryContract, PresetsAreListedPerOwnerByNameAndAllByOwnerThenName) {
  // Byte order: capitals before small letters, UTF-8 after ASCII.
  for (const auto& [owner, name] : std::vector<std::pair<std::string, std::string>>{
           {"bob", "soft"},
           {"alice", "b"},
           {"alice", "\xC3\xA9t\xC3\xA9"},  // "été"
           {"alice", "a"},
           {"Alice", "a"},  // another owner
           {"alice", "B"},
           {"session:0123456789abcdef", "a"},
       }) {
    bool replaced = true;
    ASSERT_TRUE(repo_->put_preset(preset(owner, name), &replaced).ok()) << owner << "/" << name;
    EXPECT_FALSE(replaced) << owner << "/" << name;
  }
  EXPECT_EQ(keys(value_of(repo_->presets_of("alice"))),
            (std::vector<std::string>{"alice/B", "alice/a", "alice/b", "alice/\xC3\xA9t\xC3\xA9"}));
  EXPECT_EQ(keys(value_of(repo_->presets_of("Alice"))), (std::vector<std::string>{"Alice/a"}));
  EXPECT_EQ(keys(value_of(repo_->presets_of("bob"))), (std::vector<std::string>{"bob/soft"}));
  EXPECT_TRUE(value_of(repo_->presets_of("ALICE")).empty());
  EXPECT_TRUE(value_of(repo_->presets_of("alic")).empty());
  EXPECT_EQ(keys(value_of(repo_->presets_of(""))),
            (std::vector<std::string>{"Alice/a", "alice/B", "alice/a", "alice/b",
                                      "alice/\xC3\xA9t\xC3\xA9", "bob/soft",
                                      "session:0123456789abcdef/a"}));
  // Names compare exactly too.
  expect_error(repo_->get_preset("alice", "A"), ErrorKind::kNotFound);
  expect_error(repo_->get_preset("alice", "a "), ErrorKind::kNotFound);
  expect_error(repo_->get_preset("alice", "\xC3\xA9t\xC3\xA8"), ErrorKind::kNotFound);
  EXPECT_EQ(value_of(repo_->get_preset("alice", "\xC3\xA9t\xC3\xA9")).name, "\xC3\xA9t\xC3\xA9");
}

TEST_P(DitherRepositoryContract, PuttingAPresetAgainReplacesItAndKeepsItsCreationTime) {
  const PresetRecord first = value_of(repo_->put_preset(preset("alice", "crisp", "one", "{}")));
  const PresetRecord bobs = value_of(repo_->put_preset(preset("bob", "crisp", "bob's", "{}")));
  std::this_thread::sleep_for(std::chrono::milliseconds{5});
  const int64_t before = now_millis();
  bool replaced = false;
  const PresetRecord second = value_of(
      repo_->put_preset(preset("alice", "crisp", "two", R"({"algorithm":"sierra"})"), &replaced));
  const int64_t after = now_millis();
  EXPECT_TRUE(replaced);
  EXPECT_EQ(second.owner, "alice");
  EXPECT_EQ(second.name, "crisp");
  EXPECT_EQ(second.description, "two");
  EXPECT_EQ(second.options_json, R"({"algorithm":"sierra"})");
  EXPECT_EQ(second.created_at, first.created_at);
  EXPECT_GE(second.updated_at, before);
  EXPECT_LE(second.updated_at, after);
  EXPECT_GT(second.updated_at, first.updated_at);
  expect_same_preset(value_of(repo_->get_preset("alice", "crisp")), second);
  EXPECT_EQ(value_of(repo_->presets_of("alice")).size(), 1u);
  // Another owner's preset of the same name is another preset: untouched.
  expect_same_preset(value_of(repo_->get_preset("bob", "crisp")), bobs);
  // The description may become empty.
  replaced = false;
  EXPECT_EQ(value_of(repo_->put_preset(preset("alice", "crisp", "", "{}"), &replaced)).description,
            "");
  EXPECT_TRUE(replaced);
  EXPECT_EQ(value_of(repo_->get_preset("alice", "crisp")).description, "");
}

TEST_P(DitherRepositoryContract, DeletingAPresetRemovesOnlyThatOne) {
  ASSERT_TRUE(repo_->put_preset(preset("alice", "crisp")).ok());
  ASSERT_TRUE(repo_->put_preset(preset("alice", "soft")).ok());
  ASSERT_TRUE(repo_->put_preset(preset("bob", "crisp")).ok());
  EXPECT_FALSE(value_of(repo_->delete_preset("alice", "Crisp")));
  EXPECT_FALSE(value_of(repo_->delete_preset("carol", "crisp")));
  EXPECT_TRUE(value_of(repo_->delete_preset("alice", "crisp")));
  expect_error(repo_->get_preset("alice", "crisp"), ErrorKind::kNotFound);
  EXPECT_FALSE(value_of(repo_->delete_preset("alice", "crisp")));
  EXPECT_EQ(keys(value_of(repo_->presets_of(""))),
            (std::vector<std::string>{"alice/soft", "bob/crisp"}));
  // Put again after a delete: a new preset.
  bool replaced = true;
  ASSERT_TRUE(repo_->put_preset(preset("alice", "crisp"), &replaced).ok());
  EXPECT_FALSE(replaced);
}

TEST_P(DitherRepositoryContract, AMissingPresetIsNotFoundAndAnUnnamedOneIsRefused) {
  expect_error(repo_->get_preset("alice", "nothing"), ErrorKind::kNotFound);
  expect_error(repo_->get_preset("", ""), ErrorKind::kNotFound);
  EXPECT_TRUE(value_of(repo_->presets_of("")).empty());
  expect_error(repo_->put_preset(preset("", "crisp")), ErrorKind::kInvalidArgument);
  expect_error(repo_->put_preset(preset("alice", "")), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(value_of(repo_->presets_of("")).empty());
  EXPECT_FALSE(value_of(repo_->delete_preset("alice", "nothing")));
}

TEST_P(DitherRepositoryContract, ConcurrentPutsOfOnePresetCreateItOnce) {
  constexpr int kThreads = 6;
  constexpr int kPuts = 10;
  std::atomic<int> created{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        bool replaced = true;
        auto put = repo_->put_preset(preset("alice", "shared", "by " + std::to_string(t), "{}"),
                                     &replaced);
        if (!put.ok()) {
          ++failures;
          ADD_FAILURE() << put.error().message;
        } else if (!replaced) {
          ++created;
        }
        // Deletes in between make the preset come and go.
        if (t == 0 && i % 3 == 2 && !repo_->delete_preset("alice", "shared").ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(created.load(), 1);
  EXPECT_LE(created.load(), 1 + kPuts / 3);  // once, and once more after each delete at most
  EXPECT_EQ(value_of(repo_->presets_of("alice")).size(), 1u);
}

}  // namespace dither::contract
