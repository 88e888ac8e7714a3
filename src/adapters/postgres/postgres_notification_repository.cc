// The notification service's store in PostgreSQL: the e-mails it owes, has sent or gave up on
// (claimed by senders with FOR UPDATE SKIP LOCKED), and the ids of the messages it consumed.
#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "adapters/postgres/pg_store.h"
#include "adapters/shared/claims.h"
#include "adapters/shared/rows.h"

namespace dither {
namespace {

using postgres::Row;
using postgres::Tx;

// The SQL below spells statuses as literals (a partial index needs them).
static_assert(kNotificationPending == "PENDING" && kNotificationSent == "SENT" &&
              kNotificationFailed == "FAILED" && kNotificationSuppressed == "SUPPRESSED");

// processed_messages as in the other schemas (MessagingTables::first_delivery uses it); no
// outbox: the notification service publishes nothing. `claimed_by` / `claimed_until` (Unix ms by
// the server's clock, so that senders on several hosts agree; '' and 0 = nobody) lease a PENDING
// row to one sender. `next_attempt_at` is set by the services' clocks and compared with the
// claiming sender's.
constexpr std::string_view kNotificationTablesSql = R"sql(
CREATE TABLE processed_messages (
  message_id TEXT PRIMARY KEY,
  processed_at BIGINT NOT NULL
);
CREATE TABLE notifications (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- list order and cursor; never reused
  uuid TEXT NOT NULL,
  dither_id BIGINT NOT NULL,                           -- 0: the message named no dither
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
  next_attempt_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  sent_at BIGINT NOT NULL,
  claimed_by TEXT NOT NULL DEFAULT '',
  claimed_until BIGINT NOT NULL DEFAULT 0
);
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
  erased_at BIGINT NOT NULL
);
)sql";

constexpr std::array<postgres::Migration, 3> kNotificationMigrations = {{
    {1, kNotificationTablesSql},
    {2, kNotificationOwnersSql},
    {3, kErasedImagesSql},
}};

constexpr postgres::Schema kNotificationSchema{"the notification service's store", "dither-notify",
                                               kNotificationMigrations};

const std::string kColumns(adapters::kNotificationColumns);
const std::string kNowMillis(postgres::kNowMillis);

constexpr auto read_notification = adapters::read_notification<Row>;

class PostgresNotificationRepository final : public postgres::Store<NotificationRepository> {
 public:
  using Store::Store;

  Result<bool> record(const Notification& n, std::string_view message_id) override {
    if (message_id.empty()) {
      return make_error(ErrorKind::kInvalidArgument, "record needs the message's id");
    }
    const bool suppressed = n.status == kNotificationSuppressed;
    const std::string_view status = suppressed ? kNotificationSuppressed : kNotificationPending;
    const std::string_view last_error = suppressed ? std::string_view(n.last_error) : "";
    return db_->write([&](Tx& tx) {
      // In the insert's transaction, under the image's lock: an erasure is either before it
      // (nothing is recorded) or after it (and blanks the row).
      lock_image(tx, n.uuid);
      if (!tx.exec(is_erased_, n.uuid.value).empty()) return false;
      if (!messaging_.first_delivery(tx, message_id)) return false;
      return tx.exec(insert_, n.uuid.value, n.dither_id, n.kind, n.mail.from, n.mail.to,
                     n.mail.subject, n.mail.text, n.mail.html, n.mail.message_id, status,
                     last_error, now_millis(), n.owner, n.to_hash)
                 .affected_rows() == 1;
    });
  }

  Result<std::vector<Notification>> claim_due(int limit, std::string_view worker,
                                              std::chrono::seconds lease) override {
    if (worker.empty()) return make_error(ErrorKind::kInvalidArgument, "a claim needs a worker");
    if (limit <= 0) return std::vector<Notification>{};
    return db_->write([&](Tx& tx) {
      return adapters::in_queue_order(postgres::rows_of(
          tx.exec(claim_, worker, adapters::lease_millis(lease), now_millis(), limit),
          read_notification));
    });
  }

  Result<bool> mark_sent(int64_t id) override {
    return db_->write(
        [&](Tx& tx) { return tx.exec(mark_sent_, now_millis(), id).affected_rows() > 0; });
  }

  Result<bool> retry_later(int64_t id, std::string_view error, int64_t next_attempt_at) override {
    return db_->write([&](Tx& tx) {
      return tx.exec(retry_later_, error, next_attempt_at, now_millis(), id).affected_rows() > 0;
    });
  }

  Result<bool> mark_failed(int64_t id, std::string_view error) override {
    return db_->write(
        [&](Tx& tx) { return tx.exec(mark_failed_, error, now_millis(), id).affected_rows() > 0; });
  }

  Result<Notification> get(int64_t id) override {
    return db_->read([&](Tx& tx) {
      return postgres::only_row(tx.exec(select_by_id_, id), read_notification,
                                "no notification " + std::to_string(id));
    });
  }

  Result<Page<Notification>> list(const PageRequest& page) override {
    return db_->read([&](Tx& tx) {
      return postgres::page_of(tx, page, select_page_, select_owners_page_, read_notification);
    });
  }

  Result<int> count_recent(std::string_view to_hash, int64_t since) override {
    return db_->read(
        [&](Tx& tx) { return tx.exec(count_recent_, to_hash, since)[0][0].as<int>(); });
  }

