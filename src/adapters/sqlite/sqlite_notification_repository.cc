#include "adapters/sqlite/sqlite_notification_repository.h"

#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "adapters/shared/rows.h"
#include "adapters/sqlite/outbox_table.h"
#include "adapters/sqlite/sqlite_store.h"

namespace dither {
namespace {

using sqlite::Connection;
using sqlite::Statement;

// The SQL below spells statuses as literals (a partial index needs them).
static_assert(kNotificationPending == "PENDING" && kNotificationSent == "SENT" &&
              kNotificationFailed == "FAILED" && kNotificationSuppressed == "SUPPRESSED");

// processed_messages as in the other schemas (sqlite::first_delivery uses it); no outbox: the
// notification service publishes nothing. A notification holds its whole composed mail.
// `claimed_by` / `claimed_until` (Unix ms; '' and 0 = nobody) lease a PENDING row to one sender.
constexpr std::string_view kNotificationTablesSql = R"sql(
CREATE TABLE processed_messages (
  message_id TEXT PRIMARY KEY,
  processed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,  -- list order and cursor; never reused
  uuid TEXT NOT NULL,
  dither_id INTEGER NOT NULL,            -- 0: the message named no dither
  kind TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  mail_to TEXT NOT NULL,
  subject TEXT NOT NULL,
  text_part TEXT NOT NULL,
  html_part TEXT NOT NULL,
  mail_message_id TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  claimed_by TEXT NOT NULL DEFAULT '',
  claimed_until INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX notifications_once_per_dither ON notifications (dither_id, kind)
  WHERE dither_id <> 0;
CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE status = 'PENDING';
)sql";

// Owners and the per-address cap (docs/SECURITY.md): the image's owner (what existed before
// belongs to `system`) and the keyed hash of the address, which outlives the address itself.
// Lists of one owner walk the (owner, id) index; the cap counts on (to_hash, created_at).
constexpr std::string_view kNotificationOwnersSql = R"sql(
ALTER TABLE notifications ADD COLUMN owner TEXT NOT NULL DEFAULT 'system';
ALTER TABLE notifications ADD COLUMN to_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX notifications_by_owner ON notifications (owner, id);
CREATE INDEX notifications_by_address ON notifications (to_hash, created_at);
)sql";

// Tombstones of deleted images (docs/SECURITY.md): a DITHER_* message of an image consumed after
// its IMAGE_DELETED (the topics are consumed independently; lag, redelivery) must not bring the
// address back. erase_image() records the uuid here, record() refuses a tombstoned one. Kept
// for good: a uuid and a time, nothing about anybody.
constexpr std::string_view kErasedImagesSql = R"sql(
CREATE TABLE erased_images (
  uuid TEXT PRIMARY KEY,
  erased_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

constexpr std::array<sqlite::Migration, 3> kNotificationMigrations = {{
    {1, kNotificationTablesSql},
    {2, kNotificationOwnersSql},
    {3, kErasedImagesSql},
}};

const std::string kColumns(adapters::kNotificationColumns);

std::string select_notifications(std::string_view where_and_order) {
  return "SELECT " + kColumns + " FROM notifications " + std::string(where_and_order);
}
const std::string kSelectById = select_notifications("WHERE id = ?");
const std::string kSelectPage = select_notifications("WHERE id < ? ORDER BY id DESC LIMIT ?");
const std::string kSelectOwnersPage =
    select_notifications("WHERE owner = ? AND id < ? ORDER BY id DESC LIMIT ?");
// A second notification for the same (dither_id, kind) is not an error but nothing.
constexpr std::string_view kInsert =
    "INSERT INTO notifications (uuid, dither_id, kind, mail_from, mail_to, subject, text_part, "
    "html_part, mail_message_id, status, attempts, last_error, next_attempt_at, created_at, "
    "updated_at, sent_at, owner, to_hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING";
// Whether the image was deleted (then nothing of it is recorded any more).
constexpr std::string_view kIsErased = "SELECT 1 FROM erased_images WHERE uuid = ?";
// The first erasure's time is kept.
constexpr std::string_view kTombstone =
    "INSERT INTO erased_images (uuid, erased_at) VALUES (?, ?) ON CONFLICT DO NOTHING";
// The per-address cap's count: SUPPRESSED rows were never going to be sent.
constexpr std::string_view kCountRecent =
    "SELECT count(*) FROM notifications WHERE to_hash = ? AND created_at >= ? "
    "AND status <> 'SUPPRESSED'";
// The image was deleted: its notifications lose address and content (only rows that still had
// some, or were still owed, change); the ones still owed are given up.
constexpr std::string_view kEraseImage =
    "UPDATE notifications SET mail_to = '', subject = '', text_part = '', html_part = '', "
    "last_error = CASE status WHEN 'PENDING' THEN 'the image was deleted' ELSE last_error END, "
    "status = CASE status WHEN 'PENDING' THEN 'FAILED' ELSE status END, "
    "claimed_by = '', claimed_until = 0, updated_at = ? WHERE uuid = ? AND (status = 'PENDING' "
    "OR mail_to <> '' OR subject <> '' OR text_part <> '' OR html_part <> '')";
// Leases the due PENDING rows nobody holds (or whose lease ended), oldest due first.
const std::string kClaim =
    "UPDATE notifications SET claimed_by = ?1, claimed_until = ?2 WHERE id IN (SELECT id FROM "
    "notifications WHERE status = 'PENDING' AND next_attempt_at <= ?3 AND claimed_until <= ?3 "
    "ORDER BY next_attempt_at, id LIMIT ?4) RETURNING " +
    kColumns;
// The outcomes of an attempt: each counts it and clears the claim, on PENDING rows only.
constexpr std::string_view kMarkSent =
    "UPDATE notifications SET status = 'SENT', attempts = attempts + 1, sent_at = ?, "
    "updated_at = ?, claimed_by = '', claimed_until = 0 WHERE id = ? AND status = 'PENDING'";
constexpr std::string_view kRetryLater =
    "UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
    "updated_at = ?, claimed_by = '', claimed_until = 0 WHERE id = ? AND status = 'PENDING'";
constexpr std::string_view kMarkFailed =
    "UPDATE notifications SET status = 'FAILED', attempts = attempts + 1, last_error = ?, "
    "updated_at = ?, claimed_by = '', claimed_until = 0 WHERE id = ? AND status = 'PENDING'";

constexpr auto read_notification = adapters::read_notification<Statement>;

class SqliteNotificationRepository final : public sqlite::Store<NotificationRepository> {
 public:
  using Store::Store;

  Result<bool> record(const Notification& n, std::string_view message_id) override;
  Result<std::vector<Notification>> claim_due(int limit, std::string_view worker,
                                              std::chrono::seconds lease) override;
  Result<bool> mark_sent(int64_t id) override;
  Result<bool> retry_later(int64_t id, std::string_view error, int64_t next_attempt_at) override;
  Result<bool> mark_failed(int64_t id, std::string_view error) override;
  Result<Notification> get(int64_t id) override;
  Result<Page<Notification>> list(const PageRequest& page) override;
  Result<int> count_recent(std::string_view to_hash, int64_t since) override;
  Result<int> erase_image(const ImageId& uuid) override;
};

}  // namespace

Result<std::unique_ptr<NotificationRepository>> open_sqlite_notification_repository(
    const std::string& path, const SqliteOptions& options) {
  static constexpr sqlite::Schema kSchema{"the notification service's store",
                                          0x44494E54,  // DINT
                                          kNotificationMigrations};
  return sqlite::open_store<NotificationRepository, SqliteNotificationRepository>(
      path, kSchema, options, "notifications");
}

Result<bool> SqliteNotificationRepository::record(const Notification& n,
                                                  std::string_view message_id) {
  if (message_id.empty()) {
    return make_error(ErrorKind::kInvalidArgument, "record needs the message's id");
  }
  return db_->write([&](Connection& c) {
    // In the insert's transaction: an erasure is either before it (nothing is recorded) or
    // after it (and blanks the row).
    if (c.prepare(kIsErased).bind_all(n.uuid.value).step()) return false;
    if (!sqlite::first_delivery(c, message_id)) return false;
    const int64_t now = now_millis();
    const bool suppressed = n.status == kNotificationSuppressed;
    c.prepare(kInsert)
        .bind_all(n.uuid.value, n.dither_id, n.kind, n.mail.from, n.mail.to, n.mail.subject,
                  n.mail.text, n.mail.html, n.mail.message_id,
                  suppressed ? kNotificationSuppressed : kNotificationPending,
                  suppressed ? std::string_view(n.last_error) : std::string_view(""), now, now, now,
                  n.owner, n.to_hash)
        .run();
    return c.changes() == 1;
  });
}

Result<std::vector<Notification>> SqliteNotificationRepository::claim_due(
    int limit, std::string_view worker, std::chrono::seconds lease) {
  if (worker.empty()) return make_error(ErrorKind::kInvalidArgument, "a claim needs a worker");
  if (limit <= 0) return std::vector<Notification>{};
  return db_->write([&](Connection& c) {
    return sqlite::claim(c, kClaim, worker, lease, limit, read_notification);
  });
}

Result<bool> SqliteNotificationRepository::mark_sent(int64_t id) {
  return db_->write([&](Connection& c) {
    const int64_t now = now_millis();
    c.prepare(kMarkSent).bind_all(now, now, id).run();
    return c.changes() > 0;
  });
}

Result<bool> SqliteNotificationRepository::retry_later(int64_t id, std::string_view error,
                                                       int64_t next_attempt_at) {
  return db_->write([&](Connection& c) {
    c.prepare(kRetryLater).bind_all(error, next_attempt_at, now_millis(), id).run();
    return c.changes() > 0;
  });
}

Result<bool> SqliteNotificationRepository::mark_failed(int64_t id, std::string_view error) {
  return db_->write([&](Connection& c) {
    c.prepare(kMarkFailed).bind_all(error, now_millis(), id).run();
    return c.changes() > 0;
  });
}

Result<Notification> SqliteNotificationRepository::get(int64_t id) {
  return db_->read([&](Connection& c) {
    return sqlite::only_row(c, kSelectById, read_notification,
                            "no notification " + std::to_string(id), id);
  });
}

Result<Page<Notification>> SqliteNotificationRepository::list(const PageRequest& page) {
  return db_->read([&](Connection& c) {
    return sqlite::page_of(c, page, kSelectPage, kSelectOwnersPage, read_notification);
  });
}

Result<int> SqliteNotificationRepository::count_recent(std::string_view to_hash, int64_t since) {
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kCountRecent);
    st.bind_all(to_hash, since);
    st.step();
    return st.column_int(0);
  });
}

Result<int> SqliteNotificationRepository::erase_image(const ImageId& uuid) {
  Result<int> erased = db_->write([&](Connection& c) {
    const int64_t now = now_millis();
    c.prepare(kTombstone).bind_all(uuid.value, now).run();
    c.prepare(kEraseImage).bind_all(now, uuid.value).run();
    return c.changes();
  });
  // No copy of the address may stay in the files (best effort).
  if (erased) (void)db_->forget_erased();
  return erased;
}

}  // namespace dither
