// The two services' logic wired together the way the embedded program wires them (SQLite in
// memory, files in a temporary directory, the in-process bus, both outbox relays), but without
// HTTP: the message flow of upload, dither and delete, idempotent consumers, and rejections that
// leave nothing behind.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "adapters/fs/fs_blob_store.h"
#include "adapters/inproc/in_process_bus.h"
#include "adapters/sqlite/sqlite_dither_repository.h"
#include "adapters/sqlite/sqlite_image_repository.h"
#include "engine/testing/test_images.h"
#include "imaging/codec.h"
#include "messaging/events.h"
#include "messaging/outbox_relay.h"
#include "services/common/work_loop.h"
#include "services/dither/dither_service.h"
#include "services/dither/dither_workers.h"
#include "services/upload/upload_service.h"

namespace dither {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> png_photo(int w, int h) {
  auto bytes = imaging::encode(engine::testing::synthetic_photo(w, h), imaging::OutputFormat::kPng);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

const Caller kTester{.owner = "tests"};
const Caller kStranger{.owner = "stranger"};
const Caller kAdmin{.owner = "admin", .admin = true};

class Services : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("services-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    images_ = std::move(*open_sqlite_image_repository(":memory:"));
    dithers_ = std::move(*open_sqlite_dither_repository(":memory:"));
    blobs_ = std::make_unique<FsBlobStore>(root_, "http://test/files/");
    upload_ = std::make_unique<UploadService>(*images_, *blobs_, topics_, imaging::Limits{},
                                              [this] { upload_relay_->notify(); });
    dither_ = std::make_unique<DitherService>(
        *dithers_, *blobs_, topics_, imaging::Limits{}, AutoDither{},
        [this] { dither_relay_->notify(); }, [this] { workers_->notify(); });
    upload_relay_ =
        std::make_unique<OutboxRelay>(*images_, bus_, "upload", std::chrono::milliseconds{20});
    dither_relay_ =
        std::make_unique<OutboxRelay>(*dithers_, bus_, "dither", std::chrono::milliseconds{20});
    workers_ = std::make_unique<DitherWorkers>(*dither_, *dithers_, 1);
    bus_.subscribe({topics_.image, "dither-service",
                    [this](const Message& m) { return dither_->on_image_message(m); }});
    bus_.subscribe({topics_.dither, "upload-service",
                    [this](const Message& m) { return upload_->on_dither_message(m); }});
    for (const std::string& topic : {topics_.image, topics_.dither}) {
      bus_.subscribe({topic, "recorder", [this](const Message& m) {
                        std::lock_guard lock(mutex_);
                        seen_.push_back(m);
                        return Status{};
                      }});
    }
    ASSERT_TRUE(bus_.start().ok());
    upload_relay_->start();
    dither_relay_->start();
    workers_->start();
  }

  void TearDown() override {
    workers_->stop();
    upload_relay_->stop();
    dither_relay_->stop();
    bus_.stop();
    fs::remove_all(root_);
  }