  Result<int> erase_image(const ImageId& uuid) override {
    return db_->write([&](Tx& tx) {
      lock_image(tx, uuid);
      const int64_t now = now_millis();
      tx.exec(tombstone_, uuid.value, now);
      return static_cast<int>(tx.exec(erase_image_, now, uuid.value).affected_rows());
    });
  }

 private:
  void lock_image(Tx& tx, const ImageId& uuid) const {
    tx.exec(image_lock_, image_lock_key_prefix_ + uuid.value);
  }
  std::string select_notifications(std::string_view where_and_order) const {
    return sql("SELECT " + kColumns + " FROM {schema}.notifications " +
               std::string(where_and_order));
  }

  const postgres::MessagingTables messaging_{*db_};
  const std::string select_by_id_ = select_notifications("WHERE id = $1");
  const std::string select_page_ = select_notifications("WHERE id < $1 ORDER BY id DESC LIMIT $2");
  const std::string select_owners_page_ =
      select_notifications("WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3");
  // A second notification for the same (dither_id, kind) is not an error but nothing; a
  // concurrent one waits for the first to commit, then does nothing.
  const std::string insert_ =
      sql("INSERT INTO {schema}.notifications (uuid, dither_id, kind, mail_from, mail_to, subject, "
          "text_part, html_part, mail_message_id, status, attempts, last_error, next_attempt_at, "
          "created_at, updated_at, sent_at, owner, to_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, "
          "$8, $9, $10, 0, $11, $12, $12, $12, 0, $13, $14) ON CONFLICT DO NOTHING");
  // record() and erase_image() of one image take turns: under READ COMMITTED neither
  // sees the other's uncommitted rows, so without the lock a record could check for the
  // tombstone before an erasure commits and insert its row after the erasure's UPDATE
  // ran (and both commit: an address after the erasure). Transaction-scoped; another
  // image colliding on the hash only waits a moment.
  const std::string image_lock_key_prefix_ = "dither.notify.image:" + db_->schema_name() + ":";
  const std::string image_lock_ = "SELECT pg_advisory_xact_lock(hashtext($1))";
  const std::string is_erased_ = sql("SELECT 1 FROM {schema}.erased_images WHERE uuid = $1");
  // The first erasure's time is kept.
  const std::string tombstone_ =
      sql("INSERT INTO {schema}.erased_images (uuid, erased_at) VALUES ($1, $2) "
          "ON CONFLICT (uuid) DO NOTHING");
  // The per-address cap's count: SUPPRESSED rows were never going to be sent.
  const std::string count_recent_ =
      sql("SELECT count(*) FROM {schema}.notifications WHERE to_hash = $1 AND created_at >= $2 "
          "AND status <> 'SUPPRESSED'");
  // The image was deleted: its notifications lose address and content (only rows that
  // still had some, or were still owed, change); the ones still owed are given up.
  const std::string erase_image_ = sql(
      "UPDATE {schema}.notifications SET mail_to = '', subject = '', text_part = '', "
      "html_part = '', "
      "last_error = CASE status WHEN 'PENDING' THEN 'the image was deleted' ELSE last_error END, "
      "status = CASE status WHEN 'PENDING' THEN 'FAILED' ELSE status END, "
      "claimed_by = '', claimed_until = 0, updated_at = $1 WHERE uuid = $2 AND "
      "(status = 'PENDING' OR mail_to <> '' OR subject <> '' OR text_part <> '' OR "
      "html_part <> '')");
  // Leases the due PENDING rows nobody holds (or whose lease ended), oldest due first.
  // SKIP LOCKED: rows another transaction is claiming (or marking) right now are left to
  // it instead of waited for.
  const std::string claim_ =
      sql("UPDATE {schema}.notifications SET claimed_by = $1, claimed_until = " + kNowMillis +
          " + $2 WHERE id IN (SELECT id FROM {schema}.notifications WHERE status = 'PENDING' AND "
          "next_attempt_at <= $3 AND claimed_until <= " +
          kNowMillis + " ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING " +
          kColumns);
  // The outcomes of an attempt: each counts it and clears the claim, on PENDING rows only.
  const std::string mark_sent_ = sql(
      "UPDATE {schema}.notifications SET status = 'SENT', attempts = attempts + 1, sent_at = $1, "
      "updated_at = $1, claimed_by = '', claimed_until = 0 WHERE id = $2 AND status = 'PENDING'");
  const std::string retry_later_ =
      sql("UPDATE {schema}.notifications SET attempts = attempts + 1, last_error = $1, "
          "next_attempt_at = $2, updated_at = $3, claimed_by = '', claimed_until = 0 "
          "WHERE id = $4 AND status = 'PENDING'");
  const std::string mark_failed_ =
      sql("UPDATE {schema}.notifications SET status = 'FAILED', attempts = attempts + 1, "
          "last_error = $1, updated_at = $2, claimed_by = '', claimed_until = 0 "
          "WHERE id = $3 AND status = 'PENDING'");
};

}  // namespace

Result<std::unique_ptr<NotificationRepository>> open_postgres_notification_repository(
    const PostgresOptions& options) {
  return postgres::open_store<NotificationRepository, PostgresNotificationRepository>(
      options, kNotificationSchema, "notify");
}

}  // namespace dither
