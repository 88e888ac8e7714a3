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
  Result<int> erase_image(std::string_view uuid) override {
    std::lock_guard lock(mutex_);
    erased_.emplace_back(uuid);
    return 0;
  }
  std::vector<std::string> erased() {
    std::lock_guard lock(mutex_);
    return erased_;
  }

 private:
  std::mutex mutex_;
  std::vector<Error> failures_;
  std::vector<Mail> sent_;
  std::vector<std::string> erased_;
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
  e.owner = "alice";
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
    options.signer = &signer_;
    options.link_ttl = std::chrono::hours{24 * 7};
    options.max_per_hour = 3;
    options.address_key = "address-key-address-key-address-key";
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

  LinkSigner signer_{{"link-key-0123456789abcdef0123456789"}, "http://test/files/"};
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
  // Ours, not the server's words (they stay in the log).
  EXPECT_EQ(all()[0].last_error, "the mail server refused the message");

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

TEST_F(Notify, MailLinksAreSignedForAWeekAndSaySo) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(service_->on_dither_message(finished(uuid, 1, "a@example.org")).ok());
  drain(1);
  ASSERT_EQ(sender_.sent().size(), 1u);
  const Mail mail = sender_.sent()[0];
  const std::string link = "http://test/files/dithers/" + uuid.value + "/1.png?expires=";
  const size_t at = mail.text.find(link);
  ASSERT_NE(at, std::string::npos) << mail.text;
  const int64_t expires = std::stoll(mail.text.substr(at + link.size(), 10));
  EXPECT_NEAR(static_cast<double>(expires - now_seconds()), 7 * 86400.0, 60.0);
  const size_t sig = mail.text.find("&sig=", at);
  ASSERT_NE(sig, std::string::npos);
  const std::string signature = mail.text.substr(sig + 5, 43);
  EXPECT_EQ(signer_.verify("dithers/" + uuid.value + "/1.png", std::to_string(expires), signature,
                           now_seconds()),
            LinkSigner::Verdict::kValid);
  EXPECT_NE(mail.text.find("The links work until"), std::string::npos);
  EXPECT_NE(mail.html.find("The links work until"), std::string::npos);
  EXPECT_EQ(all()[0].owner, "alice");
}

TEST_F(Notify, AtMostTheCapPerAddressPerHourTheRestSuppressed) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), i, "Cap@Example.org")).ok());
  }
  // Another address has its own budget; the same address in another case is the same one.
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 9, "other@example.org")).ok());
  drain(2);
  EXPECT_EQ(sender_.sent().size(), 4u);
  int suppressed = 0;
  for (const Notification& n : all()) {
    if (n.status != kNotificationSuppressed) continue;
    ++suppressed;
    EXPECT_NE(n.last_error.find("MAIL_MAX_PER_HOUR"), std::string::npos) << n.last_error;
  }
  EXPECT_EQ(suppressed, 2);
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 6, "cap@example.org")).ok());
  EXPECT_EQ(all()[0].status, kNotificationSuppressed);
}

TEST_F(Notify, DeletingTheImageErasesItsAddress) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(service_->on_dither_message(finished(uuid, 1, "gone@example.org")).ok());
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 2, "kept@example.org")).ok());
  ASSERT_TRUE(
      service_->on_image_message(make_message("images", kImageDeleted, uuid.value, uuid_body(uuid)))
          .ok());
  EXPECT_EQ(sender_.erased(), std::vector<std::string>{uuid.value});
  for (const Notification& n : all()) {
    if (n.uuid == uuid) {
      EXPECT_EQ(n.mail.to, "");
      EXPECT_EQ(n.mail.text, "");
      EXPECT_EQ(n.status, kNotificationFailed);
      EXPECT_EQ(n.last_error, "the image was deleted");
    } else {
      EXPECT_EQ(n.mail.to, "kept@example.org");
    }
  }
  drain(1);
  ASSERT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(sender_.sent()[0].to, "kept@example.org");
}

TEST_F(Notify, ADitherMessageConsumedAfterTheDeletionRecordsNothing) {
  // The two topics are consumed independently: the image's IMAGE_DELETED can come first.
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(
      service_->on_image_message(make_message("images", kImageDeleted, uuid.value, uuid_body(uuid)))
          .ok());
  ASSERT_TRUE(service_->on_dither_message(finished(uuid, 1, "late@example.org")).ok());
  ASSERT_TRUE(service_->on_dither_message(finished(uuid, 1, "late@example.org")).ok());
  EXPECT_TRUE(all().empty());
  drain(1);
  EXPECT_TRUE(sender_.sent().empty());
  // Another image is told as usual.
  ASSERT_TRUE(service_->on_dither_message(finished(new_image_id(), 2, "kept@example.org")).ok());
  drain(1);
  ASSERT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(sender_.sent()[0].to, "kept@example.org");
}

TEST_F(Notify, AMailSentWhileItsImageWasDeletedIsRemovedFromTheSender) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(service_->on_dither_message(finished(uuid, 1, "gone@example.org")).ok());
  Result<std::vector<Notification>> claimed =
      store_->claim_due(10, "test-worker", std::chrono::seconds{60});
  ASSERT_TRUE(claimed.ok()) << claimed.error().message;
  ASSERT_EQ(claimed->size(), 1u);
  // The image is deleted while the claimed copy is being sent (the store only: the sender's
  // files were erased before this mail was written).
  Result<int> erased = store_->erase_image(uuid);
  ASSERT_TRUE(erased.ok()) << erased.error().message;
  ASSERT_EQ(*erased, 1);
  ASSERT_TRUE(sender_.erased().empty());

  ASSERT_TRUE(service_->deliver(claimed->front()).ok());
  EXPECT_EQ(sender_.sent().size(), 1u);
  EXPECT_EQ(sender_.erased(), std::vector<std::string>{uuid.value});
  ASSERT_EQ(all().size(), 1u);
  EXPECT_EQ(all()[0].status, kNotificationFailed);
  EXPECT_EQ(all()[0].mail.to, "");
}

TEST_F(Notify, AMailAnotherSenderFinishedMeanwhileKeepsTheImagesMails) {
  const ImageId uuid = new_image_id();
  ASSERT_TRUE(service_->on_dither_message(finished(uuid, 1, "twice@example.org")).ok());
  // The first sender's lease ends before it is done; a second sender claims and sends it.
  Result<std::vector<Notification>> first =
      store_->claim_due(10, "slow-worker", std::chrono::seconds{0});
  ASSERT_TRUE(first.ok() && first->size() == 1u);
  Result<std::vector<Notification>> second =
      store_->claim_due(10, "fast-worker", std::chrono::seconds{60});
  ASSERT_TRUE(second.ok() && second->size() == 1u);
  ASSERT_TRUE(service_->deliver(second->front()).ok());
  ASSERT_TRUE(service_->deliver(first->front()).ok());
  EXPECT_EQ(sender_.sent().size(), 2u);
  EXPECT_TRUE(sender_.erased().empty());  // the image is alive: its mails stay
  ASSERT_EQ(all().size(), 1u);
  EXPECT_EQ(all()[0].status, kNotificationSent);
  EXPECT_EQ(all()[0].mail.to, "twice@example.org");
}

}  // namespace
}  // namespace dither
