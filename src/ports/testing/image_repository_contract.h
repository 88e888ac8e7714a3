// The contract every ImageRepository adapter must pass (metadata.h, outbox.h).
//
// Header-only. An adapter's test file includes it once and instantiates it with a factory that
// yields a fresh, empty store per test:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, ImageRepositoryContract,
//       ::testing::Values(ImageRepositoryFactory{"file", [] { return open_fresh_store(); }}),
//       dither::contract::FactoryName());
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ports/metadata.h"
#include "ports/testing/contract_helpers.h"
#include "ports/testing/outbox_contract.h"

namespace dither::contract {

using ImageRepositoryFactory = Factory<ImageRepository>;

class ImageRepositoryContract : public ::testing::TestWithParam<ImageRepositoryFactory> {
 protected:
  void SetUp() override {
    repo_ = GetParam().make();
    ASSERT_NE(repo_, nullptr);
  }

  static ImageRecord sample_image(std::string filename = "cat.jpg") {
    ImageRecord r;
    r.uuid = new_image_id();
    r.filename = std::move(filename);
    r.url = "http://localhost:8080/files/originals/" + r.uuid.value + ".jpg";
    r.content_type = "image/jpeg";
    r.size = 123456;
    r.width = 640;
    r.height = 480;
    r.email = "someone@example.com";
    r.blob_key = ObjectKey{"originals/" + r.uuid.value + ".jpg"};
    return r;
  }

  static Message uploaded(const ImageRecord& r) {
    return test_message("images", kImageUploaded, r.uuid.value, r.filename);
  }

  // Inserts a sample image, remembering the message it queued in `queued_`.
  ImageRecord insert(std::string filename = "cat.jpg") {
    ImageRecord r = sample_image(std::move(filename));
    Message m = uploaded(r);
    ImageRecord stored = value_of(repo_->insert_image(r, m));
    queued_.push_back(std::move(m));
    return stored;
  }

  static DitherSummary summary(int64_t dither_id, std::string_view status = kStatusFinished) {
    DitherSummary d;
    d.dither_id = dither_id;
    d.status = std::string(status);
    d.url_dither = status == kStatusFinished
                       ? "http://localhost:8080/files/dithers/" + std::to_string(dither_id) + ".png"
                       : "";
    d.channels = 2 + static_cast<int>(dither_id);
    d.algorithm = "floyd-steinberg";
    d.palette = "uniform";
    d.format = "png";
    d.error = status == kStatusFailed ? "decoder exploded" : "";
    d.created_at = 1'700'000'000'000 + dither_id;
    return d;
  }

  ImageRecord get(const ImageId& uuid) { return value_of(repo_->get_image(uuid)); }

  std::vector<ImageRecord> list_all(int limit) {
    std::vector<ImageRecord> all;
    PageRequest request{limit, std::nullopt, ""};
    for (int pages = 0; pages < 100; ++pages) {
      Page<ImageRecord> page = value_of(repo_->list_images(request));
      all.insert(all.end(), page.items.begin(), page.items.end());
      if (page.next_cursor.empty()) break;
      request.before = std::stoll(page.next_cursor);
    }
    return all;
  }

  std::unique_ptr<ImageRepository> repo_;
  std::vector<Message> queued_;
};

inline void expect_same_image_fields(const ImageRecord& a, const ImageRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.filename, b.filename);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.url, b.url);
  EXPECT_EQ(a.url_dither, b.url_dither);
  EXPECT_EQ(a.content_type, b.content_type);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(a.email, b.email);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.blob_key, b.blob_key);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.owner, b.owner);
}

inline void expect_same_summary(const DitherSummary& a, const DitherSummary& b) {
  EXPECT_EQ(a.dither_id, b.dither_id);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.url_dither, b.url_dither);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.algorithm, b.algorithm);
  EXPECT_EQ(a.palette, b.palette);
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.created_at, b.created_at);
}

