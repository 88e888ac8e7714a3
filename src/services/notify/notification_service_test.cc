// The notification service's logic over the SQLite store and a recording MailSender: one mail per
// finished dither, none twice, retries with back-off, FAILED after a refusal or the last attempt.
#include "services/notify/notification_service.h"

#include <gtest/gtest.h>

#include <mutex>

#include "adapters/sqlite/sqlite_notification_repository.h"
#include "messaging/events.h"

namespace dither {
namespace {

class RecordingSender : public MailSender {
 public:
  Status send(const Mail& mail) override {
    std::lock_guard lock(mutex_);
    if (!failures_.empty()) {
      Error e = failures_.front();
      failures_.erase(failures_.begin());
      return e;
    }
    sent_.push_back(mail);
    return {};
  }
  std::string_view name() const override { return "recording"; }
  void fail_next(Error e) {
    std::lock_guard lock(mutex_);
    failures_.push_back(std::move(e));
  }
  std::vector<Mail> sent() {
    std::lock_guard lock(mutex_);
    return sent_;
  }

 private:
  std::mutex mutex_;
  std::vector<Error> failures_;
  std::vector<Mail> sent_;
};

Message finished(const ImageId& uuid, int64_t dither_id, std::string_view address) {
  DitherEvent e;
  e.uuid = uuid;
  e.dither_id = dither_id;
  e.url_dither = "http://test/files/dithers/" + uuid.value + "/1.png";
  e.url = "http://test/files/originals/" + uuid.value + ".png";
  e.filename = "cat.png";
  e.channels = 2;
  e.algorithm = "floyd-steinberg";
  e.palette = "levels:2";
  e.format = "png";
  e.email = std::string(address);
  return make_message("dithers", kDitherUploaded, uuid.value, dither_event_body(e, false));
}

class Notify : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<NotificationRepository>> store =
        open_sqlite_notification_repository(":memory:");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(*store);
    NotifyOptions options;
    options.public_base_url = "http://test";
    options.from = "Dither <dither@example.org>";
    options.max_attempts = 3;
    options.first_backoff = std::chrono::milliseconds{1};
    service_ = std::make_unique<NotificationService>(*store_, sender_, options);
  }

  // Claims and delivers everything due (waiting for back-offs to pass), at most `rounds` times.
  void drain(int rounds = 20) {
    for (int i = 0; i < rounds; ++i) {
      Result<std::vector<Notification>> due =
          store_->claim_due(10, "test-worker", std::chrono::seconds{60});
      ASSERT_TRUE(due.ok()) << due.error().message;
      for (const Notification& n : *due) ASSERT_TRUE(service_->deliver(n).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
  }

  std::vector<Notification> all() {
    Result<Page<Notification>> page = store_->list(PageRequest{});
    EXPECT_TRUE(page.ok());
    return page ? page->items : std::vector<Notification>{};
  }

  RecordingSender sender_;
  std::unique_ptr<NotificationRepository> store_;
  std::unique_ptr<NotificationService> service_;
};

TEST_F(Notify, OneMailPerFinishedDitherEvenWhenDeliveredTwice) {
  const ImageId uuid = new_image_id();
  const Message m = finished(uuid, 7, "someone@example.org");
  ASSERT_TRUE(service_->on_dither_message(m).ok());
  ASSERT_TRUE(service_->on_dither_message(m).ok());          // redelivered
  Message again = finished(uuid, 7, "someone@example.org");  // republished: another message id
  ASSERT_TRUE(service_->on_dither_message(again).ok());
  drain();
  ASSERT_EQ(sender_.sent().size(), 1u);
  const Mail mail = sender_.sent()[0];
  EXPECT_EQ(mail.to, "someone@example.org");
  EXPECT_NE(mail.text.find("http://test/files/dithers/" + uuid.value + "/1.png"),
            std::string::npos);
  EXPECT_NE(mail.html.find("http://test/files/originals/" + uuid.value + ".png"),
            std::string::npos);
  ASSERT_EQ(all().size(), 1u);
  EXPECT_EQ(all()[0].status, kNotificationSent);
}

TEST_F(Notify, NoAddressNoMailAndOtherTypesAreIgnored) {
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 1, "")).ok());
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(
      service_->on_dither_message(make_message("dithers", kDitherDeleted, uuid.value, "{}")).ok());
  EXPECT_TRUE(all().empty());
}

TEST_F(Notify, TransientFailuresAreRetriedThenSent) {
  sender_.fail_next(make_error(ErrorKind::kUnavailable, "421 try later"));
  sender_.fail_next(make_error(ErrorKind::kUnavailable, "connection refused"));
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 2, "a@example.org")).ok());
  drain();
  ASSERT_EQ(sender_.sent().size(), 1u);
  const Notification n = all()[0];
  EXPECT_EQ(n.status, kNotificationSent);
  EXPECT_EQ(n.attempts, 3);
}

TEST_F(Notify, ARefusalOrTheLastAttemptIsFailedWithTheReason) {
  sender_.fail_next(make_error(ErrorKind::kInvalidArgument, "550 no such user"));
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 3, "x@example.org")).ok());
  drain();
  EXPECT_TRUE(sender_.sent().empty());
  ASSERT_EQ(all().size(), 1u);
  EXPECT_EQ(all()[0].status, kNotificationFailed);
  EXPECT_NE(all()[0].last_error.find("550"), std::string::npos);

  for (int i = 0; i < 3; ++i) sender_.fail_next(make_error(ErrorKind::kUnavailable, "down"));
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 4, "y@example.org")).ok());
  drain();
  EXPECT_TRUE(sender_.sent().empty());
  const Notification last = all()[0];  // newest first
  EXPECT_EQ(last.dither_id, 4);
  EXPECT_EQ(last.status, kNotificationFailed);
  EXPECT_EQ(last.attempts, 3);
}

TEST_F(Notify, AMalformedBodyIsAnErrorForTheDeadLetterTopic) {
  Message bad = make_message("dithers", kDitherUploaded, "k", "not json");
  EXPECT_FALSE(service_->on_dither_message(bad).ok());
}

}  // namespace
}  // namespace dither
