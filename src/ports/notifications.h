// Port: the notification service's own store (issue 5): which e-mails it owes, has sent, or gave
// up on. Each row holds the whole composed mail, so sending needs nothing but this store.
//
// The consumer records one notification per consumed message (idempotent on the message's
// dedupe id, and on (dither_id, kind): a message delivered twice, or republished, owes one
// e-mail). Senders claim due PENDING rows with a lease (as dither workers claim dithers), then
// mark them SENT, reschedule them after a transient failure (attempts + 1), or mark them FAILED
// with the reason. Nothing here blocks a Kafka partition: recording is one small transaction.
//
// Adapters: SQLite (embedded) and PostgreSQL. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ports/mail.h"
#include "ports/records.h"

namespace dither {

inline constexpr std::string_view kNotificationPending = "PENDING";
inline constexpr std::string_view kNotificationSent = "SENT";
inline constexpr std::string_view kNotificationFailed = "FAILED";

struct Notification {
  int64_t id = 0;         // assigned by the store
  ImageId uuid;           // the original image
  int64_t dither_id = 0;  // 0 when the message named none (the prototype's bodies)
  std::string kind;       // the message type it answers: DITHER_UPLOADED, DITHER_FAILED
  Mail mail;              // to = the image's address
  std::string status = std::string(kNotificationPending);
  int attempts = 0;             // sending attempts so far
  std::string last_error;       // the last failure's reason ("" if none)
  int64_t next_attempt_at = 0;  // Unix ms; due when <= now
  int64_t created_at = 0;       // Unix ms
  int64_t updated_at = 0;       // Unix ms
  int64_t sent_at = 0;          // Unix ms, 0 until SENT
};

class NotificationRepository {
 public:
  virtual ~NotificationRepository() = default;

  // Records `n` (PENDING, due at once; id and times assigned) once per `message_id` and once per
  // (dither_id, kind) when dither_id != 0. Returns false when it was already recorded.
  virtual Result<bool> record(const Notification& n, std::string_view message_id) = 0;
  // Claims up to `limit` due PENDING notifications, oldest due first, that nobody holds (or whose
  // lease ended), leasing each to `worker` for `lease`.
  virtual Result<std::vector<Notification>> claim_due(int limit, std::string_view worker,
                                                      std::chrono::seconds lease) = 0;
  // The outcome of one attempt by `worker` (no-ops returning false when the row is not PENDING
  // any more). Each clears the claim and counts the attempt.
  virtual Result<bool> mark_sent(int64_t id) = 0;
  virtual Result<bool> retry_later(int64_t id, std::string_view error, int64_t next_attempt_at) = 0;
  virtual Result<bool> mark_failed(int64_t id, std::string_view error) = 0;

  virtual Result<Notification> get(int64_t id) = 0;  // kNotFound
  // Newest first, paged like the other lists.
  virtual Result<Page<Notification>> list(const PageRequest& page) = 0;
  virtual Status ping() = 0;
};

}  // namespace dither