TEST_P(ImageRepositoryContract, InsertAssignsIdAndTimestampsAndKeepsFields) {
  ImageRecord in = sample_image("holiday photo.jpg");
  in.id = 999;
  in.created_at = in.updated_at = 5;
  in.dithers.push_back(summary(1));  // ignored: summaries come from the dither topic
  const int64_t before = now_millis();
  ImageRecord out = value_of(repo_->insert_image(in, uploaded(in)));
  const int64_t after = now_millis();

  EXPECT_GT(out.id, 0);
  EXPECT_GE(out.created_at, before);
  EXPECT_LE(out.created_at, after);
  EXPECT_EQ(out.updated_at, out.created_at);
  EXPECT_TRUE(out.dithers.empty());
  ImageRecord expected = in;
  expected.id = out.id;
  expected.created_at = expected.updated_at = out.created_at;
  expect_same_image_fields(out, expected);
  EXPECT_EQ(out.status, kStatusPending);

  ImageRecord got = get(in.uuid);
  expect_same_image_fields(got, out);
  EXPECT_TRUE(got.dithers.empty());
}

// An animation's frame count is kept, in the record and in lists; a still image has 1.
TEST_P(ImageRepositoryContract, KeepsTheFramesOfAnAnimation) {
  const ImageRecord still = insert("still.gif");
  EXPECT_EQ(still.frames, 1);
  ImageRecord in = sample_image("moving.gif");
  in.content_type = "image/gif";
  in.frames = 24;
  const ImageRecord out = value_of(repo_->insert_image(in, uploaded(in)));
  EXPECT_EQ(out.frames, 24);
  EXPECT_EQ(get(in.uuid).frames, 24);
  EXPECT_EQ(get(still.uuid).frames, 1);
  const std::vector<ImageRecord> all = list_all(10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].frames, 24);
  EXPECT_EQ(all[1].frames, 1);
}

TEST_P(ImageRepositoryContract, InsertQueuesTheMessageExactly) {
  insert("a.jpg");
  expect_outbox(*repo_, queued_);
}

TEST_P(ImageRepositoryContract, IdsIncrease) {
  const ImageRecord a = insert();
  const ImageRecord b = insert();
  EXPECT_GT(b.id, a.id);
}

TEST_P(ImageRepositoryContract, DuplicateUuidIsRefusedWithoutQueueingItsMessage) {
  const ImageRecord a = insert();
  ImageRecord again = sample_image("other.jpg");
  again.uuid = a.uuid;
  auto r = repo_->insert_image(again, uploaded(again));
  EXPECT_FALSE(r.ok());
  expect_outbox(*repo_, queued_);
  EXPECT_EQ(get(a.uuid).filename, "cat.jpg");
}

TEST_P(ImageRepositoryContract, GetUnknownIsNotFound) {
  expect_error(repo_->get_image(new_image_id()), ErrorKind::kNotFound);
}

TEST_P(ImageRepositoryContract, ListOfEmptyStoreIsEmptyWithoutCursor) {
  Page<ImageRecord> page = value_of(repo_->list_images({}));
  EXPECT_TRUE(page.items.empty());
  EXPECT_EQ(page.next_cursor, "");
}

TEST_P(ImageRepositoryContract, ListIsNewestFirstAndPagesWithCursors) {
  std::vector<ImageRecord> inserted;
  for (int i = 0; i < 7; ++i) inserted.push_back(insert("f" + std::to_string(i) + ".jpg"));

  Page<ImageRecord> first = value_of(repo_->list_images({3, std::nullopt, ""}));
  ASSERT_EQ(first.items.size(), 3u);
  EXPECT_EQ(first.items[0].uuid, inserted[6].uuid);
  EXPECT_EQ(first.items[1].uuid, inserted[5].uuid);
  EXPECT_EQ(first.items[2].uuid, inserted[4].uuid);
  EXPECT_EQ(first.next_cursor, std::to_string(first.items.back().id));
  expect_same_image_fields(first.items[0], inserted[6]);

  Page<ImageRecord> second = value_of(repo_->list_images({3, std::stoll(first.next_cursor), ""}));
  ASSERT_EQ(second.items.size(), 3u);
  EXPECT_EQ(second.items[0].uuid, inserted[3].uuid);
  EXPECT_EQ(second.items[2].uuid, inserted[1].uuid);
  EXPECT_FALSE(second.next_cursor.empty());

  Page<ImageRecord> last = value_of(repo_->list_images({3, std::stoll(second.next_cursor), ""}));
  ASSERT_EQ(last.items.size(), 1u);
  EXPECT_EQ(last.items[0].uuid, inserted[0].uuid);
  EXPECT_EQ(last.next_cursor, "");
}

