#include "services/notify/notification_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/crypto.h"
#include "messaging/events.h"
#include "observability/metrics.h"
#include "observability/tracing.h"
#include "services/common/message_trace.h"
#include "services/notify/mail_composer.h"

namespace dither {
namespace {

// "2026-12-12 12:00 UTC"
std::string utc_minute(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M UTC", &tm);
  return buffer;
}

// Which notification a remembered trace belongs to: the repository records one per dither and
// kind (or per message, for the prototype's bodies without a dither id).
std::string trace_key(const Notification& n) {
  return n.kind + "/" + (n.dither_id != 0 ? std::to_string(n.dither_id) : n.uuid.value);
}

// The CLIENT span of one attempt to hand a mail to the mail server: what, never to whom.
observability::Span mail_span(observability::Tracer* tracer, const Notification& n,
                              std::string_view parent, std::string_view sender) {
  observability::Span span =
      observability::start_span(tracer, "mail", observability::SpanKind::kClient, parent);
  span.set("dither.notification.id", n.id)
      .set("dither.notification.kind", n.kind)
      .set("dither.notification.attempt", n.attempts + 1)
      .set("dither.id", n.dither_id)
      .set("dither.image", n.uuid.value)
      .set("mail.sender", sender);
  return span;
}

}  // namespace

std::string NotificationService::trace_of(const Notification& n) {
  if (tracer_ == nullptr) return {};
  const std::lock_guard lock(traces_mutex_);
  const auto it = traces_.find(trace_key(n));
  return it == traces_.end() ? std::string() : it->second;
}

void NotificationService::remember_trace(const Notification& n, std::string traceparent) {
  const std::lock_guard lock(traces_mutex_);
  const auto [it, added] = traces_.insert_or_assign(trace_key(n), std::move(traceparent));
  if (!added) return;
  trace_order_.push_back(it->first);
  if (trace_order_.size() > kRememberedTraces) {
    traces_.erase(trace_order_.front());
    trace_order_.pop_front();
  }
}

// What set_metrics() records.
struct NotificationService::Recorded {
  explicit Recorded(observability::Metrics& metrics)
      : mails(metrics.counter("mails_total",
                              "Notification mails by outcome: sent, retried (the server could "
                              "not take it yet), failed (given up), suppressed (over "
                              "MAIL_MAX_PER_HOUR).",
                              {"outcome"})),
        sent(mails.with({"sent"})),
        retried(mails.with({"retried"})),
        failed(mails.with({"failed"})),
        suppressed(mails.with({"suppressed"})),
        send_seconds(metrics
                         .histogram("mail_send_duration_seconds",
                                    "Time to hand one mail to the mail server (any outcome).", {},
                                    observability::kStageBuckets)
                         .with({})) {}
  observability::CounterFamily mails;
  prometheus::Counter& sent;
  prometheus::Counter& retried;
  prometheus::Counter& failed;
  prometheus::Counter& suppressed;
  prometheus::Histogram& send_seconds;
};

NotificationService::~NotificationService() = default;

void NotificationService::set_metrics(observability::Metrics& metrics) {
  metrics_ = std::make_unique<Recorded>(metrics);
}

NotificationService::NotificationService(NotificationRepository& store, MailSender& sender,
                                         NotifyOptions options, std::function<void()> recorded)
    : store_(store),
      sender_(sender),
      options_(std::move(options)),
      recorded_(std::move(recorded)) {}

Status NotificationService::on_dither_message(const Message& message) {
  const observability::Span span = trace_consume(tracer_, message);
  const std::string_view type = message.message_type();
  if (type != kDitherUploaded && type != kDitherFailed) return {};
  Result<DitherEvent> e = read_dither_event(message.body);
  if (!e) return e.error();
  if (e->email.empty()) return {};  // uploaded without an address: nobody to tell

  DitherMailContext context;
  context.public_base_url = options_.public_base_url;
  context.from = options_.from;
  context.original_url = e->url;
  context.filename = e->filename;
  if (options_.signer != nullptr && options_.signer->enabled()) {
    const int64_t expires = now_seconds() + options_.link_ttl.count();
    context.sign = [this, expires](std::string_view url) {
      return options_.signer->sign(url, expires);
    };
    context.links_valid_until = utc_minute(expires);
  }
  Result<Mail> mail = compose_dither_mail(type, *e, context);
  if (!mail) return mail.error();  // e.g. an address that is not one: a dead letter
  Notification n;
  n.uuid = e->uuid;
  n.dither_id = e->dither_id;
  n.kind = std::string(type);
  n.owner = e->owner;
  n.to_hash = address_hash(e->email);
  n.mail = std::move(*mail);
  if (options_.max_per_hour > 0) {
    Result<int> recent = store_.count_recent(n.to_hash, now_millis() - 3600 * 1000);
    if (!recent) return recent.error();
    if (*recent >= options_.max_per_hour) {
      n.status = std::string(kNotificationSuppressed);
      n.last_error = "not sent: " + std::to_string(options_.max_per_hour) +
                     " e-mails to this address within the last hour already (MAIL_MAX_PER_HOUR)";
    }
  }
  Result<bool> recorded = store_.record(n, message.dedupe_id());
  if (!recorded) return recorded.error();
  if (*recorded) {
    spdlog::info(
        "notification for dither {} of {} to {} {}", e->dither_id, e->uuid.value,
        mask_email(e->email),
        n.status == kNotificationSuppressed ? "suppressed (over the hourly cap)" : "queued");
    if (recorded_ && n.status == kNotificationPending) recorded_();
    if (metrics_ && n.status == kNotificationSuppressed) metrics_->suppressed.Increment();
    if (span.traced() && n.status == kNotificationPending) remember_trace(n, span.traceparent());
  }
  return {};
}

Status NotificationService::on_image_message(const Message& message) {
  if (message.message_type() != kImageDeleted) return {};
  const observability::Span span = trace_consume(tracer_, message);
  Result<ImageId> uuid = read_uuid(message.body);
  if (!uuid) return uuid.error();
  Result<int> erased = store_.erase_image(*uuid);
  if (!erased) return erased.error();
  Result<int> files = sender_.erase_image(uuid->value);
  if (!files) return files.error();
  if (*erased > 0 || *files > 0) {
    spdlog::info(
        "image {} deleted: its address erased from {} notification(s) and {} stored "
        "mail(s)",
        uuid->value, *erased, *files);
  }
  return {};
}

std::string NotificationService::address_hash(std::string_view address) const {
  // One mailbox, however it is spelled: case and a "+tag" in the local part do not make another.
  std::string lower(address);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t at = lower.rfind('@');
  const size_t plus = lower.find('+');
  if (at != std::string::npos && plus != std::string::npos && plus < at)
    lower.erase(plus, at - plus);
  return to_hex(hmac_sha256(options_.address_key, lower));
}

Status NotificationService::deliver(const Notification& n) {
  observability::Span span = mail_span(tracer_, n, trace_of(n), sender_.name());
  const observability::Stopwatch sending;
  const Status sent = sender_.send(n.mail);
  span.set("dither.mail.outcome", sent ? "sent" : to_string(sent.error().kind));
  // The server's own words stay in the log (they may quote the address).
  if (!sent) {
    span.set_error(sent.error().kind == ErrorKind::kUnavailable
                       ? "the mail server could not take it"
                       : "the mail server refused the message");
  }
  span.end();
  if (metrics_) metrics_->send_seconds.Observe(sending.seconds());
  Result<bool> marked = false;
  if (sent) {
    if (metrics_) metrics_->sent.Increment();
    marked = store_.mark_sent(n.id);
    if (marked && *marked) {
      spdlog::info("notification {} (dither {} of {}) sent to {}", n.id, n.dither_id, n.uuid.value,
                   mask_email(n.mail.to));
    } else if (marked) {
      // Not PENDING any more: most likely the image was deleted while the mail was being sent,
      // and a sender that keeps its mails (the mailbox) wrote this one after the erasure removed
      // the image's files. Remove it too (docs/SECURITY.md). Only when the row lost its address
      // (or cannot be read): a row another sender finished after this one's lease ended is no
      // reason to remove the image's mails.
      Result<Notification> now = store_.get(n.id);
      if (!now || now->mail.to.empty()) {
        Result<int> files = sender_.erase_image(n.uuid.value);
        if (!files) {
          spdlog::warn(
              "notification {} (dither {} of {}): sent as its image was deleted; cannot "
              "remove the stored mail: {}",
              n.id, n.dither_id, n.uuid.value, files.error().message);
          return files.error();
        }
        spdlog::info(
            "notification {} (dither {} of {}) sent as its image was deleted: {} stored mail(s) "
            "of the image removed",
            n.id, n.dither_id, n.uuid.value, *files);
      } else {
        spdlog::info("notification {} (dither {} of {}) sent to {}; already {} meanwhile", n.id,
                     n.dither_id, n.uuid.value, mask_email(n.mail.to), now->status);
      }
    }
  } else {
    const Error& error = sent.error();
    const int attempts = n.attempts + 1;
    if (error.kind == ErrorKind::kUnavailable && attempts < options_.max_attempts) {
      auto delay = options_.first_backoff;
      for (int i = 1; i < attempts && delay < options_.max_backoff; ++i) delay *= 2;
      delay = std::min(delay, options_.max_backoff);
      if (metrics_) metrics_->retried.Increment();
      marked = store_.retry_later(n.id, "the mail server could not take it yet; trying again",
                                  now_millis() + delay.count());
      spdlog::warn("notification {} to {}: attempt {} failed, next in {} s: {}", n.id,
                   mask_email(n.mail.to), attempts, delay.count() / 1000, error.message);
    } else {
      // The server's own words (its address, its reply) stay in the log.
      if (metrics_) metrics_->failed.Increment();
      marked = store_.mark_failed(n.id, error.kind == ErrorKind::kUnavailable
                                            ? "the mail server could not be reached"
                                            : "the mail server refused the message");
      spdlog::error("notification {} to {}: given up after {} attempt(s): {}", n.id,
                    mask_email(n.mail.to), attempts, error.message);
    }
  }
  if (!marked) return marked.error();
  return {};
}

Result<Page<Notification>> NotificationService::list(const PageRequest& page) {
  return store_.list(page);
}

Status NotificationService::health() { return store_.ping(); }

// A sender whose outcome could not be recorded waits a second (min = max back-off) and leaves
// the notification to whoever claims it when its lease ends.
NotificationSenders::NotificationSenders(NotificationService& service,
                                         NotificationRepository& store, int count,
                                         std::chrono::seconds lease)
    : service_(service),
      store_(store),
      lease_(lease),
      loop_(
          "mail", count, [this](const std::string& worker) { return step(worker); },
          std::chrono::seconds{1}, std::chrono::seconds{1}) {}

WorkLoop::Outcome NotificationSenders::step(const std::string& worker) {
  Result<std::vector<Notification>> due = store_.claim_due(1, worker, lease_);
  if (!due || due->empty()) {
    if (!due) spdlog::warn("notifications: cannot claim: {}", due.error().message);
    return WorkLoop::kIdle;
  }
  if (Status s = service_.deliver(due->front()); !s) {
    spdlog::warn("notification {}: cannot record the outcome (retried when its lease ends): {}",
                 due->front().id, s.error().message);
    return WorkLoop::kRetryLater;
  }
  return WorkLoop::kDone;
}

}  // namespace dither
