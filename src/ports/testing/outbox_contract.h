// The parking half of the Outbox contract (outbox.h), shared by the ImageRepository and
// DitherRepository contracts: each calls check_outbox_parking with a way to queue messages
// through its own write path.
// Header-only: included by the contract headers.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "ports/outbox.h"
#include "ports/records.h"
#include "ports/testing/contract_helpers.h"

namespace dither::contract {

inline std::vector<OutboxEntry> all_parked(Outbox& outbox) {
  return value_of(outbox.parked_messages(1000));
}

// `enqueue(i)` commits one message (distinct per i) and returns it. The outbox must be empty.
inline void check_outbox_parking(Outbox& outbox, const std::function<Message(int)>& enqueue) {
  ASSERT_TRUE(all_pending(outbox).empty());
  OutboxStats stats = value_of(outbox.outbox_stats());
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.parked, 0);
  EXPECT_EQ(stats.oldest_pending_at, 0);
  const int64_t before = now_millis();
  const std::vector<Message> queued = {enqueue(0), enqueue(1), enqueue(2)};
  stats = value_of(outbox.outbox_stats());
  EXPECT_EQ(stats.pending, 3);
  EXPECT_EQ(stats.parked, 0);
  EXPECT_GE(stats.oldest_pending_at, before);
  EXPECT_LE(stats.oldest_pending_at, now_millis());
  std::vector<OutboxEntry> pending = all_pending(outbox);
  ASSERT_EQ(pending.size(), 3u);
  const int64_t a = pending[0].seq;
  EXPECT_EQ(pending[0].attempts, 0);
  EXPECT_EQ(pending[0].last_error, "");
  EXPECT_EQ(pending[0].parked_at, 0);
  EXPECT_TRUE(all_parked(outbox).empty());

  // A counted failure keeps the entry first in the queue, with its count and reason.
  expect_ok(outbox.record_publish_failure(a, "message too large", false));
  pending = all_pending(outbox);
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].seq, a);
  EXPECT_EQ(pending[0].attempts, 1);
  EXPECT_EQ(pending[0].last_error, "message too large");
  EXPECT_EQ(pending[0].parked_at, 0);

  // Parked: out of the queue (the others go on, in order), listed with its reason.
  expect_ok(outbox.record_publish_failure(a, "still too large", true));
  expect_outbox(outbox, {queued[1], queued[2]});
  std::vector<OutboxEntry> parked = all_parked(outbox);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].seq, a);
  expect_same_message(parked[0].message, queued[0]);
  EXPECT_EQ(parked[0].attempts, 2);
  EXPECT_EQ(parked[0].last_error, "still too large");
  EXPECT_GT(parked[0].parked_at, 0);
  EXPECT_TRUE(value_of(outbox.parked_messages(0)).empty());
  expect_ok(outbox.record_publish_failure(987654321, "gone", true));  // unknown: a no-op
  stats = value_of(outbox.outbox_stats());
  EXPECT_EQ(stats.pending, 2);
  EXPECT_EQ(stats.parked, 1);

  // Republished: first in the queue again, its count reset; only a parked entry can be.
  expect_ok(outbox.republish(a));
  EXPECT_TRUE(all_parked(outbox).empty());
  expect_outbox(outbox, queued);
  pending = all_pending(outbox);
  EXPECT_EQ(pending[0].seq, a);
  EXPECT_EQ(pending[0].attempts, 0);
  for (const int64_t seq : {a, pending[1].seq, int64_t{987654321}}) {
    Status refused = outbox.republish(seq);  // no longer parked, never parked, unknown
    ASSERT_FALSE(refused.ok()) << seq;
    EXPECT_EQ(refused.error().kind, ErrorKind::kNotFound) << refused.error().message;
  }

  // A parked entry can be removed like any other.
  expect_ok(outbox.record_publish_failure(pending[2].seq, "invalid topic", true));
  expect_outbox(outbox, {queued[0], queued[1]});
  expect_ok(outbox.remove_message(pending[2].seq));
  EXPECT_TRUE(all_parked(outbox).empty());
  expect_outbox(outbox, {queued[0], queued[1]});
}

}  // namespace dither::contract