TEST_P(ImageRepositoryContract, AFullLastPageHasNoCursor) {
  for (int i = 0; i < 4; ++i) insert();
  Page<ImageRecord> first = value_of(repo_->list_images({2, std::nullopt, ""}));
  ASSERT_EQ(first.items.size(), 2u);
  Page<ImageRecord> second = value_of(repo_->list_images({2, std::stoll(first.next_cursor), ""}));
  EXPECT_EQ(second.items.size(), 2u);
  EXPECT_EQ(second.next_cursor, "");
}

TEST_P(ImageRepositoryContract, ListBeforeGivesOnlyOlderItems) {
  std::vector<ImageRecord> inserted;
  for (int i = 0; i < 5; ++i) inserted.push_back(insert());
  Page<ImageRecord> page = value_of(repo_->list_images({50, inserted[2].id, ""}));
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[0].id, inserted[1].id);
  EXPECT_EQ(page.items[1].id, inserted[0].id);
  EXPECT_EQ(page.next_cursor, "");
}

TEST_P(ImageRepositoryContract, ListClampsTheLimitTo1Through1000) {
  for (int i = 0; i < 3; ++i) insert();
  for (int limit : {0, -7}) {
    Page<ImageRecord> page = value_of(repo_->list_images({limit, std::nullopt, ""}));
    EXPECT_EQ(page.items.size(), 1u) << "limit " << limit;
    EXPECT_FALSE(page.next_cursor.empty());
  }
  Page<ImageRecord> big = value_of(repo_->list_images({1'000'000, std::nullopt, ""}));
  EXPECT_EQ(big.items.size(), 3u);
  EXPECT_EQ(big.next_cursor, "");
}

TEST_P(ImageRepositoryContract, WalkingAllPagesSeesEveryImageOnceNewestFirst) {
  for (int i = 0; i < 11; ++i) insert();
  std::vector<ImageRecord> all = list_all(4);
  ASSERT_EQ(all.size(), 11u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i - 1].id, all[i].id);
}

TEST_P(ImageRepositoryContract, DeleteReturnsTheRecordQueuesTheMessageAndForgetsIt) {
  const ImageRecord a = insert();
  const ImageRecord b = insert();
  ASSERT_TRUE(repo_->mark_finished(a.uuid, summary(1), "m-1").ok());
  Message deleted = test_message("images", kImageDeleted, a.uuid.value, "deleted");

  ImageRecord removed = value_of(repo_->delete_image(a.uuid, deleted));
  EXPECT_EQ(removed.id, a.id);
  EXPECT_EQ(removed.uuid, a.uuid);
  EXPECT_EQ(removed.blob_key, a.blob_key);
  queued_.push_back(deleted);
  expect_outbox(*repo_, queued_);

  expect_error(repo_->get_image(a.uuid), ErrorKind::kNotFound);
  EXPECT_EQ(get(b.uuid).id, b.id);
  std::vector<ImageRecord> all = list_all(50);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].uuid, b.uuid);
}

TEST_P(ImageRepositoryContract, DeleteUnknownIsNotFoundAndQueuesNothing) {
  insert();
  expect_error(repo_->delete_image(new_image_id(), test_message("images", kImageDeleted, "x")),
               ErrorKind::kNotFound);
  expect_outbox(*repo_, queued_);
}

TEST_P(ImageRepositoryContract, ReinsertingADeletedUuidStartsWithoutSummaries) {
  ImageRecord a = insert();
  ASSERT_TRUE(repo_->mark_finished(a.uuid, summary(1), "m-1").ok());
  ASSERT_TRUE(repo_->delete_image(a.uuid, test_message("images", kImageDeleted, "x")).ok());
  ImageRecord again = sample_image();
  again.uuid = a.uuid;
  ASSERT_TRUE(repo_->insert_image(again, uploaded(again)).ok());
  EXPECT_TRUE(get(a.uuid).dithers.empty());
}

TEST_P(ImageRepositoryContract, OutboxIsOldestFirstLimitedAndRemovable) {
  for (int i = 0; i < 5; ++i) insert("f" + std::to_string(i));
  std::vector<OutboxEntry> two = value_of(repo_->pending_messages(2));
  ASSERT_EQ(two.size(), 2u);
  expect_same_message(two[0].message, queued_[0]);
  expect_same_message(two[1].message, queued_[1]);
  EXPECT_TRUE(value_of(repo_->pending_messages(0)).empty());

  expect_ok(repo_->remove_message(two[0].seq));
  expect_ok(repo_->remove_message(two[0].seq));  // already gone: not an error
  queued_.erase(queued_.begin());
  expect_outbox(*repo_, queued_);

  // Removing from the middle keeps the others in order.
  std::vector<OutboxEntry> all = all_pending(*repo_);
  ASSERT_EQ(all.size(), 4u);
  expect_ok(repo_->remove_message(all[2].seq));
  queued_.erase(queued_.begin() + 2);
  expect_outbox(*repo_, queued_);
}

