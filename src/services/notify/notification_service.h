// The notification service's logic (issue 5): e-mail a link to each finished dither to the
// address given at upload.
//
// Consuming (the dither topic): DITHER_UPLOADED and DITHER_FAILED whose body carries an e-mail
// address become one PENDING notification each, with the whole mail composed now (one small
// transaction; the partition never waits for SMTP). Other types, and dithers of images uploaded
// without an address, are ignored. A message delivered twice records nothing the second time.
//
// Sending (NotificationSenders, below): due notifications are claimed with a lease and handed to
// the MailSender; a transient failure (kUnavailable) is retried with exponential back-off, up to
// `max_attempts`; a permanent one (kInvalidArgument: the server refused the recipient) or the last
// attempt marks it FAILED with the reason, visible in GET /notifications and the log.
//
// Thread-safe (the ports are).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "ports/mail.h"
#include "ports/message.h"
#include "ports/notifications.h"
#include "services/common/work_loop.h"

namespace dither {

struct NotifyOptions {
  std::string public_base_url;  // absolute links in the mails
  std::string from = "Dither <noreply@localhost.localdomain>";
  int max_attempts = 8;
  std::chrono::milliseconds first_backoff{2000};  // doubled after each failed attempt
  std::chrono::milliseconds max_backoff{std::chrono::minutes{10}};
};

class NotificationService {
 public:
  NotificationService(NotificationRepository& store, MailSender& sender, NotifyOptions options,
                      std::function<void()> recorded = {});

  // Consumer of the dither topic.
  Status on_dither_message(const Message& message);
  // One attempt to send a claimed notification; records the outcome. kUnavailable only when the
  // store could not record it (the claim's lease then makes it due again).
  Status deliver(const Notification& n);

  Result<Page<Notification>> list(const PageRequest& page);
  Status health();
  std::string_view sender_name() const { return sender_.name(); }

 private:
  NotificationRepository& store_;
  MailSender& sender_;
  NotifyOptions options_;
  std::function<void()> recorded_;
};

// Threads that send due notifications (the notification service's workers): each claims one due
// notification at a time and calls deliver(); idle workers wake on notify() or every second.
class NotificationSenders {
 public:
  NotificationSenders(NotificationService& service, NotificationRepository& store, int count,
                      std::chrono::seconds lease = std::chrono::seconds{60});
  NotificationSenders(const NotificationSenders&) = delete;
  NotificationSenders& operator=(const NotificationSenders&) = delete;

  void start() { loop_.start(); }
  void notify() { loop_.notify(); }
  void stop() { loop_.stop(); }  // finishes the mails being sent, then returns

 private:
  WorkLoop::Outcome step(const std::string& worker);

  NotificationService& service_;
  NotificationRepository& store_;
  const std::chrono::seconds lease_;
  WorkLoop loop_;  // last: its threads use the members above
};

}  // namespace dither
