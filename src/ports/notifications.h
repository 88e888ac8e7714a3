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
// Recorded but never to be sent: over the per-address cap (last_error says so).
inline constexpr std::string_view kNotificationSuppressed = "SUPPRESSED";

struct Notification {
  int64_t id = 0;               // assigned by the store
  ImageId uuid;                 // the original image
  int64_t dither_id = 0;        // 0 when the message named none (the prototype's bodies)
  std::string kind;             // the message type it answers: DITHER_UPLOADED, DITHER_FAILED
  Mail mail;                    // to = the image's address ("" once erased)
  std::string owner{"system"};  // the image's owner: who may list it
  std::string to_hash;          // hex HMAC-SHA256(pepper, lower-cased address): the cap's count
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

  // Records `n` (with its status: PENDING, due at once, or SUPPRESSED; id and times assigned) once
  // per `message_id` and once per (dither_id, kind) when dither_id != 0. Returns false when it
  // was already recorded, and returns false and stores nothing when n.uuid was erased
  // (erase_image): a DITHER_* message consumed after its image's IMAGE_DELETED (the topics are
  // consumed independently) must not bring the address back. The tombstone is checked in the
  // insert's transaction, so an erasure is either before a record (nothing stored) or after it
  // (the row is blanked).
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
  // Newest first, paged like the other lists (page.owner filters).
  virtual Result<Page<Notification>> list(const PageRequest& page) = 0;
  // How many notifications to `to_hash` were created at or after `since` (Unix ms), SUPPRESSED
  // ones not counted: the per-address cap.
  virtual Result<int> count_recent(std::string_view to_hash, int64_t since) = 0;
  // The image was deleted: every notification of `uuid` loses its address and its content
  // (mail.to, subject, text and html become ""; to_hash stays, for the cap); a PENDING one
  // becomes FAILED with last_error "the image was deleted". Also tombstones `uuid` (kept for
  // good, even when it had no notifications) so that record() refuses it from then on. Returns
  // how many notification rows changed (the tombstone is not counted).
  virtual Result<int> erase_image(const ImageId& uuid) = 0;
  virtual Status ping() = 0;
};

}  // namespace dither