TEST_P(ImageRepositoryContract, OutboxParksAndRepublishes) {
  check_outbox_parking(*repo_, [&](int i) {
    insert("park-" + std::to_string(i) + ".jpg");
    return queued_.back();
  });
}

TEST_P(ImageRepositoryContract, NewEntriesFollowOlderOnesAfterRemoval) {
  insert();
  for (const OutboxEntry& e : all_pending(*repo_)) expect_ok(repo_->remove_message(e.seq));
  queued_.clear();
  const std::vector<OutboxEntry> none = all_pending(*repo_);
  EXPECT_TRUE(none.empty());
  insert();
  insert();
  expect_outbox(*repo_, queued_);
}

TEST_P(ImageRepositoryContract, MarkFinishedSetsStatusUrlAndSummary) {
  const ImageRecord a = insert();
  const ImageRecord other = insert();
  const DitherSummary d = summary(7);
  EXPECT_TRUE(value_of(repo_->mark_finished(a.uuid, d, "m-1")));

  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.url_dither, d.url_dither);
  EXPECT_EQ(got.error, "");
  EXPECT_GE(got.updated_at, a.updated_at);
  EXPECT_EQ(got.created_at, a.created_at);
  ASSERT_EQ(got.dithers.size(), 1u);
  expect_same_summary(got.dithers[0], d);

  EXPECT_EQ(get(other.uuid).status, kStatusPending);
  EXPECT_TRUE(get(other.uuid).dithers.empty());
  expect_outbox(*repo_, queued_);  // consumers queue nothing
}

TEST_P(ImageRepositoryContract, MarkFinishedIsAppliedOncePerMessageId) {
  const ImageRecord a = insert();
  EXPECT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "m-1")));
  EXPECT_FALSE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-1")));
  ImageRecord got = get(a.uuid);
  ASSERT_EQ(got.dithers.size(), 1u);
  EXPECT_EQ(got.dithers[0].dither_id, 1);
  EXPECT_EQ(got.url_dither, summary(1).url_dither);
}

TEST_P(ImageRepositoryContract, MarkFinishedClearsAnEarlierError) {
  const ImageRecord a = insert();
  EXPECT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(1, kStatusFailed), "m-1")));
  EXPECT_EQ(get(a.uuid).error, "decoder exploded");
  EXPECT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-2")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.error, "");
}

TEST_P(ImageRepositoryContract, SummariesAreNewestFirstAndReplacedBySameDitherId) {
  const ImageRecord a = insert();
  ASSERT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(3, kStatusFailed), "m-1")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(5), "m-2")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(4), "m-3")));
  DitherSummary replacement = summary(3);
  replacement.url_dither = "http://localhost:8080/files/dithers/3-again.png";
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, replacement, "m-4")));

  ImageRecord got = get(a.uuid);
  ASSERT_EQ(got.dithers.size(), 3u);
  EXPECT_EQ(got.dithers[0].dither_id, 5);
  EXPECT_EQ(got.dithers[1].dither_id, 4);
  expect_same_summary(got.dithers[2], replacement);
  EXPECT_EQ(got.url_dither, replacement.url_dither);  // the latest finished one
}

TEST_P(ImageRepositoryContract, MarkFailedSetsStatusAndErrorAndAddsSummary) {
  const ImageRecord a = insert();
  const DitherSummary d = summary(2, kStatusFailed);
  EXPECT_TRUE(value_of(repo_->mark_failed(a.uuid, d, "m-1")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFailed);
  EXPECT_EQ(got.error, d.error);
  ASSERT_EQ(got.dithers.size(), 1u);
  expect_same_summary(got.dithers[0], d);
  EXPECT_FALSE(value_of(repo_->mark_failed(a.uuid, summary(3, kStatusFailed), "m-1")));
  EXPECT_EQ(get(a.uuid).dithers.size(), 1u);
}

TEST_P(ImageRepositoryContract, MarkFailedDoesNotUndoAFinishedImage) {
  const ImageRecord a = insert();
  const DitherSummary done = summary(1);
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, done, "m-1")));
  EXPECT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(2, kStatusFailed), "m-2")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.url_dither, done.url_dither);
  EXPECT_EQ(got.error, "");
  ASSERT_EQ(got.dithers.size(), 2u);
  EXPECT_EQ(got.dithers[0].status, kStatusFailed);
}

