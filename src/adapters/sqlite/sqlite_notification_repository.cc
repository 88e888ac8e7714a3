#include "adapters/sqlite/sqlite_notification_repository.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <tuple>
#include <utility>

#include "adapters/shared/paging.h"
#include "adapters/sqlite/outbox_table.h"

namespace dither {
namespace {

using sqlite::Connection;
using sqlite::SqliteError;
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

constexpr std::string_view kColumns =
    "id, uuid, dither_id, kind, mail_from, mail_to, subject, text_part, html_part, "
    "mail_message_id, status, attempts, last_error, next_attempt_at, created_at, updated_at, "
    "sent_at, owner, to_hash";

std::string select_notifications(std::string_view where_and_order) {
  return "SELECT " + std::string(kColumns) + " FROM notifications " + std::string(where_and_order);
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
    "UPDATE notifications SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT id FROM "
    "notifications WHERE status = 'PENDING' AND next_attempt_at <= ? AND claimed_until <= ? "
    "ORDER BY next_attempt_at, id LIMIT ?) RETURNING " +
    std::string(kColumns);
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

Notification read_notification(const Statement& st) {
  Notification n;
  n.id = st.column_int64(0);
  n.uuid.value = st.column_text(1);
  n.dither_id = st.column_int64(2);
  n.kind = st.column_text(3);
  n.mail.from = st.column_text(4);
  n.mail.to = st.column_text(5);
  n.mail.subject = st.column_text(6);
  n.mail.text = st.column_text(7);
  n.mail.html = st.column_text(8);
  n.mail.message_id = st.column_text(9);
  n.status = st.column_text(10);
  n.attempts = st.column_int(11);
  n.last_error = st.column_text(12);
  n.next_attempt_at = st.column_int64(13);
  n.created_at = st.column_int64(14);
  n.updated_at = st.column_int64(15);
  n.sent_at = st.column_int64(16);
  n.owner = st.column_text(17);
  n.to_hash = st.column_text(18);
  return n;
}

std::vector<Notification> read_notifications(Statement& st) {
  std::vector<Notification> rows;
  while (st.step()) rows.push_back(read_notification(st));
  return rows;
}

}  // namespace

Result<std::unique_ptr<NotificationRepository>> open_sqlite_notification_repository(
    const std::string& path, const SqliteOptions& options) {
  static constexpr sqlite::Schema kSchema{"the notification service's store",
                                          0x44494E54,  // DINT
                                          kNotificationMigrations};
  auto db = sqlite::Database::open(path, kSchema, options);
  if (!db) return db.error();
  // An embedded database belongs to one process: claims left in it were made by that process's
  // previous life (a crash), so the mail is due again at once rather than when the leases end.
  Status freed = (*db)->write([](Connection& c) {
    c.prepare(
         "UPDATE notifications SET claimed_by = '', claimed_until = 0 WHERE claimed_until <> 0")
        .run();
  });
  if (!freed) return freed.error();
  return std::unique_ptr<NotificationRepository>(new SqliteNotificationRepository(std::move(*db)));
}

SqliteNotificationRepository::SqliteNotificationRepository(std::unique_ptr<sqlite::Database> db)
    : db_(std::move(db)) {}

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
    const int64_t now = now_millis();
    const int64_t until = now + std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::max(lease, std::chrono::seconds{0}))
                                    .count();
    auto st = c.prepare(kClaim);
    st.bind_all(worker, until, now, now, limit);
    std::vector<Notification> rows = read_notifications(st);
    std::sort(rows.begin(), rows.end(), [](const Notification& a, const Notification& b) {
      return std::tie(a.next_attempt_at, a.id) < std::tie(b.next_attempt_at, b.id);
    });  // RETURNING has no order
    return rows;
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
    auto st = c.prepare(kSelectById);
    st.bind(1, id);
    if (!st.step()) {
      throw SqliteError(make_error(ErrorKind::kNotFound, "no notification " + std::to_string(id)));
    }
    return read_notification(st);
  });
}

Result<Page<Notification>> SqliteNotificationRepository::list(const PageRequest& page) {
  return db_->read([&](Connection& c) {
    const adapters::PageQuery q(page);
    auto st = c.prepare(q.filtered() ? kSelectOwnersPage : kSelectPage);
    if (q.filtered()) {
      st.bind_all(q.owner, q.before, q.fetch);
    } else {
      st.bind_all(q.before, q.fetch);
    }
    return q.finish(read_notifications(st));
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

Status SqliteNotificationRepository::ping() {
  return db_->read([](Connection& c) { c.prepare("SELECT 1").run(); });
}

}  // namespace dither
