// The notification service's logic (issue 5): e-mail a link to each finished dither to the
// address given at upload.
//
// Consuming (the dither topic): DITHER_UPLOADED and DITHER_FAILED whose body carries an e-mail
// address become one PENDING notification each, with the whole mail composed now (one small
// transaction; the partition never waits for SMTP); past `max_per_hour` mails to one address it is
// recorded SUPPRESSED instead, never sent. The dithering service puts the address in the body only
// for dithers the upload's owner asked for. Other types, and dithers of images uploaded
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
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/link_signer.h"
#include "common/result.h"
#include "ports/mail.h"
#include "ports/message.h"
#include "ports/notifications.h"
#include "services/common/work_loop.h"

namespace dither {
namespace observability {
class Metrics;
class Tracer;
}  // namespace observability

struct NotifyOptions {
  std::string public_base_url;  // absolute links in the mails
  // Signs the mail's links to stored files for `link_ttl` (docs/SECURITY.md); null: unsigned.
  const LinkSigner* signer = nullptr;
  std::chrono::seconds link_ttl{std::chrono::hours{24 * 7}};
  // At most this many mails per address per hour; more are recorded SUPPRESSED (0: no cap).
  int max_per_hour = 10;
  // Key of the addresses' hash (the cap counts by it; the address itself can be erased).
  std::string address_key{};
  std::string from = "Dither <noreply@localhost.localdomain>";
  int max_attempts = 8;
  std::chrono::milliseconds first_backoff{2000};  // doubled after each failed attempt
  std::chrono::milliseconds max_backoff{std::chrono::minutes{10}};
};

class NotificationService {
 public:
  NotificationService(NotificationRepository& store, MailSender& sender, NotifyOptions options,
                      std::function<void()> recorded = {});
  ~NotificationService();

  // Counts mails by outcome (dither_mails_total: sent, retried, failed, suppressed) and times
  // each hand-over to the mail server from now on. `metrics` must outlive the service.
  void set_metrics(observability::Metrics& metrics);
  // Where the service's spans go (docs/TRACING.md): a CONSUMER span per message, a CLIENT span
  // "mail" per sending attempt (never the address), in the trace of the message that asked for
  // it when this process recorded it (the trace is kept in memory, not in the database); not
  // owned, must outlive the service. Unset: none.
  void set_tracer(observability::Tracer* tracer) { tracer_ = tracer; }

  // Consumer of the dither topic.
  Status on_dither_message(const Message& message);
  // Consumer of the image topic: IMAGE_DELETED erases the image's address from every
  // notification and from the sender's stored mails.
  Status on_image_message(const Message& message);
  // One attempt to send a claimed notification; records the outcome. kUnavailable only when the
  // store could not record it (the claim's lease then makes it due again).
  Status deliver(const Notification& n);

  // page.owner filters (the caller's list_filter()).
  Result<Page<Notification>> list(const PageRequest& page);
  Status health();
  std::string_view sender_name() const { return sender_.name(); }

 private:
  std::string address_hash(std::string_view address) const;
  NotificationRepository& store_;
  MailSender& sender_;
  NotifyOptions options_;
  std::function<void()> recorded_;
  struct Recorded;  // the series set_metrics() made
  std::unique_ptr<Recorded> metrics_;
  observability::Tracer* tracer_ = nullptr;
  // The trace of the message each notification came from, for its "mail" spans: the last
  // kRememberedTraces ones, by kind and dither (trace_key()).
  static constexpr size_t kRememberedTraces = 4096;
  std::string trace_of(const Notification& n);
  void remember_trace(const Notification& n, std::string traceparent);
  std::mutex traces_mutex_;
  std::unordered_map<std::string, std::string> traces_;  // guarded by traces_mutex_
  std::deque<std::string> trace_order_;                  // guarded by traces_mutex_: oldest first
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