TEST_P(ImageRepositoryContract, MarkDithersDeletedClearsUrlAndSummaries) {
  const ImageRecord a = insert();
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "m-1")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-2")));
  EXPECT_TRUE(value_of(repo_->mark_dithers_deleted(a.uuid, "m-3")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusDitherDeleted);
  EXPECT_EQ(got.url_dither, "");
  EXPECT_TRUE(got.dithers.empty());

  // A repeated DITHER_DELETED changes nothing, even after new dithers arrived.
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(3), "m-4")));
  EXPECT_FALSE(value_of(repo_->mark_dithers_deleted(a.uuid, "m-3")));
  EXPECT_EQ(get(a.uuid).status, kStatusFinished);
  EXPECT_EQ(get(a.uuid).dithers.size(), 1u);
  expect_outbox(*repo_, queued_);
}

TEST_P(ImageRepositoryContract, MarkDitherDeletedShowsTheNewestFinishedOneLeft) {
  const ImageRecord a = insert();
  const ImageRecord b = insert();
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "m-1")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(3), "m-2")));
  ASSERT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(4, kStatusFailed), "m-3")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-4")));  // finished last
  ASSERT_TRUE(value_of(repo_->mark_finished(b.uuid, summary(3), "m-5")));  // same id, other image
  EXPECT_EQ(get(a.uuid).url_dither, summary(2).url_dither);

  // Deleting a dither the image does not show: the newest finished one left is shown.
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 4, "m-6")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.url_dither, summary(3).url_dither);
  ASSERT_EQ(got.dithers.size(), 3u);
  EXPECT_EQ(got.dithers[0].dither_id, 3);
  EXPECT_EQ(got.dithers[1].dither_id, 2);
  EXPECT_EQ(got.dithers[2].dither_id, 1);
  EXPECT_GE(got.updated_at, a.updated_at);

  // The newest finished one goes: the next newest finished one is shown.
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 3, "m-7")));
  got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.url_dither, summary(2).url_dither);
  ASSERT_EQ(got.dithers.size(), 2u);
  expect_same_summary(got.dithers[0], summary(2));
  expect_same_summary(got.dithers[1], summary(1));

  // The other image's dither with the same id is untouched.
  ImageRecord other = get(b.uuid);
  EXPECT_EQ(other.status, kStatusFinished);
  EXPECT_EQ(other.url_dither, summary(3).url_dither);
  ASSERT_EQ(other.dithers.size(), 1u);

  // A dither the image has no summary of (deleted while PENDING): the image shows the same.
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 99, "m-8")));
  EXPECT_EQ(get(a.uuid).url_dither, summary(2).url_dither);
  EXPECT_EQ(get(a.uuid).dithers.size(), 2u);

  // The last finished ones go: no url, status DITHER_DELETED.
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 2, "m-9")));
  EXPECT_EQ(get(a.uuid).url_dither, summary(1).url_dither);
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 1, "m-10")));
  got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusDitherDeleted);
  EXPECT_EQ(got.url_dither, "");
  EXPECT_TRUE(got.dithers.empty());
  expect_outbox(*repo_, queued_);  // a consumer write queues nothing
}

TEST_P(ImageRepositoryContract, MarkDitherDeletedWithOnlyFailedOnesLeftIsDitherDeleted) {
  const ImageRecord a = insert();
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "m-1")));
  ASSERT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(2, kStatusFailed), "m-2")));
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 1, "m-3")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusDitherDeleted);
  EXPECT_EQ(got.url_dither, "");
  ASSERT_EQ(got.dithers.size(), 1u);
  expect_same_summary(got.dithers[0], summary(2, kStatusFailed));

  // A later finished dither makes it FINISHED again, as always.
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(5), "m-4")));
  EXPECT_EQ(get(a.uuid).status, kStatusFinished);
}

