// The two services' logic wired together the way the embedded program wires them (SQLite in
// memory, files in a temporary directory, the in-process bus, both outbox relays), but without
// HTTP: the message flow of upload, dither and delete, idempotent consumers, and rejections that
// leave nothing behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include "adapters/fs/fs_blob_store.h"
#include "adapters/inproc/in_process_bus.h"
#include "adapters/sqlite/sqlite_dither_repository.h"
#include "adapters/sqlite/sqlite_image_repository.h"
#include "engine/testing/test_images.h"
#include "imaging/codec.h"
#include "messaging/events.h"
#include "messaging/outbox_relay.h"
#include "services/dither/dither_service.h"
#include "services/dither/dither_workers.h"
#include "services/upload/upload_service.h"

namespace dither {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> png_photo(int w, int h) {
  auto bytes = imaging::encode(testing::synthetic_photo(w, h), imaging::OutputFormat::kPng);
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
  Result<ImageRecord> up = upload_->upload(png, "../../cat.png", "a@b.example", "tests", "");
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
  EXPECT_EQ(types_for(up->uuid), (std::vector<std::string>{"IMAGE_UPLOADED", "DITHER_UPLOADED"}));

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
  EXPECT_EQ(upload_->upload(text_bytes, "x.png", "", "tests", "").error().kind,
            ErrorKind::kUnsupported);
  EXPECT_EQ(upload_->upload(truncated, "x.png", "", "tests", "").error().kind,
            ErrorKind::kUndecodable);
  EXPECT_EQ(upload_->upload(png, "x.png", "not an address", "tests", "").error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(upload_->upload({}, "x.png", "", "tests", "").error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_TRUE(images_->list_images({})->items.empty());
  EXPECT_TRUE(blobs_->list("")->empty());
  EXPECT_TRUE(images_->pending_messages(10)->empty());
  std::lock_guard lock(mutex_);
  EXPECT_TRUE(seen_.empty());
}

TEST_F(Services, BadDitherRequests) {
  Result<ImageRecord> up = upload_->upload(png_photo(16, 16), "a.png", "", "tests", "");
  ASSERT_TRUE(up.ok());
  wait_for(up->uuid, {kStatusFinished});
  const std::string id = up->uuid.value;
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
  Result<ImageRecord> up = upload_->upload(png_photo(16, 16), "a.png", "", "tests", "");
  ASSERT_TRUE(up.ok());
  wait_for(up->uuid, {kStatusFinished});
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
  EXPECT_EQ(dither_->dithers_of(up->uuid.value, kTester)->size(), 1u);
  EXPECT_EQ(images_->get_image(up->uuid)->dithers.size(), 1u);
  // Unknown types are ignored; unreadable bodies are errors (dead letters).
  Message odd = make_message(topics_.image, "SOMETHING_NEW", up->uuid.value, "{}");
  EXPECT_TRUE(dither_->on_image_message(odd).ok());
  Message bad = make_message(topics_.image, kImageUploaded, up->uuid.value, "not json");
  EXPECT_FALSE(dither_->on_image_message(bad).ok());
}

TEST_F(Services, FailedDitherIsReportedAndKeepsTheFinishedOne) {
  Result<ImageRecord> up = upload_->upload(png_photo(16, 16), "a.png", "", "tests", "");
  ASSERT_TRUE(up.ok());
  wait_for(up->uuid, {kStatusFinished});
  Result<DitherRecord> asked = dither_->request(
      up->uuid.value, "2", {{"width", "100000"}, {"height", "100000"}}, "big", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  for (int i = 0; i < 3000; ++i) {
    if (dithers_->get_dither(asked->id)->status != kStatusPending) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  Result<DitherRecord> failed = dithers_->get_dither(asked->id);
  EXPECT_EQ(failed->status, "FAILED");
  EXPECT_NE(failed->error.find("pixels"), std::string::npos) << failed->error;
  dither_relay_->drain();
  ImageRecord image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, "FINISHED") << "a failed extra dither does not undo the finished one";
  ASSERT_EQ(image.dithers.size(), 2u);
  EXPECT_EQ(image.dithers[0].status, "FAILED");
}

TEST_F(Services, OrphanOriginalsAreSwept) {
  const std::string orphan = "originals/" + new_image_id().value + ".png";
  ASSERT_TRUE(blobs_->put(ObjectKey{orphan}, png_photo(8, 8), "image/png").ok());
  Result<ImageRecord> kept = upload_->upload(png_photo(8, 8), "a.png", "", "tests", "");
  ASSERT_TRUE(kept.ok());
  Result<int> removed = upload_->remove_orphan_originals();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(blobs_->get(ObjectKey{orphan}).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(blobs_->get(kept->blob_key).ok());
}

TEST_F(Services, OneDitherIsDeletedAndTheImageShowsTheNewestFinishedOneLeft) {
  Result<ImageRecord> up = upload_->upload(png_photo(32, 24), "a.png", "", "tests", "");
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
  Result<ImageRecord> other = upload_->upload(png_photo(16, 16), "b.png", "", "tests", "");
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
  Result<ImageRecord> up = upload_->upload(png_photo(32, 24), "a.png", "", "tests", "");
  ASSERT_TRUE(up.ok());
  const ImageRecord done = wait_for(up->uuid, {kStatusFinished});
  workers_->stop();  // this test plays the worker
  Result<DitherRecord> asked = dither_->request(up->uuid.value, "3", {}, "r1", kTester);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  const DitherRecord claimed = *dithers_->get_dither(asked->id);  // what the worker holds
  ASSERT_EQ(claimed.status, kStatusPending);

  ASSERT_TRUE(dither_->remove_dither(up->uuid.value, claimed.id, kTester, "").ok());
  // The worker finishes after the row went: finish_dither says no, the result is removed and no
  // DITHER_UPLOADED is published.
  ASSERT_TRUE(dither_->process(claimed).ok());
  EXPECT_EQ(dithers_->get_dither(claimed.id).error().kind, ErrorKind::kNotFound);
  const std::string prefix = "dithers/" + up->uuid.value + "/";
  EXPECT_EQ(blobs_->list(prefix + std::to_string(claimed.id.value) + ".")->size(), 0u);
  EXPECT_EQ(blobs_->list(prefix)->size(), 1u) << "the automatic dither's result stays";
  dither_relay_->drain();
  std::vector<Message> about = dither_messages(up->uuid, claimed.id.value);
  ASSERT_EQ(about.size(), 1u);
  EXPECT_EQ(about[0].message_type(), kDitherDeleted);
  ImageRecord image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, kStatusFinished);
  EXPECT_EQ(image.url_dither, done.url_dither);
  EXPECT_EQ(image.dithers.size(), 1u);
}

// A DitherRepository that runs `before_delete` just before delete_dither: a worker finishing
// the dither between the service's removal of its blob and of its row.
class RacingDithers : public DitherRepository {
 public:
  explicit RacingDithers(DitherRepository& real) : real_(real) {}
  std::function<void()> before_delete;

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
  Result<std::vector<DitherRecord>> claim_dithers(int limit, std::string_view worker,
                                                  std::chrono::seconds lease) override {
    return real_.claim_dithers(limit, worker, lease);
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
  Result<std::vector<OutboxEntry>> pending_messages(int limit) override {
    return real_.pending_messages(limit);
  }
  Status remove_message(int64_t seq) override { return real_.remove_message(seq); }
  Status ping() override { return real_.ping(); }

 private:
  DitherRepository& real_;
};

TEST_F(Services, ADitherFinishedWhileBeingDeletedLosesItsResultToo) {
  Result<ImageRecord> up = upload_->upload(png_photo(32, 24), "a.png", "", "tests", "");
  ASSERT_TRUE(up.ok());
  const ImageRecord done = wait_for(up->uuid, {kStatusFinished});
  workers_->stop();  // this test plays the worker
  Result<DitherRecord> asked = dither_->request(up->uuid.value, "3", {}, "r1", kTester);
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
  Result<DitherRecord> removed = deleting.remove_dither(up->uuid.value, claimed.id, kTester, "");
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  ASSERT_TRUE(finished) << "the worker finished the dither between the two steps";
  EXPECT_EQ(removed->status, kStatusFinished);
  EXPECT_EQ(dithers_->get_dither(claimed.id).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(blobs_->get(removed->blob_key).error().kind, ErrorKind::kNotFound)
      << "its result does not outlive the row";
  EXPECT_EQ(blobs_->list("dithers/" + up->uuid.value + "/")->size(), 1u);

  // DITHER_UPLOADED then DITHER_DELETED: the upload side ends where it started.
  dither_relay_->drain();
  std::vector<Message> about = dither_messages(up->uuid, claimed.id.value);
  ASSERT_EQ(about.size(), 2u);
  EXPECT_EQ(about[0].message_type(), kDitherUploaded);
  EXPECT_EQ(about[1].message_type(), kDitherDeleted);
  ImageRecord image = *images_->get_image(up->uuid);
  EXPECT_EQ(image.status, kStatusFinished);
  EXPECT_EQ(image.url_dither, done.url_dither);
  ASSERT_EQ(image.dithers.size(), 1u);
  EXPECT_EQ(image.dithers[0].dither_id, done.dithers[0].dither_id);
}

TEST_F(Services, DitherDeletedBodiesOnTheUploadSide) {
  Result<ImageRecord> up = upload_->upload(png_photo(16, 16), "a.png", "", "tests", "");
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
  Result<ImageRecord> up = upload_->upload(png_photo(16, 16), "b.png", "", "tests", "");
  ASSERT_TRUE(up.ok());
  wait_for(up->uuid, {kStatusFinished});
  Message finished{topics_.dither,
                   up->uuid.value,
                   {{"message_type", "DITHER_UPLOADED"}, {"version", "1.0.0"}},
                   R"({"uuid":")" + up->uuid.value + R"(","url_dither":"https://x/d.png"})"};
  ASSERT_TRUE(upload_->on_dither_message(finished).ok());
  const size_t summaries = images_->get_image(up->uuid)->dithers.size();
  ASSERT_TRUE(upload_->on_dither_message(finished).ok());
  Result<ImageRecord> after = images_->get_image(up->uuid);
  EXPECT_EQ(after->url_dither, "https://x/d.png");
  EXPECT_EQ(after->status, kStatusFinished);
  EXPECT_EQ(after->dithers.size(), summaries);
}

TEST_F(Services, AnOriginalKnownOnlyByUrlFailsClearlyWithoutAFetcher) {
  const ImageId uuid = new_image_id();
  Message uploaded{topics_.image,
                   uuid.value,
                   {{"message_type", "IMAGE_UPLOADED"}, {"version", "1.0.0"}},
                   R"({"uuid":")" + uuid.value + R"(","url":"https://x/p.png","filename":"p"})"};
  ASSERT_TRUE(bus_.publish(uploaded).ok());
  std::vector<DitherRecord> made;
  for (int i = 0; i < 3000; ++i) {
    made = *dither_->dithers_of(uuid.value, kAdmin);
    if (!made.empty() && made[0].status != kStatusPending) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(made[0].status, kStatusFailed);
  EXPECT_NE(made[0].error.find("only known by URL"), std::string::npos) << made[0].error;
}

// An ImageRepository whose insert commits (or not) and then reports kUnavailable, as when the
// connection breaks during COMMIT; reads can be made to fail too.
class InDoubtImages : public ImageRepository {
 public:
  InDoubtImages(ImageRepository& real, bool commits, bool reads_fail)
      : real_(real), commits_(commits), reads_fail_(reads_fail) {}
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
  Result<std::vector<OutboxEntry>> pending_messages(int limit) override {
    return real_.pending_messages(limit);
  }
  Status remove_message(int64_t seq) override { return real_.remove_message(seq); }

 private:
  ImageRepository& real_;
  bool commits_;
  bool reads_fail_;
};

TEST_F(Services, AnUploadWhoseCommitOutcomeIsUnknownIsNeverHalfDone) {
  const auto originals = [this] { return blobs_->list("originals/")->size(); };
  const size_t before = originals();
  {
    // The commit happened: the upload succeeded, blob and row both there.
    InDoubtImages images(*images_, /*commits=*/true, /*reads_fail=*/false);
    UploadService upload(images, *blobs_, topics_, imaging::Limits{}, {});
    Result<ImageRecord> r = upload.upload(png_photo(16, 16), "a.png", "", "tests", "");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(images_->get_image(r->uuid).ok());
    EXPECT_EQ(originals(), before + 1);
  }
  {
    // It did not, and the store says so: nothing is left.
    InDoubtImages images(*images_, /*commits=*/false, /*reads_fail=*/false);
    UploadService upload(images, *blobs_, topics_, imaging::Limits{}, {});
    Result<ImageRecord> r = upload.upload(png_photo(16, 16), "b.png", "", "tests", "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_EQ(originals(), before + 1);
  }
  {
    // Nobody can tell: the blob stays (never a row without its original); 503 to the client.
    InDoubtImages images(*images_, /*commits=*/false, /*reads_fail=*/true);
    UploadService upload(images, *blobs_, topics_, imaging::Limits{}, {});
    Result<ImageRecord> r = upload.upload(png_photo(16, 16), "c.png", "", "tests", "");
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
      upload_->upload(png_photo(16, 16), "mine.png", "me@b.example", "tests", "");
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
  Result<ImageRecord> theirs = upload_->upload(png_photo(8, 8), "theirs.png", "", "stranger", "");
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

}  // namespace
}  // namespace dither