  // Waits until the image's status is one of `statuses` (or 30 s pass).
  ImageRecord wait_for(const ImageId& uuid, std::vector<std::string_view> statuses) {
    for (int i = 0; i < 3000; ++i) {
      Result<ImageRecord> r = images_->get_image(uuid);
      if (r && std::find(statuses.begin(), statuses.end(), r->status) != statuses.end()) {
        return *r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    ADD_FAILURE() << "image " << uuid.value << " never reached the status";
    return {};
  }

  // Waits until dither `id` is no longer PENDING; returns it.
  DitherRecord wait_dither(DitherId id) {
    for (int i = 0; i < 3000; ++i) {
      Result<DitherRecord> d = dithers_->get_dither(id);
      if (d && d->status != kStatusPending) return *d;
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    ADD_FAILURE() << "dither " << id.value << " never finished";
    return {};
  }

  // The DITHER_* messages seen for `uuid` about dither `id` (by the body's dither_id).
  // An image kTester uploaded, once its automatic dither is FINISHED.
  ImageRecord finished_upload(int width, int height, const std::string& name) {
    Result<ImageRecord> up = upload_->upload(png_photo(width, height), name, "", kTester, "");
    if (!up) {
      ADD_FAILURE() << "upload of " << name << ": " << up.error().message;
      return {};
    }
    return wait_for(up->uuid, {kStatusFinished});
  }

  // Publishes IMAGE_UPLOADED of an original known only by `url` and waits until its automatic
  // dither is no longer PENDING; returns the image's dithers.
  std::vector<DitherRecord> dithers_of_url_upload(const std::string& url) {
    const ImageId uuid = new_image_id();
    Message uploaded{topics_.image,
                     uuid.value,
                     {{"message_type", "IMAGE_UPLOADED"}, {"version", "1.0.0"}},
                     R"({"uuid":")" + uuid.value + R"(","url":")" + url + R"(","filename":"p"})"};
    EXPECT_TRUE(bus_.publish(uploaded).ok());
    std::vector<DitherRecord> made;
    for (int i = 0; i < 3000; ++i) {
      made = *dither_->dithers_of(uuid.value, kAdmin);
      if (!made.empty() && made[0].status != kStatusPending) break;
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return made;
  }

  std::vector<Message> dither_messages(const ImageId& uuid, int64_t id) {
    std::lock_guard lock(mutex_);
    std::vector<Message> out;
    for (const Message& m : seen_) {
      if (m.key != uuid.value || m.topic != topics_.dither) continue;
      Result<DitherDeletedEvent> e = read_dither_deleted(m.body);
      if (e && e->dither_id == std::optional<int64_t>{id}) out.push_back(m);
    }
    return out;
  }

  std::vector<std::string> types_for(const ImageId& uuid) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const Message& m : seen_) {
      if (m.key == uuid.value) out.emplace_back(m.message_type());
    }
    return out;
  }

  fs::path root_;
  Topics topics_;
  InProcessBus bus_;
  std::unique_ptr<ImageRepository> images_;
  std::unique_ptr<DitherRepository> dithers_;
  std::unique_ptr<FsBlobStore> blobs_;
  std::unique_ptr<UploadService> upload_;
  std::unique_ptr<DitherService> dither_;
  std::unique_ptr<OutboxRelay> upload_relay_;
  std::unique_ptr<OutboxRelay> dither_relay_;
  std::unique_ptr<DitherWorkers> workers_;
  std::mutex mutex_;
  std::vector<Message> seen_;
};

TEST_F(Services, UploadIsDitheredAutomaticallyAndTheFlowIsComplete) {
  const auto png = png_photo(64, 48);
  Result<ImageRecord> up = upload_->upload(png, "../../cat.png", "a@b.example", kTester, "");
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(up->filename, "cat.png");
  EXPECT_EQ(up->status, "PENDING");
  EXPECT_EQ(up->url, "http://test/files/" + up->blob_key.value);
  EXPECT_EQ(*blobs_->get(up->blob_key), png);

  ImageRecord done = wait_for(up->uuid, {kStatusFinished, kStatusFailed});
  ASSERT_EQ(done.status, "FINISHED") << done.error;
  ASSERT_EQ(done.dithers.size(), 1u);
  EXPECT_EQ(done.url_dither, done.dithers[0].url_dither);
  auto dithers = dither_->dithers_of(up->uuid.value, kTester);
  ASSERT_TRUE(dithers.ok());
  ASSERT_EQ(dithers->size(), 1u);
  EXPECT_EQ(DitherService::source_of((*dithers)[0]), "auto");
  EXPECT_EQ((*dithers)[0].channels, 2);
  auto result = blobs_->get((*dithers)[0].blob_key);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(imaging::sniff(*result), imaging::InputFormat::kPng);
  // The recorder subscribed after the upload service: it may see the message a moment later.
  const std::vector<std::string> flow{"IMAGE_UPLOADED", "DITHER_UPLOADED"};
  for (int i = 0; i < 500 && types_for(up->uuid) != flow; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  EXPECT_EQ(types_for(up->uuid), flow);

  // On demand, then delete everything.
  Result<DitherRecord> asked = dither_->request(
      up->uuid.value, "4", {{"algorithm", "bayer"}, {"format", "gif"}}, "r1", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  Result<DitherRecord> again = dither_->request(
      up->uuid.value, "4", {{"algorithm", "bayer"}, {"format", "gif"}}, "r1", kTester);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, asked->id) << "same request id, same dither";
  for (int i = 0; i < 3000; ++i) {
    if (dithers_->get_dither(asked->id)->status != kStatusPending) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  Result<DitherRecord> finished = dithers_->get_dither(asked->id);
  ASSERT_EQ(finished->status, "FINISHED") << finished->error;
  EXPECT_EQ(imaging::sniff(*blobs_->get(finished->blob_key)), imaging::InputFormat::kGif);

  ASSERT_TRUE(upload_->remove(up->uuid.value, kTester, "").ok());
  EXPECT_EQ(upload_->get(up->uuid.value, kTester).error().kind, ErrorKind::kNotFound);
  for (int i = 0; i < 3000 && dither_->dithers_of(up->uuid.value, kTester).ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  EXPECT_EQ(dither_->dithers_of(up->uuid.value, kTester).error().kind, ErrorKind::kNotFound);
  upload_relay_->drain();
  dither_relay_->drain();
  EXPECT_TRUE(blobs_->list("")->empty()) << "no blob outlives its image";
  // The two topics are relayed by two threads, so a subscriber of both may see DITHER_DELETED
  // (queued while IMAGE_DELETED was being delivered to the dithering service) first.
  const auto types = types_for(up->uuid);
  ASSERT_GE(types.size(), 5u);
  std::vector<std::string> last(types.end() - 2, types.end());
  std::sort(last.begin(), last.end());
  EXPECT_EQ(last, (std::vector<std::string>{"DITHER_DELETED", "IMAGE_DELETED"}));
}

TEST_F(Services, RejectedUploadsLeaveNothingBehind) {
  const auto png = png_photo(32, 32);
  std::vector<uint8_t> truncated(png.begin(), png.begin() + static_cast<long>(png.size() / 2));
  const std::string text = "hello, not an image";
  const std::vector<uint8_t> text_bytes(text.begin(), text.end());
  EXPECT_EQ(upload_->upload(text_bytes, "x.png", "", kTester, "").error().kind,
            ErrorKind::kUnsupported);
  EXPECT_EQ(upload_->upload(truncated, "x.png", "", kTester, "").error().kind,
            ErrorKind::kUndecodable);
  EXPECT_EQ(upload_->upload(png, "x.png", "not an address", kTester, "").error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(upload_->upload({}, "x.png", "", kTester, "").error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_TRUE(images_->list_images({})->items.empty());
  EXPECT_TRUE(blobs_->list("")->empty());
  EXPECT_TRUE(images_->pending_messages(10)->empty());
  std::lock_guard lock(mutex_);
  EXPECT_TRUE(seen_.empty());
}

TEST_F(Services, BadDitherRequests) {
  const ImageRecord up = finished_upload(16, 16, "a.png");
  const std::string id = up.uuid.value;
  for (std::string_view channels : {"0", "1", "257", "abc", ""}) {
    EXPECT_EQ(dither_->request(id, channels, {}, "x", kTester).error().kind,
              ErrorKind::kInvalidArgument)
        << channels;
  }
  EXPECT_EQ(dither_->request(id, "2", {{"algorithm", "nope"}}, "x", kTester).error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(dither_->request(id, "2", {{"palette", "nope"}}, "x", kTester).error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(dither_->request(id, "2", {{"threads", "2"}}, "x", kTester).error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(dither_->request(id, "2", {{"channels", "3"}}, "x", kTester).error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(dither_->request("not-a-uuid", "2", {}, "x", kTester).error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(dither_->request(new_image_id().value, "2", {}, "x", kTester).error().kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(dither_->dithers_of(id, kTester)->size(), 1u) << "only the automatic dither";
}

TEST_F(Services, ConsumersAreIdempotent) {
  const ImageRecord up = finished_upload(16, 16, "a.png");
  std::vector<Message> copy;
  {
    std::lock_guard lock(mutex_);
    copy = seen_;
  }
  // Every message delivered a second time changes nothing.
  for (const Message& m : copy) {
    if (m.topic == topics_.image) {
      ASSERT_TRUE(dither_->on_image_message(m).ok());
    } else {
      ASSERT_TRUE(upload_->on_dither_message(m).ok());
    }
  }
  EXPECT_EQ(dither_->dithers_of(up.uuid.value, kTester)->size(), 1u);
  EXPECT_EQ(images_->get_image(up.uuid)->dithers.size(), 1u);
  // Unknown types are ignored; unreadable bodies are errors (dead letters).
  Message odd = make_message(topics_.image, "SOMETHING_NEW", up.uuid.value, "{}");
  EXPECT_TRUE(dither_->on_image_message(odd).ok());
  Message bad = make_message(topics_.image, kImageUploaded, up.uuid.value, "not json");
  EXPECT_FALSE(dither_->on_image_message(bad).ok());
}

TEST_F(Services, FailedDitherIsReportedAndKeepsTheFinishedOne) {
  const ImageRecord up = finished_upload(16, 16, "a.png");
  Result<DitherRecord> asked = dither_->request(
      up.uuid.value, "2", {{"width", "100000"}, {"height", "100000"}}, "big", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  for (int i = 0; i < 3000; ++i) {
    if (dithers_->get_dither(asked->id)->status != kStatusPending) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  Result<DitherRecord> failed = dithers_->get_dither(asked->id);
  EXPECT_EQ(failed->status, "FAILED");
  EXPECT_NE(failed->error.find("pixels"), std::string::npos) << failed->error;
  dither_relay_->drain();
  ImageRecord image = *images_->get_image(up.uuid);
  EXPECT_EQ(image.status, "FINISHED") << "a failed extra dither does not undo the finished one";
  ASSERT_EQ(image.dithers.size(), 2u);
  EXPECT_EQ(image.dithers[0].status, "FAILED");
}

TEST_F(Services, OrphanOriginalsAreSwept) {
  const std::string orphan = "originals/" + new_image_id().value + ".png";
  ASSERT_TRUE(blobs_->put(ObjectKey{orphan}, png_photo(8, 8), "image/png").ok());
  Result<ImageRecord> kept = upload_->upload(png_photo(8, 8), "a.png", "", kTester, "");
  ASSERT_TRUE(kept.ok());
  Result<int> removed = upload_->remove_orphan_originals();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(blobs_->get(ObjectKey{orphan}).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(blobs_->get(kept->blob_key).ok());
}

TEST_F(Services, OneDitherIsDeletedAndTheImageShowsTheNewestFinishedOneLeft) {
  Result<ImageRecord> up = upload_->upload(png_photo(32, 24), "a.png", "", kTester, "");
  ASSERT_TRUE(up.ok()) << up.error().message;
  const ImageRecord first = wait_for(up->uuid, {kStatusFinished});
  const DitherRecord older = dither_->dithers_of(up->uuid.value, kTester)->at(0);
  Result<DitherRecord> asked =
      dither_->request(up->uuid.value, "4", {{"format", "gif"}}, "r1", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  const DitherRecord newer = wait_dither(asked->id);
  ASSERT_EQ(newer.status, kStatusFinished) << newer.error;
  dither_relay_->drain();
  ASSERT_EQ(images_->get_image(up->uuid)->url_dither, newer.url_dither);
  ASSERT_TRUE(blobs_->get(newer.blob_key).ok());

  // Requests that delete nothing.
  const auto kind = [](const Result<DitherRecord>& r) {
    return r.ok() ? std::string("ok") : std::string(to_string(r.error().kind));
  };
  EXPECT_EQ(kind(dither_->remove_dither("not-a-uuid", newer.id, kTester, "")), "invalid_argument");
  EXPECT_EQ(kind(dither_->remove_dither(up->uuid.value, DitherId{0}, kTester, "")),
            "invalid_argument");
  EXPECT_EQ(kind(dither_->remove_dither(up->uuid.value, DitherId{-4}, kTester, "")),
            "invalid_argument");
  EXPECT_EQ(kind(dither_->remove_dither(new_image_id().value, newer.id, kTester, "")), "not_found");
  EXPECT_EQ(
      kind(dither_->remove_dither(up->uuid.value, DitherId{newer.id.value + 1000}, kTester, "")),
      "not_found");
  Result<ImageRecord> other = upload_->upload(png_photo(16, 16), "b.png", "", kTester, "");
  ASSERT_TRUE(other.ok());
  wait_for(other->uuid, {kStatusFinished});
  const DitherRecord others = dither_->dithers_of(other->uuid.value, kTester)->at(0);
  EXPECT_EQ(kind(dither_->remove_dither(up->uuid.value, others.id, kTester, "")), "not_found");
  EXPECT_EQ(kind(dither_->remove_dither(other->uuid.value, newer.id, kTester, "")), "not_found");
  EXPECT_TRUE(blobs_->get(others.blob_key).ok());
  EXPECT_TRUE(blobs_->get(newer.blob_key).ok());
  EXPECT_EQ(dither_->dithers_of(up->uuid.value, kTester)->size(), 2u);
  EXPECT_EQ(dither_->dithers_of(other->uuid.value, kTester)->size(), 1u);

  // The newer one goes: its file, its row, its summary; the image shows the older one.
  const std::string trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  Result<DitherRecord> removed = dither_->remove_dither(up->uuid.value, newer.id, kTester, trace);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(removed->id, newer.id);
  EXPECT_EQ(blobs_->get(newer.blob_key).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(blobs_->get(older.blob_key).ok());
  EXPECT_EQ(dithers_->get_dither(newer.id).error().kind, ErrorKind::kNotFound);
  ASSERT_EQ(dither_->dithers_of(up->uuid.value, kTester)->size(), 1u);
  dither_relay_->drain();
  ImageRecord image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, kStatusFinished);
  EXPECT_EQ(image.url_dither, first.url_dither);
  EXPECT_EQ(image.url_dither, older.url_dither);
  ASSERT_EQ(image.dithers.size(), 1u);
  EXPECT_EQ(image.dithers[0].dither_id, older.id.value);
  std::vector<Message> about = dither_messages(up->uuid, newer.id.value);
  ASSERT_EQ(about.size(), 2u);
  EXPECT_EQ(about[0].message_type(), kDitherUploaded);
  EXPECT_EQ(about[1].message_type(), kDitherDeleted);
  EXPECT_EQ(about[1].body, R"({"uuid":")" + up->uuid.value + R"(","dither_id":)" +
                               std::to_string(newer.id.value) + "}");
  EXPECT_EQ(about[1].header(kHeaderTraceparent).value_or("").substr(0, 35), trace.substr(0, 35))
      << "DITHER_DELETED continues the request's trace";
  // Delivered again: nothing changes. Deleting it again: 404.
  ASSERT_TRUE(upload_->on_dither_message(about[1]).ok());
  EXPECT_EQ(images_->get_image(up->uuid)->url_dither, older.url_dither);
  EXPECT_EQ(kind(dither_->remove_dither(up->uuid.value, newer.id, kTester, "")), "not_found");

  // The last one goes: the image has no dither left.
  ASSERT_TRUE(dither_->remove_dither(up->uuid.value, older.id, kTester, "").ok());
  EXPECT_EQ(blobs_->get(older.blob_key).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(dither_->dithers_of(up->uuid.value, kTester)->empty());
  dither_relay_->drain();
  image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, kStatusDitherDeleted);
  EXPECT_EQ(image.url_dither, "");
  EXPECT_TRUE(image.dithers.empty());
  EXPECT_TRUE(blobs_->get(up->blob_key).ok()) << "the original stays";
  // The other image is untouched.
  EXPECT_EQ(images_->get_image(other->uuid)->url_dither, others.url_dither);
  EXPECT_TRUE(blobs_->get(others.blob_key).ok());
}

TEST_F(Services, AWorkerFinishingADeletedDitherRemovesItsOwnResult) {
  const ImageRecord done = finished_upload(32, 24, "a.png");
  workers_->stop();  // this test plays the worker
  Result<DitherRecord> asked = dither_->request(done.uuid.value, "3", {}, "r1", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  const DitherRecord claimed = *dithers_->get_dither(asked->id);  // what the worker holds
  ASSERT_EQ(claimed.status, kStatusPending);

  ASSERT_TRUE(dither_->remove_dither(done.uuid.value, claimed.id, kTester, "").ok());
  // The worker finishes after the row went: finish_dither says no, the result is removed and no
  // DITHER_UPLOADED is published.
  ASSERT_TRUE(dither_->process(claimed).ok());
  EXPECT_EQ(dithers_->get_dither(claimed.id).error().kind, ErrorKind::kNotFound);
  const std::string prefix = "dithers/" + done.uuid.value + "/";
  EXPECT_EQ(blobs_->list(prefix + std::to_string(claimed.id.value) + ".")->size(), 0u);
  EXPECT_EQ(blobs_->list(prefix)->size(), 1u) << "the automatic dither's result stays";
  dither_relay_->drain();
  std::vector<Message> about = dither_messages(done.uuid, claimed.id.value);
  ASSERT_EQ(about.size(), 1u);
  EXPECT_EQ(about[0].message_type(), kDitherDeleted);
  ImageRecord image = *images_->get_image(done.uuid);
  EXPECT_EQ(image.status, kStatusFinished);
  EXPECT_EQ(image.url_dither, done.url_dither);
  EXPECT_EQ(image.dithers.size(), 1u);
}

// A store `Port` whose outbox is `real`'s: the doubles below forward it and change the rest.
template <class Port>
class ForwardingOutbox : public Port {
 public:
  explicit ForwardingOutbox(Outbox& real) : outbox_(real) {}
  Result<std::vector<OutboxEntry>> pending_messages(int limit) override {
    return outbox_.pending_messages(limit);
  }
  Status remove_message(int64_t seq) override { return outbox_.remove_message(seq); }
  Status record_publish_failure(int64_t seq, std::string_view error, bool park) override {
    return outbox_.record_publish_failure(seq, error, park);
  }
  Result<std::vector<OutboxEntry>> parked_messages(int limit) override {
    return outbox_.parked_messages(limit);
  }
  Status republish(int64_t seq) override { return outbox_.republish(seq); }
  Result<OutboxStats> outbox_stats() override { return outbox_.outbox_stats(); }

 private:
  Outbox& outbox_;
};

// A DitherRepository that runs `before_delete` just before delete_dither: a worker finishing
// the dither between the service's removal of its blob and of its row.
class RacingDithers : public ForwardingOutbox<DitherRepository> {
 public:
  explicit RacingDithers(DitherRepository& real)
      : ForwardingOutbox<DitherRepository>(real), real_(real) {}
  std::function<void()> before_delete;
  std::atomic<int> renewals{0};
  std::vector<DitherRecord> legacy;  // what legacy_options() answers, once

  Result<std::optional<DitherRecord>> record_original(
      const OriginalRecord& original, const std::optional<DitherRecord>& auto_dither,
      std::string_view message_id) override {
    return real_.record_original(original, auto_dither, message_id);
  }
  Result<OriginalRecord> get_original(const ImageId& uuid) override {
    return real_.get_original(uuid);
  }
  Result<DitherRecord> create_dither(const DitherRecord& dither) override {
    return real_.create_dither(dither);
  }
  Result<DitherRecord> get_dither(DitherId id) override { return real_.get_dither(id); }
  Result<Page<DitherRecord>> list_dithers(const PageRequest& page) override {
    return real_.list_dithers(page);
  }
  Result<std::vector<DitherRecord>> dithers_of(const ImageId& uuid) override {
    return real_.dithers_of(uuid);
  }
  Result<int64_t> count_pending(std::string_view owner) override {
    return real_.count_pending(owner);
  }
  Result<int64_t> oldest_pending_at() override { return real_.oldest_pending_at(); }
  Result<std::vector<DitherRecord>> claim_dithers(int limit, std::string_view worker,
                                                  std::chrono::seconds lease) override {
    return real_.claim_dithers(limit, worker, lease);
  }
  Result<bool> renew_lease(DitherId id, std::string_view worker,
                           std::chrono::seconds lease) override {
    ++renewals;
    return real_.renew_lease(id, worker, lease);
  }
  Status release_dither(DitherId id, std::string_view worker) override {
    return real_.release_dither(id, worker);
  }
  Result<bool> finish_dither(DitherId id, const ObjectKey& blob_key, std::string_view url_dither,
                             const Message& event) override {
    return real_.finish_dither(id, blob_key, url_dither, event);
  }
  Result<bool> fail_dither(DitherId id, std::string_view error, const Message& event) override {
    return real_.fail_dither(id, error, event);
  }
  Result<DitherRecord> delete_dither(const ImageId& uuid, DitherId id,
                                     const Message& deleted) override {
    if (before_delete) before_delete();
    return real_.delete_dither(uuid, id, deleted);
  }
  Result<std::vector<DitherRecord>> delete_dithers_of(const ImageId& uuid, const Message& deleted,
                                                      bool forget_original,
                                                      std::string_view message_id) override {
    return real_.delete_dithers_of(uuid, deleted, forget_original, message_id);
  }
  Result<std::vector<DitherRecord>> legacy_options(int limit) override {
    if (!legacy.empty()) return std::exchange(legacy, {});
    return real_.legacy_options(limit);
  }
  Result<bool> set_canonical_options(DitherId id, std::string_view options_json) override {
    return real_.set_canonical_options(id, options_json);
  }
  Result<std::vector<PresetRecord>> presets_of(std::string_view owner) override {
    return real_.presets_of(owner);
  }
  Result<PresetRecord> get_preset(std::string_view owner, std::string_view name) override {
    return real_.get_preset(owner, name);
  }
  Result<PresetRecord> put_preset(const PresetRecord& preset, bool* replaced) override {
    return real_.put_preset(preset, replaced);
  }
  Result<bool> delete_preset(std::string_view owner, std::string_view name) override {
    return real_.delete_preset(owner, name);
  }
  Status ping() override { return real_.ping(); }

 private:
  DitherRepository& real_;
};

TEST_F(Services, ADitherFinishedWhileBeingDeletedLosesItsResultToo) {
  const ImageRecord done = finished_upload(32, 24, "a.png");
  workers_->stop();  // this test plays the worker
  Result<DitherRecord> asked = dither_->request(done.uuid.value, "3", {}, "r1", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  const DitherRecord claimed = *dithers_->get_dither(asked->id);

  RacingDithers racing(*dithers_);
  DitherService deleting(racing, *blobs_, topics_, imaging::Limits{}, AutoDither{},
                         [this] { dither_relay_->notify(); }, {});
  bool finished = false;
  racing.before_delete = [&] {
    ASSERT_TRUE(dither_->process(claimed).ok());
    finished = dithers_->get_dither(claimed.id)->status == kStatusFinished;
  };
  Result<DitherRecord> removed = deleting.remove_dither(done.uuid.value, claimed.id, kTester, "");
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  ASSERT_TRUE(finished) << "the worker finished the dither between the two steps";
  EXPECT_EQ(removed->status, kStatusFinished);
  EXPECT_EQ(dithers_->get_dither(claimed.id).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(blobs_->get(removed->blob_key).error().kind, ErrorKind::kNotFound)
      << "its result does not outlive the row";
  EXPECT_EQ(blobs_->list("dithers/" + done.uuid.value + "/")->size(), 1u);

  // DITHER_UPLOADED then DITHER_DELETED: the upload side ends where it started.
  dither_relay_->drain();
  std::vector<Message> about = dither_messages(done.uuid, claimed.id.value);
  ASSERT_EQ(about.size(), 2u);
  EXPECT_EQ(about[0].message_type(), kDitherUploaded);
  EXPECT_EQ(about[1].message_type(), kDitherDeleted);
  ImageRecord image = *images_->get_image(done.uuid);
  EXPECT_EQ(image.status, kStatusFinished);
  EXPECT_EQ(image.url_dither, done.url_dither);
  ASSERT_EQ(image.dithers.size(), 1u);
  EXPECT_EQ(image.dithers[0].dither_id, done.dithers[0].dither_id);
}

// Options an older version stored as requested (raw pairs, `channels` among them) are rewritten
// in the canonical form at start-up; what no longer reads is kept as it was.
TEST_F(Services, StoredOptionsOfOlderVersionsBecomeCanonical) {
  const ImageRecord up = finished_upload(16, 12, "a.png");
  workers_->stop();
  std::vector<DitherRecord> old;
  for (const char* options :
       {R"({"channels":"4","algorithm":"FS","strength":"0.50"})", R"({"algorithm":"blur"})"}) {
    DitherRecord d;
    d.uuid = up.uuid;
    d.options_json = options;
    d.request_id = std::string("old-") + options;
    Result<DitherRecord> made = dithers_->create_dither(d);
    ASSERT_TRUE(made.ok()) << made.error().message;
    old.push_back(*made);
  }
  RacingDithers store(*dithers_);
  store.legacy = old;
  DitherService service(store, *blobs_, topics_, imaging::Limits{}, AutoDither{}, {}, {});
  Result<int> rewritten = service.canonicalize_stored_options();
  ASSERT_TRUE(rewritten.ok()) << rewritten.error().message;
  EXPECT_EQ(*rewritten, 2);
  EXPECT_EQ(dithers_->get_dither(old[0].id)->options_json,
            R"({"algorithm":"floyd-steinberg","palette":"levels:4","serpentine":"false",)"
            R"("linear_light":"true","distance":"rgb","strength":"0.5","format":"png"})");
  EXPECT_EQ(dithers_->get_dither(old[1].id)->options_json, R"({"algorithm":"blur"})");
  EXPECT_TRUE(dithers_->legacy_options(10)->empty());
  // The worker reads the canonical form; the unreadable one fails with a clear error.
  EXPECT_TRUE(DitherService::options_of(*dithers_->get_dither(old[0].id)).ok());
  EXPECT_FALSE(DitherService::options_of(*dithers_->get_dither(old[1].id)).ok());
}

// A request is parsed once: what the record stores is the canonical form, and the preset and
// explicit options combine as documented.
TEST_F(Services, RequestsStoreTheCanonicalFormOfPresetAndOptions) {
  const ImageRecord up = finished_upload(16, 12, "a.png");
  Result<DitherRecord> d = dither_->request(
      up.uuid.value, "3", {{"preset", "mac"}, {"algorithm", "ORDERED"}}, "r-preset", kTester);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->channels, 3);
  EXPECT_EQ(d->options_json,
            R"({"algorithm":"bayer","palette":"bw","serpentine":"false","linear_light":"true",)"
            R"("distance":"rgb","strength":"1","bayer_size":"8","format":"png"})");
  dither_->set_presets_only(true);
  EXPECT_FALSE(dither_->request(up.uuid.value, "3", {{"algorithm", "fs"}}, "r2", kTester).ok());
  EXPECT_FALSE(dither_->save_preset("look", "", {}, kTester, nullptr, nullptr).ok());
  EXPECT_TRUE(dither_->request(up.uuid.value, "3", {{"preset", "pico8"}}, "r3", kTester).ok());
}

// A UrlFetcher double that takes `delay` to serve one original, or fails transiently every time.
class SlowUrl : public UrlFetcher {
 public:
  SlowUrl(std::chrono::milliseconds delay, std::vector<uint8_t> bytes)
      : delay_(delay), bytes_(std::move(bytes)) {}
  Result<std::vector<uint8_t>> fetch(std::string_view, uint64_t) override {
    ++calls;
    std::this_thread::sleep_for(delay_);
    if (bytes_.empty()) return make_error(ErrorKind::kUnavailable, "the server is busy");
    return bytes_;
  }
  std::atomic<int> calls{0};

 private:
  std::chrono::milliseconds delay_;
  std::vector<uint8_t> bytes_;
};

// IMAGE_UPLOADED as the prototype sent it (the original known by URL only); returns its uuid
// once its automatic dither exists.
ImageId announce_by_url(InProcessBus& bus, const Topics& topics, DitherService& service) {
  const ImageId uuid = new_image_id();
  Message uploaded{topics.image,
                   uuid.value,
                   {{"message_type", "IMAGE_UPLOADED"}, {"version", "1.0.0"}},
                   R"({"uuid":")" + uuid.value + R"(","url":"https://x/p.png","filename":"p"})"};
  EXPECT_TRUE(bus.publish(uploaded).ok());
  EXPECT_EQ(service.dithers_of(uuid.value, kAdmin)->size(), 1u);
  return uuid;
}

TEST_F(Services, ADitherLongerThanItsLeaseKeepsItWhileItRuns) {
  workers_->stop();  // these tests run workers of their own
  RacingDithers counting(*dithers_);
  SlowUrl fetcher(std::chrono::milliseconds{2500}, png_photo(24, 16));
  DitherService slow(counting, *blobs_, topics_, imaging::Limits{}, AutoDither{},
                     [this] { dither_relay_->notify(); }, {});
  slow.set_url_fetcher(&fetcher);
  const ImageId uuid = announce_by_url(bus_, topics_, *dither_);
  const DitherId id = dither_->dithers_of(uuid.value, kAdmin)->at(0).id;

  DitherWorkers workers(slow, counting, 1, std::chrono::seconds{1});
  workers.start();
  while (fetcher.calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds{5});
  // Another worker (another process) keeps asking for work while the 1 s lease would long have
  // ended: the renewed claim holds.
  int refused = 0;
  for (DitherRecord d = *dithers_->get_dither(id); d.status == kStatusPending;
       d = *dithers_->get_dither(id)) {
    Result<std::vector<DitherRecord>> stolen =
        dithers_->claim_dithers(1, "another-process:1:0", std::chrono::seconds{60});
    ASSERT_TRUE(stolen.ok());
    ASSERT_TRUE(stolen->empty()) << "claimed by another worker while it was being made";
    ++refused;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  workers.stop();
  const DitherRecord done = *dithers_->get_dither(id);
  EXPECT_EQ(done.status, kStatusFinished) << done.error;
  EXPECT_EQ(done.attempts, 1) << "made once";
  EXPECT_EQ(fetcher.calls.load(), 1);
  EXPECT_GE(counting.renewals.load(), 4) << "renewed every lease/3";
  EXPECT_GE(refused, 15);
}

TEST_F(Services, AFileThatFailsEveryTimeIsGivenUpAfterTheCap) {
  workers_->stop();
  SlowUrl failing(std::chrono::milliseconds{0}, {});  // kUnavailable every time
  dither_->set_url_fetcher(&failing);
  const ImageId uuid = announce_by_url(bus_, topics_, *dither_);
  const DitherId id = dither_->dithers_of(uuid.value, kAdmin)->at(0).id;

  DitherWorkers workers(*dither_, *dithers_, 1, std::chrono::seconds{1}, 2);
  workers.start();
  const DitherRecord done = wait_dither(id);
  workers.stop();
  EXPECT_EQ(done.status, kStatusFailed);
  EXPECT_EQ(done.error, "gave up after 2 attempts");
  EXPECT_EQ(done.attempts, 3);
  EXPECT_EQ(failing.calls.load(), 2) << "the third claim does not try again";
  dither_relay_->drain();
  std::vector<Message> about = dither_messages(uuid, id.value);
  ASSERT_EQ(about.size(), 1u);
  EXPECT_EQ(about[0].message_type(), kDitherFailed);
  Result<DitherEvent> event = read_dither_event(about[0].body);
  ASSERT_TRUE(event.ok()) << about[0].body;
  EXPECT_EQ(event->error, "gave up after 2 attempts");
}

TEST_F(Services, ADitherThatCrashesEveryLifeEndsFailedAndTheImageSaysWhy) {
  workers_->stop();  // no worker: the upload's automatic dither stays PENDING
  Result<ImageRecord> up = upload_->upload(png_photo(32, 24), "a.png", "", kTester, "");
  ASSERT_TRUE(up.ok());
  upload_relay_->drain();
  std::vector<DitherRecord> made = *dither_->dithers_of(up->uuid.value, kTester);
  ASSERT_EQ(made.size(), 1u);
  // Three lives of the process each claimed it and died making it (the embedded store frees the
  // claims at start-up; elsewhere the leases end).
  for (int life = 0; life < 3; ++life) {
    ASSERT_EQ(dithers_->claim_dithers(1, "crashed:" + std::to_string(life), std::chrono::seconds{0})
                  ->size(),
              1u);
  }
  DitherWorkers workers(*dither_, *dithers_, 1, std::chrono::seconds{30}, 3);
  workers.start();
  const DitherRecord done = wait_dither(made[0].id);
  workers.stop();
  EXPECT_EQ(done.status, kStatusFailed);
  EXPECT_EQ(done.error, "gave up after 3 attempts");
  EXPECT_TRUE(blobs_->list("dithers/" + up->uuid.value + "/")->empty()) << "never made";
  const ImageRecord image = wait_for(up->uuid, {kStatusFailed});
  EXPECT_EQ(image.error, "gave up after 3 attempts");
}

TEST_F(Services, DitherDeletedBodiesOnTheUploadSide) {
  Result<ImageRecord> up = upload_->upload(png_photo(16, 16), "a.png", "", kTester, "");
  ASSERT_TRUE(up.ok());
  const ImageRecord done = wait_for(up->uuid, {kStatusFinished});
  const std::string prefix = R"({"uuid":")" + up->uuid.value + R"(")";
  // A dither_id that is not a positive integer cannot be processed: a dead letter.
  for (std::string_view bad : {"0", "-1", "\"2\"", "2.5"}) {
    Message m = make_message(topics_.dither, kDitherDeleted, up->uuid.value,
                             prefix + R"(,"dither_id":)" + std::string(bad) + "}");
    EXPECT_EQ(upload_->on_dither_message(m).error().kind, ErrorKind::kInvalidArgument) << bad;
  }
  // A dither the image has no summary of: nothing it shows changes.
  Message unknown = make_message(topics_.dither, kDitherDeleted, up->uuid.value,
                                 dither_deleted_body({up->uuid, 987654}));
  ASSERT_TRUE(upload_->on_dither_message(unknown).ok());
  ImageRecord image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, kStatusFinished);
  EXPECT_EQ(image.url_dither, done.url_dither);
  EXPECT_EQ(image.dithers.size(), 1u);
  // The prototype's body (no dither_id): every dither, as before.
  Message all = make_message(topics_.dither, kDitherDeleted, up->uuid.value, prefix + "}");
  ASSERT_TRUE(upload_->on_dither_message(all).ok());
  image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, kStatusDitherDeleted);
  EXPECT_TRUE(image.dithers.empty());
}

// A UrlFetcher double that serves one URL (the prototype named originals by URL only).
class OneUrl : public UrlFetcher {
 public:
  OneUrl(std::string url, std::vector<uint8_t> bytes)
      : url_(std::move(url)), bytes_(std::move(bytes)) {}
  Result<std::vector<uint8_t>> fetch(std::string_view url, uint64_t) override {
    if (url != url_) return make_error(ErrorKind::kNotFound, "no file at " + std::string(url));
    return bytes_;
  }

 private:
  std::string url_;
  std::vector<uint8_t> bytes_;
};

TEST_F(Services, ThePrototypesBodiesAreUnderstood) {
  const std::string url = "https://res.cloudinary.com/demo/image/upload/p.png";
  OneUrl fetcher(url, png_photo(24, 16));
  dither_->set_url_fetcher(&fetcher);
  // IMAGE_UPLOADED as the prototype sent it: two headers, {uuid, url, filename}.
  const ImageId uuid = new_image_id();
  Message uploaded{topics_.image,
                   uuid.value,
                   {{"message_type", "IMAGE_UPLOADED"}, {"version", "1.0.0"}},
                   R"({"uuid":")" + uuid.value + R"(","url":")" + url + R"(","filename":"p.png"})"};
  ASSERT_TRUE(bus_.publish(uploaded).ok());
  ASSERT_TRUE(bus_.publish(uploaded).ok());  // twice: one dither
  std::vector<DitherRecord> made;
  for (int i = 0; i < 3000; ++i) {
    made = *dither_->dithers_of(uuid.value, kAdmin);
    if (!made.empty() && made[0].status == kStatusFinished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(made[0].status, kStatusFinished) << made[0].error;
  // A body without an owner belongs to the system owner: admins only.
  EXPECT_EQ(made[0].owner, kSystemOwner);
  EXPECT_EQ(dither_->dithers_of(uuid.value, kTester).error().kind, ErrorKind::kNotFound);

  // DITHER_UPLOADED as the prototype sent it: {uuid, url_dither}, applied once.
  const ImageRecord up = finished_upload(16, 16, "b.png");
  Message finished{topics_.dither,
                   up.uuid.value,
                   {{"message_type", "DITHER_UPLOADED"}, {"version", "1.0.0"}},
                   R"({"uuid":")" + up.uuid.value + R"(","url_dither":"https://x/d.png"})"};
  ASSERT_TRUE(upload_->on_dither_message(finished).ok());
  const size_t summaries = images_->get_image(up.uuid)->dithers.size();
  ASSERT_TRUE(upload_->on_dither_message(finished).ok());
  Result<ImageRecord> after = images_->get_image(up.uuid);
  EXPECT_EQ(after->url_dither, "https://x/d.png");
  EXPECT_EQ(after->status, kStatusFinished);
  EXPECT_EQ(after->dithers.size(), summaries);
}

TEST_F(Services, AnOriginalKnownOnlyByUrlFailsClearlyWithoutAFetcher) {
  const std::vector<DitherRecord> made = dithers_of_url_upload("https://x/p.png");
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(made[0].status, kStatusFailed);
  EXPECT_NE(made[0].error.find("only known by URL"), std::string::npos) << made[0].error;
}

// A UrlFetcher double that refuses every URL with a detailed reason, as the real one does.
class RefusingFetcher : public UrlFetcher {
 public:
  Result<std::vector<uint8_t>> fetch(std::string_view, uint64_t) override {
    return make_error(ErrorKind::kUnsupported,
                      "fetching http://images.example/p.png: host 'images.example' is at a "
                      "refused address (10.1.2.3)");
  }
};

TEST_F(Services, AFetchFailureIsPublicOnlyAsCouldNotFetchTheOriginal) {
  RefusingFetcher fetcher;
  dither_->set_url_fetcher(&fetcher);
  const std::vector<DitherRecord> made = dithers_of_url_upload("http://images.example/p.png");
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(made[0].status, kStatusFailed);
  EXPECT_EQ(made[0].error, "could not fetch the original") << "no address, host or reason";
}

// An ImageRepository whose insert commits (or not) and then reports kUnavailable, as when the
// connection breaks during COMMIT; reads can be made to fail too.
class InDoubtImages : public ForwardingOutbox<ImageRepository> {
 public:
  InDoubtImages(ImageRepository& real, bool commits, bool reads_fail)
      : ForwardingOutbox<ImageRepository>(real),
        real_(real),
        commits_(commits),
        reads_fail_(reads_fail) {}
  Result<ImageRecord> insert_image(const ImageRecord& image, const Message& uploaded) override {
    if (commits_) {
      Result<ImageRecord> r = real_.insert_image(image, uploaded);
      if (!r) return r;
    }
    return make_error(ErrorKind::kUnavailable, "connection lost during COMMIT");
  }
  Result<ImageRecord> get_image(const ImageId& uuid) override {
    if (reads_fail_) return make_error(ErrorKind::kUnavailable, "server down");
    return real_.get_image(uuid);
  }
  Result<Page<ImageRecord>> list_images(const PageRequest& page) override {
    return real_.list_images(page);
  }
  Result<ImageRecord> delete_image(const ImageId& uuid, const Message& deleted) override {
    return real_.delete_image(uuid, deleted);
  }
  Result<Usage> usage(std::string_view owner) override { return real_.usage(owner); }
  Result<bool> mark_finished(const ImageId& uuid, const DitherSummary& dither,
                             std::string_view message_id) override {
    return real_.mark_finished(uuid, dither, message_id);
  }
  Result<bool> mark_failed(const ImageId& uuid, const DitherSummary& dither,
                           std::string_view message_id) override {
    return real_.mark_failed(uuid, dither, message_id);
  }
  Result<bool> mark_dithers_deleted(const ImageId& uuid, std::string_view message_id) override {
    return real_.mark_dithers_deleted(uuid, message_id);
  }
  Result<bool> mark_dither_deleted(const ImageId& uuid, int64_t dither_id,
                                   std::string_view message_id) override {
    return real_.mark_dither_deleted(uuid, dither_id, message_id);
  }
  Status ping() override { return real_.ping(); }

 private:
  ImageRepository& real_;
  bool commits_;
  bool reads_fail_;
};

TEST_F(Services, AnUploadWhoseCommitOutcomeIsUnknownIsNeverHalfDone) {
  const auto originals = [this] { return blobs_->list("originals/")->size(); };
  const size_t before = originals();
  // An upload through a store whose COMMIT may or may not have happened.
  const auto upload_in_doubt = [this](bool commits, bool reads_fail, const char* name) {
    InDoubtImages images(*images_, commits, reads_fail);
    UploadService upload(images, *blobs_, topics_, imaging::Limits{}, {});
    return upload.upload(png_photo(16, 16), name, "", kTester, "");
  };
  {
    // The commit happened: the upload succeeded, blob and row both there.
    Result<ImageRecord> r = upload_in_doubt(/*commits=*/true, /*reads_fail=*/false, "a.png");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(images_->get_image(r->uuid).ok());
    EXPECT_EQ(originals(), before + 1);
  }
  {
    // It did not, and the store says so: nothing is left.
    Result<ImageRecord> r = upload_in_doubt(/*commits=*/false, /*reads_fail=*/false, "b.png");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_EQ(originals(), before + 1);
  }
  {
    // Nobody can tell: the blob stays (never a row without its original); 503 to the client.
    Result<ImageRecord> r = upload_in_doubt(/*commits=*/false, /*reads_fail=*/true, "c.png");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_EQ(originals(), before + 2);
    // The embedded start-up sweep removes such an orphan.
    Result<int> swept = upload_->remove_orphan_originals();
    ASSERT_TRUE(swept.ok());
    EXPECT_EQ(*swept, 1);
    EXPECT_EQ(originals(), before + 1);
  }
}

TEST_F(Services, OwnersReachOnlyTheirOwnAndAdminsEverything) {
  Result<ImageRecord> up =
      upload_->upload(png_photo(16, 16), "mine.png", "me@b.example", kTester, "");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->owner, "tests");
  wait_for(up->uuid, {kStatusFinished});
  const std::string id = up->uuid.value;
  // Another owner: exactly an unknown image, and nothing changes.
  const Result<ImageRecord> unknown = upload_->get(new_image_id().value, kStranger);
  const Result<ImageRecord> others = upload_->get(id, kStranger);
  ASSERT_FALSE(others.ok());
  EXPECT_EQ(others.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(others.error().message.substr(0, 9), unknown.error().message.substr(0, 9));
  EXPECT_EQ(upload_->remove(id, kStranger, "").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(dither_->dithers_of(id, kStranger).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(dither_->request(id, "3", {}, "s1", kStranger).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(dither_->remove_dithers(id, kStranger, "").error().kind, ErrorKind::kNotFound);
  const DitherRecord automatic = dither_->dithers_of(id, kTester)->at(0);
  EXPECT_EQ(automatic.owner, "tests");
  EXPECT_EQ(automatic.requested_by, "tests");
  EXPECT_EQ(dither_->remove_dither(id, automatic.id, kStranger, "").error().kind,
            ErrorKind::kNotFound);
  ASSERT_TRUE(upload_->get(id, kTester).ok());
  EXPECT_EQ(dither_->dithers_of(id, kTester)->size(), 1u);
  // Lists: only the caller's own; admins (no filter) everything.
  Result<ImageRecord> theirs = upload_->upload(png_photo(8, 8), "theirs.png", "", kStranger, "");
  ASSERT_TRUE(theirs.ok());
  PageRequest page{50, std::nullopt, kStranger.list_filter()};
  Result<Page<ImageRecord>> listed = upload_->list(page);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].uuid, theirs->uuid);
  page.owner = kAdmin.list_filter();
  EXPECT_EQ(upload_->list(page)->items.size(), 2u);
  // An admin reaches it; a dither an admin asks for is not mailed to the uploader's address.
  ASSERT_TRUE(upload_->get(id, kAdmin).ok());
  Result<DitherRecord> by_admin = dither_->request(id, "3", {}, "a1", kAdmin);
  ASSERT_TRUE(by_admin.ok());
  EXPECT_EQ(by_admin->owner, "tests");
  EXPECT_EQ(by_admin->requested_by, "admin");
  Result<DitherRecord> by_owner = dither_->request(id, "4", {}, "o1", kTester);
  ASSERT_TRUE(by_owner.ok());
  std::map<int64_t, std::string> email_of;
  for (int i = 0; i < 3000 && email_of.size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
    std::lock_guard lock(mutex_);
    for (const Message& m : seen_) {
      if (m.message_type() != kDitherUploaded) continue;
      Result<DitherEvent> e = read_dither_event(m.body);
      ASSERT_TRUE(e.ok());
      if (e->uuid.value != id) continue;
      EXPECT_EQ(e->owner, "tests");
      email_of[e->dither_id] = e->email;
    }
  }
  ASSERT_EQ(email_of.size(), 3u);
  EXPECT_EQ(email_of[automatic.id.value], "me@b.example");
  EXPECT_EQ(email_of[by_owner->id.value], "me@b.example");
  EXPECT_EQ(email_of[by_admin->id.value], "") << "an admin's dither is not mailed";
  // The owner deletes; the admin may delete anyone's.
  EXPECT_TRUE(upload_->remove(theirs->uuid.value, kAdmin, "").ok());
  EXPECT_TRUE(upload_->remove(id, kTester, "").ok());
}

// Quotas and the queue's bound (services/common/quotas.h). The upload services below share the
// fixture's stores; the dithering services get stores of their own without workers, so that
// their dithers stay PENDING.
template <class T>
T value_of(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(*r) : T{};
}

size_t stored_originals(BlobStore& blobs) {
  Result<std::vector<ObjectKey>> keys = blobs.list("originals/");
  return keys ? keys->size() : 0;
}

TEST_F(Services, TheImageQuotaRefusesBeforeDecodingAndStoresNothing) {
  Quotas quotas;
  quotas.images = 2;
  UploadService upload(*images_, *blobs_, topics_, imaging::Limits{}, {}, quotas);
  const std::vector<uint8_t> png = png_photo(8, 8);
  ASSERT_TRUE(upload.upload(png, "a.png", "", kTester, "").ok());
  ASSERT_TRUE(upload.upload(png, "b.png", "", kTester, "").ok());
  Refusal refused;
  Result<ImageRecord> third = upload.upload(png, "c.png", "", kTester, "", &refused);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(refused.status, 403u);
  EXPECT_EQ(refused.code, "quota_exceeded");
  EXPECT_EQ(refused.retry_after_seconds, 0);
  EXPECT_NE(refused.message.find("you store 2 images, the limit is 2"), std::string::npos)
      << refused.message;
  // Checked before decoding: bytes that are no image get the same answer.
  const std::string text = "not an image at all";
  Refusal also;
  EXPECT_FALSE(upload
                   .upload({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, "x", "",
                           kTester, "", &also)
                   .ok());
  EXPECT_EQ(also.code, "quota_exceeded");
  EXPECT_EQ(value_of(images_->usage("tests")).images, 2);
  EXPECT_EQ(stored_originals(*blobs_), 2u);
  // Another owner and an admin are not counted against it.
  EXPECT_TRUE(upload.upload(png, "d.png", "", kStranger, "").ok());
  EXPECT_TRUE(upload.upload(png, "e.png", "", kAdmin, "").ok());
  EXPECT_TRUE(upload.upload(png, "f.png", "", Caller{.owner = "tests", .admin = true}, "").ok())
      << "an admin is exempt, even of an owner that is at its quota";
  // Deleting makes room.
  const std::vector<ImageRecord> mine =
      value_of(upload.list({.limit = 10, .before = std::nullopt, .owner = "tests"})).items;
  ASSERT_EQ(mine.size(), 3u);
  ASSERT_TRUE(upload.remove(mine[0].uuid.value, kTester, "").ok());
  ASSERT_TRUE(upload.remove(mine[1].uuid.value, kTester, "").ok());
  EXPECT_TRUE(upload.upload(png, "g.png", "", kTester, "").ok());
}

TEST_F(Services, TheByteQuotaCountsTheOriginalsAndThisUpload) {
  const std::vector<uint8_t> png = png_photo(8, 8);
  Quotas quotas;
  quotas.images = 0;  // off
  quotas.bytes = static_cast<int64_t>(png.size()) * 2 + 1;
  UploadService upload(*images_, *blobs_, topics_, imaging::Limits{}, {}, quotas);
  ASSERT_TRUE(upload.upload(png, "a.png", "", kTester, "").ok());
  ASSERT_TRUE(upload.upload(png, "b.png", "", kTester, "").ok());
  Refusal refused;
  ASSERT_FALSE(upload.upload(png, "c.png", "", kTester, "", &refused).ok());
  EXPECT_EQ(refused.status, 403u);
  EXPECT_EQ(refused.code, "quota_exceeded");
  EXPECT_NE(refused.message.find("you store " + std::to_string(png.size() * 2) + " bytes"),
            std::string::npos)
      << refused.message;
  EXPECT_NE(refused.message.find("QUOTA_BYTES"), std::string::npos);
  EXPECT_EQ(stored_originals(*blobs_), 2u);
  EXPECT_TRUE(upload.upload(png, "d.png", "", kAdmin, "").ok());
}

TEST_F(Services, AnUploadPastTheQueuesBoundIsRefusedBeforeItIsStored) {
  Quotas quotas;
  quotas.max_pending_dithers = 5;
  std::atomic<int64_t> depth{5};
  UploadService upload(*images_, *blobs_, topics_, imaging::Limits{}, {}, quotas,
                       [&depth]() -> Result<int64_t> { return depth.load(); });
  const std::vector<uint8_t> png = png_photo(8, 8);
  for (const Caller& caller : {kTester, kAdmin}) {  // the bound is everyone's
    Refusal refused;
    ASSERT_FALSE(upload.upload(png, "a.png", "", caller, "", &refused).ok());
    EXPECT_EQ(refused.status, 503u);
    EXPECT_EQ(refused.code, "queue_full");
    EXPECT_EQ(refused.retry_after_seconds, 10);
  }
  EXPECT_EQ(stored_originals(*blobs_), 0u);
  EXPECT_EQ(value_of(images_->usage("tests")).images, 0);
  depth = 4;
  EXPECT_TRUE(upload.upload(png, "a.png", "", kTester, "").ok());
}

class QuotaDithers : public Services {
 protected:
  void SetUp() override {
    Services::SetUp();
    repo_ = std::move(*open_sqlite_dither_repository(":memory:"));
  }
  std::unique_ptr<DitherService> service(const Quotas& quotas) {
    return std::make_unique<DitherService>(*repo_, *blobs_, topics_, imaging::Limits{},
                                           AutoDither{}, nullptr, nullptr, quotas);
  }
  ImageId original_of(const std::string& owner) {
    const ImageId uuid = new_image_id();
    OriginalRecord o{uuid,    "http://test/files/originals/" + uuid.value + ".png",
                     "a.png", ObjectKey{"originals/" + uuid.value + ".png"},
                     "",      owner};
    EXPECT_TRUE(repo_->record_original(o, std::nullopt, "m-" + uuid.value).ok());
    return uuid;
  }
  void finish_all() {
    for (const DitherRecord& d :
         value_of(repo_->claim_dithers(1000, "test", std::chrono::seconds{600}))) {
      ASSERT_TRUE(repo_
                      ->fail_dither(d.id, "done",
                                    make_message(topics_.dither, kDitherFailed, d.uuid.value, "{}"))
                      .ok());
    }
  }
  std::unique_ptr<DitherRepository> repo_;
};

TEST_F(QuotaDithers, PendingDithersPerOwnerAndDithersPerImage) {
  Quotas quotas;
  quotas.pending_dithers = 2;
  quotas.dithers_per_image = 3;
  quotas.max_pending_dithers = 0;  // off
  std::unique_ptr<DitherService> svc = service(quotas);
  const ImageId a = original_of("tests");
  const ImageId b = original_of("tests");
  Result<DitherRecord> first = svc->request(a.value, "2", {}, "r1", kTester);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(svc->request(a.value, "3", {}, "r2", kTester).ok());
  Refusal refused;
  ASSERT_FALSE(svc->request(b.value, "2", {}, "r3", kTester, "", &refused).ok());
  EXPECT_EQ(refused.status, 429u);
  EXPECT_EQ(refused.code, "too_many_pending");
  EXPECT_EQ(refused.retry_after_seconds, 5);
  EXPECT_NE(refused.message.find("you have 2 dithers pending, the limit is 2"), std::string::npos)
      << refused.message;
  // Asking again for a dither that exists returns it (idempotency wins over the count).
  Result<DitherRecord> again = svc->request(a.value, "2", {}, "r1", kTester);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, first->id);
  // Admins are exempt.
  ASSERT_TRUE(svc->request(a.value, "4", {}, "r4", kAdmin).ok());
  EXPECT_EQ(value_of(repo_->count_pending("tests")), 3);
  finish_all();
  // Image a has 3 dithers now: the image's quota, whatever is pending.
  Refusal per_image;
  ASSERT_FALSE(svc->request(a.value, "5", {}, "r5", kTester, "", &per_image).ok());
  EXPECT_EQ(per_image.status, 403u);
  EXPECT_EQ(per_image.code, "quota_exceeded");
  EXPECT_NE(per_image.message.find("it has 3 dithers, the limit is 3"), std::string::npos)
      << per_image.message;
  EXPECT_EQ(value_of(repo_->dithers_of(a)).size(), 3u) << "nothing was created";
  EXPECT_TRUE(svc->request(b.value, "2", {}, "r6", kTester).ok());
  EXPECT_TRUE(svc->request(a.value, "6", {}, "r7", kAdmin).ok());
}

TEST_F(QuotaDithers, TheQueuesBoundRefusesRequestsButNeverAutomaticDithers) {
  Quotas quotas;
  quotas.pending_dithers = 0;
  quotas.dithers_per_image = 0;
  quotas.max_pending_dithers = 2;
  std::unique_ptr<DitherService> svc = service(quotas);
  const ImageId a = original_of("tests");
  ASSERT_TRUE(svc->request(a.value, "2", {}, "r1", kTester).ok());
  ASSERT_TRUE(svc->request(a.value, "3", {}, "r2", kAdmin).ok());
  for (const Caller& caller : {kTester, kAdmin}) {
    Refusal refused;
    ASSERT_FALSE(svc->request(a.value, "4", {}, "r3", caller, "", &refused).ok());
    EXPECT_EQ(refused.status, 503u);
    EXPECT_EQ(refused.code, "queue_full");
    EXPECT_EQ(refused.retry_after_seconds, 10);
    EXPECT_NE(refused.message.find("2 dithers waiting, at most 2"), std::string::npos)
        << refused.message;
  }
  EXPECT_EQ(value_of(repo_->count_pending("")), 2);
  // An upload's automatic dither is made whatever the queue holds (the upload was admitted).
  ImageUploadedEvent e;
  e.uuid = new_image_id();
  e.url = "http://test/files/originals/" + e.uuid.value + ".png";
  e.filename = "b.png";
  e.blob_key = ObjectKey{"originals/" + e.uuid.value + ".png"};
  e.content_type = "image/png";
  e.owner = "tests";
  ASSERT_TRUE(svc->on_image_message(make_message(topics_.image, kImageUploaded, e.uuid.value,
                                                 image_uploaded_body(e)))
                  .ok());
  EXPECT_EQ(value_of(repo_->count_pending("")), 3);
  finish_all();
  EXPECT_TRUE(svc->request(a.value, "4", {}, "r3", kTester).ok());
}

// Animated originals (issue 16): a dither that names no format keeps the animation's own, and
// the canonical options stored in the record say so; a named format, a still original, or an
// original whose message said nothing of frames, changes nothing.
class AnimatedOriginals : public QuotaDithers {
 protected:
  // IMAGE_UPLOADED of an original of `content_type` with `frames`; its automatic dither (made
  // with `auto_dither`) is returned.
  DitherRecord announce(const std::string& content_type, int frames, AutoDither auto_dither = {}) {
    DitherService svc(*repo_, *blobs_, topics_, imaging::Limits{}, std::move(auto_dither), nullptr,
                      nullptr);
    ImageUploadedEvent e;
    e.uuid = new_image_id();
    const std::string ext = content_type.substr(content_type.find('/') + 1);
    e.url = "http://test/files/originals/" + e.uuid.value + "." + ext;
    e.filename = "a." + ext;
    e.blob_key = ObjectKey{"originals/" + e.uuid.value + "." + ext};
    e.content_type = content_type;
    e.frames = frames;
    e.owner = "tests";
    EXPECT_TRUE(svc.on_image_message(make_message(topics_.image, kImageUploaded, e.uuid.value,
                                                  image_uploaded_body(e)))
                    .ok());
    std::vector<DitherRecord> made = value_of(repo_->dithers_of(e.uuid));
    if (made.size() != 1u) {
      ADD_FAILURE() << "no automatic dither";
      return {};
    }
    return made[0];
  }
  // The format a request with `options` on the original `uuid` is made as (by its record, and
  // by the canonical options stored in it).
  std::string format_of(DitherService& svc, const ImageId& uuid,
                        const pipeline::OptionPairs& options, const std::string& channels = "2") {
    Result<DitherRecord> d =
        svc.request(uuid.value, channels, options, "r-" + std::to_string(++requests_), kTester);
    if (!d) {
      ADD_FAILURE() << d.error().message;
      return "";
    }
    Result<pipeline::ProcessOptions> stored = DitherService::options_of(*d);
    EXPECT_TRUE(stored.ok());
    if (stored) {
      EXPECT_EQ(imaging::to_string(stored->format), d->format) << d->options_json;
    }
    return d->format;
  }
  // The automatic dither of AUTO_DITHER_PRESET `preset` and AUTO_DITHER_OPTIONS `options`.
  static AutoDither automatic(std::string preset, pipeline::OptionPairs options) {
    AutoDither a;
    a.preset = std::move(preset);
    a.options = std::move(options);
    return a;
  }
  int requests_ = 0;
};

TEST_F(AnimatedOriginals, TheAutomaticDitherOfAnAnimationKeepsItsFormat) {
  const DitherRecord gif = announce("image/gif", 6);
  EXPECT_EQ(gif.format, "gif");
  EXPECT_NE(gif.options_json.find(R"("format":"gif")"), std::string::npos) << gif.options_json;
  EXPECT_EQ(value_of(repo_->get_original(gif.uuid)).frames, 6);
  EXPECT_EQ(value_of(repo_->get_original(gif.uuid)).content_type, "image/gif");
  EXPECT_EQ(announce("image/webp", 3).format, "webp");
  // Still images, whatever their type, are dithered to PNG as before.
  EXPECT_EQ(announce("image/gif", 1).format, "png");
  EXPECT_EQ(announce("image/webp", 1).format, "png");
  EXPECT_EQ(announce("image/png", 1).format, "png");
  // A built-in preset names no format: the animation's own.
  EXPECT_EQ(announce("image/gif", 4, automatic("mac", {})).format, "gif");
  // AUTO_DITHER_OPTIONS naming a format: that one, also for an animation (PNG: its first frame).
  EXPECT_EQ(
      announce("image/gif", 4, automatic("", {{"algorithm", "bayer"}, {"format", "png"}})).format,
      "png");
  EXPECT_EQ(announce("image/gif", 4, automatic("", {{"format", "WEBP"}})).format, "webp");
  // A GIF cannot hold levels:7's 343 colours: then WebP.
  EXPECT_EQ(announce("image/gif", 4, automatic("", {{"channels", "7"}})).format, "webp");
  EXPECT_EQ(announce("image/gif", 4, automatic("", {{"channels", "6"}})).format, "gif");
}

TEST_F(AnimatedOriginals, ARequestWithoutAFormatKeepsTheAnimationsOwn) {
  std::unique_ptr<DitherService> svc = service({});
  const ImageId gif = announce("image/gif", 5).uuid;
  const ImageId webp = announce("image/webp", 2).uuid;
  const ImageId still = announce("image/gif", 1).uuid;
  EXPECT_EQ(format_of(*svc, gif, {}), "gif");
  EXPECT_EQ(format_of(*svc, gif, {{"algorithm", "atkinson"}, {"temporal", "fresh"}}), "gif");
  EXPECT_EQ(format_of(*svc, webp, {}), "webp");
  EXPECT_EQ(format_of(*svc, still, {}), "png");
  // A named format wins, PNG included (the first frame, a still picture).
  EXPECT_EQ(format_of(*svc, gif, {{"format", "png"}}), "png");
  EXPECT_EQ(format_of(*svc, gif, {{"format", "webp"}}), "webp");
  EXPECT_EQ(format_of(*svc, webp, {{"format", "gif"}}), "gif");
  EXPECT_EQ(format_of(*svc, still, {{"format", "gif"}}), "gif");
  // The path's channels past 6 levels: more colours than a GIF holds.
  EXPECT_EQ(format_of(*svc, gif, {}, "7"), "webp");
  EXPECT_EQ(format_of(*svc, gif, {{"palette", "ega"}}, "16"), "gif");
  // Presets: a built-in one names no format; an owner's stores one always, and PNG (the
  // default) there leaves the animation its format, GIF or WebP is kept.
  EXPECT_EQ(format_of(*svc, gif, {{"preset", "gameboy"}}), "gif");
  ASSERT_TRUE(
      svc->save_preset("plain", "", {{"algorithm", "bayer"}}, kTester, nullptr, nullptr).ok());
  ASSERT_TRUE(
      svc->save_preset("as-webp", "", {{"format", "webp"}}, kTester, nullptr, nullptr).ok());
  EXPECT_EQ(format_of(*svc, gif, {{"preset", "plain"}}), "gif");
  EXPECT_EQ(format_of(*svc, gif, {{"preset", "as-webp"}}), "webp");
  EXPECT_EQ(format_of(*svc, gif, {{"preset", "plain"}, {"format", "png"}}), "png");
  EXPECT_EQ(format_of(*svc, still, {{"preset", "as-webp"}}), "webp");
}

// An original announced by a body without frames (an older version's, the prototype's) is a
// still image: its dithers are PNG unless asked otherwise.
TEST_F(AnimatedOriginals, AnOriginalOfAnOlderBodyIsStill) {
  DitherService svc(*repo_, *blobs_, topics_, imaging::Limits{}, AutoDither{}, nullptr, nullptr);
  const ImageId uuid = new_image_id();
  const std::string body = R"({"uuid":")" + uuid.value +
                           R"(","url":"http://test/files/originals/)" + uuid.value +
                           R"(.gif","filename":"a.gif","blob_key":"originals/)" + uuid.value +
                           R"(.gif","content_type":"image/gif","owner":"tests"})";
  ASSERT_TRUE(
      svc.on_image_message(make_message(topics_.image, kImageUploaded, uuid.value, body)).ok());
  EXPECT_EQ(value_of(repo_->get_original(uuid)).frames, 1);
  EXPECT_EQ(value_of(repo_->dithers_of(uuid))[0].format, "png");
}

// The whole flow with a real animated GIF: the record counts its frames, IMAGE_UPLOADED carries
// them, and the automatic dither is an animated GIF of as many frames.
TEST_F(Services, AnAnimatedUploadIsDitheredToAnAnimation) {
  imaging::Animation animation;
  for (int i = 0; i < 4; ++i) {
    engine::Image frame = engine::testing::synthetic_photo(24, 16);
    // At most 216 colours (a GIF holds 256), and each frame a little different.
    for (int y = 0; y < frame.height; ++y) {
      for (int x = 0; x < frame.width; ++x) {
        for (int c = 0; c < 3; ++c)
          frame.at(x, y)[c] = static_cast<uint8_t>((frame.at(x, y)[c] + 25) / 51 * 51);
      }
    }
    frame.at(i * 4, 5)[0] = 255;
    animation.frames.push_back(std::move(frame));
    animation.delays_ms.push_back(100 + 50 * i);
  }
  animation.loop = 2;
  Result<std::vector<uint8_t>> gif =
      imaging::encode_animation(animation, imaging::OutputFormat::kGif);
  ASSERT_TRUE(gif.ok()) << gif.error().message;
  Result<ImageRecord> up = upload_->upload(*gif, "moving.gif", "", kTester, "");
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(up->frames, 4);
  EXPECT_EQ(up->content_type, "image/gif");
  EXPECT_EQ(value_of(images_->get_image(up->uuid)).frames, 4);
  const ImageRecord done = wait_for(up->uuid, {kStatusFinished, kStatusFailed});
  ASSERT_EQ(done.status, kStatusFinished) << done.error;
  ASSERT_EQ(done.dithers.size(), 1u);
  EXPECT_EQ(done.dithers[0].format, "gif");
  const DitherRecord d = value_of(dither_->dithers_of(up->uuid.value, kTester))[0];
  Result<std::vector<uint8_t>> result = blobs_->get(d.blob_key);
  ASSERT_TRUE(result.ok());
  Result<imaging::ImageInfo> info = imaging::probe(*result, imaging::Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->format, imaging::InputFormat::kGif);
  EXPECT_EQ(info->frames, 4);
  // A still upload stays still.
  const ImageRecord still = finished_upload(24, 16, "still.png");
  EXPECT_EQ(still.frames, 1);
  EXPECT_EQ(still.dithers[0].format, "png");
}

TEST(CleanFilename, KeepsUtf8AndReplacesWhatIsNot) {
  EXPECT_EQ(clean_filename("../../cat.png", "png"), "cat.png");
  EXPECT_EQ(clean_filename("Ma\xC3\xAFs \xE2\x9C\x93.jpg", "jpeg"), "Ma\xC3\xAFs \xE2\x9C\x93.jpg");
  EXPECT_EQ(clean_filename("a\xFF"
                           "b.png",
                           "png"),
            "a\xEF\xBF\xBD"
            "b.png");
  EXPECT_EQ(clean_filename("\xC0\xAF.png", "png"), "\xEF\xBF\xBD\xEF\xBF\xBD.png");  // overlong
  EXPECT_EQ(clean_filename("\xED\xA0\x80.png", "png"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD.png");                       // a surrogate
  EXPECT_EQ(clean_filename("x\xE2\x9C", "png"), "x\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
  EXPECT_EQ(clean_filename("q\"<>\x01.png", "png"), "q.png");
  EXPECT_EQ(clean_filename("caf\xC3\xA9", "png"), "caf\xC3\xA9") << "a last accent is kept";
  std::string long_name(199, 'a');
  long_name += "\xC3\xA9\xC3\xA9";
  EXPECT_EQ(clean_filename(long_name, "png"), std::string(199, 'a')) << "cut between characters";
}

// Background work runs at the loop's nice value, and so do the threads it starts (the engine's).
TEST(WorkLoop, ThreadsRunAtTheirNiceValue) {
  const int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  std::atomic<int> in_step{-100};
  std::atomic<int> in_child{-100};
  std::atomic<bool> done{false};
  WorkLoop loop(
      "nice", 1,
      [&](const std::string&) {
        if (done.exchange(true)) return WorkLoop::kIdle;
        in_step = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
        std::thread child(
            [&] { in_child = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); });
        child.join();
        return WorkLoop::kDone;
      },
      std::chrono::milliseconds{10}, std::chrono::milliseconds{10}, 7);
  loop.start();
  for (int i = 0; i < 500 && in_child == -100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  loop.stop();
  EXPECT_EQ(in_step.load(), 7);
  EXPECT_EQ(in_child.load(), 7);
  // The thread that made the loop keeps its own priority.
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), mine);
}

}  // namespace
}  // namespace dither