TEST_P(ImageRepositoryContract, MarkDitherDeletedAndTheImagesError) {
  // FINISHED again: no error, as after mark_finished.
  const ImageRecord a = insert();
  ASSERT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(1, kStatusFailed), "m-1")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-2")));
  ASSERT_TRUE(value_of(repo_->mark_failed(a.uuid, summary(3, kStatusFailed), "m-3")));
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 3, "m-4")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.url_dither, summary(2).url_dither);
  EXPECT_EQ(got.error, "");

  // DITHER_DELETED keeps the image's error, as mark_dithers_deleted does.
  const ImageRecord b = insert();
  ASSERT_TRUE(value_of(repo_->mark_failed(b.uuid, summary(1, kStatusFailed), "m-5")));
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(b.uuid, 1, "m-6")));
  got = get(b.uuid);
  EXPECT_EQ(got.status, kStatusDitherDeleted);
  EXPECT_EQ(got.url_dither, "");
  EXPECT_EQ(got.error, summary(1, kStatusFailed).error);
  EXPECT_TRUE(got.dithers.empty());
}

TEST_P(ImageRepositoryContract, MarkDitherDeletedIsAppliedOncePerMessageId) {
  const ImageRecord a = insert();
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "m-1")));
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-2")));
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 2, "m-3")));
  // The same message again, even naming another dither, and even after the deleted id came
  // back: nothing changes.
  ASSERT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "m-4")));
  EXPECT_FALSE(value_of(repo_->mark_dither_deleted(a.uuid, 2, "m-3")));
  EXPECT_FALSE(value_of(repo_->mark_dither_deleted(a.uuid, 1, "m-3")));
  EXPECT_FALSE(value_of(repo_->mark_dithers_deleted(a.uuid, "m-3")));  // ids are shared
  EXPECT_FALSE(value_of(repo_->mark_dither_deleted(a.uuid, 1, "m-1")));
  ImageRecord got = get(a.uuid);
  EXPECT_EQ(got.status, kStatusFinished);
  EXPECT_EQ(got.dithers.size(), 2u);
  EXPECT_EQ(got.url_dither, summary(2).url_dither);
  // Without a message id there is no de-duplication.
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 2, "")));
  EXPECT_TRUE(value_of(repo_->mark_dither_deleted(a.uuid, 2, "")));
  EXPECT_EQ(get(a.uuid).url_dither, summary(1).url_dither);
}

TEST_P(ImageRepositoryContract, UnknownUuidIsANoOpThatStillConsumesTheMessageId) {
  const ImageId missing = new_image_id();
  EXPECT_FALSE(value_of(repo_->mark_finished(missing, summary(1), "m-1")));
  EXPECT_FALSE(value_of(repo_->mark_failed(missing, summary(2, kStatusFailed), "m-2")));
  EXPECT_FALSE(value_of(repo_->mark_dithers_deleted(missing, "m-3")));
  EXPECT_FALSE(value_of(repo_->mark_dither_deleted(missing, 1, "m-4")));
  expect_error(repo_->get_image(missing), ErrorKind::kNotFound);

  // Had the image appeared afterwards, the same messages would still be ignored.
  ImageRecord late = sample_image();
  late.uuid = missing;
  ASSERT_TRUE(repo_->insert_image(late, uploaded(late)).ok());
  EXPECT_FALSE(value_of(repo_->mark_finished(missing, summary(1), "m-1")));
  EXPECT_FALSE(value_of(repo_->mark_failed(missing, summary(2, kStatusFailed), "m-2")));
  EXPECT_FALSE(value_of(repo_->mark_dithers_deleted(missing, "m-3")));
  EXPECT_FALSE(value_of(repo_->mark_dither_deleted(missing, 1, "m-4")));
  ImageRecord got = get(missing);
  EXPECT_EQ(got.status, kStatusPending);
  EXPECT_TRUE(got.dithers.empty());
}

TEST_P(ImageRepositoryContract, MessageIdsAreSharedAcrossConsumerMethods) {
  const ImageRecord a = insert();
  EXPECT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "m-1")));
  EXPECT_FALSE(value_of(repo_->mark_dithers_deleted(a.uuid, "m-1")));
  EXPECT_EQ(get(a.uuid).status, kStatusFinished);
}

TEST_P(ImageRepositoryContract, AnEmptyMessageIdIsNotDeduplicated) {
  const ImageRecord a = insert();
  EXPECT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(1), "")));
  EXPECT_TRUE(value_of(repo_->mark_finished(a.uuid, summary(2), "")));
  EXPECT_EQ(get(a.uuid).dithers.size(), 2u);
}

TEST_P(ImageRepositoryContract, PingAnswers) { expect_ok(repo_->ping()); }

TEST_P(ImageRepositoryContract, ConcurrentInsertsAndReadsAllSucceed) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ImageRecord r = sample_image("t" + std::to_string(t) + "-" + std::to_string(i));
        auto inserted = repo_->insert_image(r, uploaded(r));
        if (!inserted.ok()) {
          ++failures;
          continue;
        }
        auto got = repo_->get_image(r.uuid);
        if (!got.ok() || got->id != inserted->id) ++failures;
        if (!repo_->list_images({10, std::nullopt, ""}).ok()) ++failures;
        if (!repo_->mark_finished(r.uuid, summary(i + 1), r.uuid.value).ok()) ++failures;
        if (!repo_->pending_messages(5).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  std::vector<ImageRecord> all = list_all(1000);
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const ImageRecord& r : all) {
    EXPECT_EQ(r.status, kStatusFinished);
    EXPECT_EQ(get(r.uuid).dithers.size(), 1u);
  }
  EXPECT_EQ(all_pending(*repo_).size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_P(ImageRepositoryContract, OwnerRoundTripsAndDefaultsToTheSystemOwner) {
  ImageRecord in = sample_image();
  in.owner = "session:0123456789abcdef";
  const ImageRecord out = value_of(repo_->insert_image(in, uploaded(in)));
  EXPECT_EQ(out.owner, "session:0123456789abcdef");
  expect_same_image_fields(get(in.uuid), out);
  ASSERT_TRUE(repo_->mark_finished(in.uuid, summary(1), "m-1").ok());
  EXPECT_EQ(get(in.uuid).owner, "session:0123456789abcdef");  // never changes

  const ImageRecord plain = insert();
  EXPECT_EQ(plain.owner, "system");
  EXPECT_EQ(get(plain.uuid).owner, "system");
  const std::vector<ImageRecord> all = list_all(10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].owner, "system");
  EXPECT_EQ(all[1].owner, "session:0123456789abcdef");
}

TEST_P(ImageRepositoryContract, AnOwnersListPagesThroughItsImagesOnly) {
  check_owner_lists<ImageRecord>(
      [&](const std::string& owner) {
        ImageRecord r = sample_image();
        r.owner = owner;
        return value_of(repo_->insert_image(r, uploaded(r)));
      },
      [&](const PageRequest& request) { return repo_->list_images(request); },
      [](const ImageRecord& r) { return r.id; }, "carol");
}

TEST_P(ImageRepositoryContract, UsageCountsAnOwnersImagesAndBytes) {
  EXPECT_EQ(value_of(repo_->usage("alice")).images, 0);
  EXPECT_EQ(value_of(repo_->usage("alice")).bytes, 0);
  auto put = [&](const std::string& owner, int64_t size) {
    ImageRecord r = sample_image();
    r.owner = owner;
    r.size = size;
    return value_of(repo_->insert_image(r, uploaded(r)));
  };
  const ImageRecord a = put("alice", 1000);
  put("alice", 2500);
  put("bob", 7);
  put("alice's friend", 100);  // another owner, however alike its name
  ImageRepository::Usage alice = value_of(repo_->usage("alice"));
  EXPECT_EQ(alice.images, 2);
  EXPECT_EQ(alice.bytes, 3500);
  EXPECT_EQ(value_of(repo_->usage("bob")).images, 1);
  EXPECT_EQ(value_of(repo_->usage("bob")).bytes, 7);
  // A deleted image no longer counts.
  ASSERT_TRUE(repo_->delete_image(a.uuid, test_message("images", kImageDeleted, "x")).ok());
  alice = value_of(repo_->usage("alice"));
  EXPECT_EQ(alice.images, 1);
  EXPECT_EQ(alice.bytes, 2500);
  // Large originals sum without overflow of 32 bits.
  put("carol", int64_t{3} << 30);
  put("carol", int64_t{3} << 30);
  EXPECT_EQ(value_of(repo_->usage("carol")).bytes, int64_t{6} << 30);
}

}  // namespace dither::contract
