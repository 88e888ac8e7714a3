// The dithering service's metadata in PostgreSQL: the originals it learned of, its dithers (the
// work queue, claimed with FOR UPDATE SKIP LOCKED) and the service's outbox.
#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "adapters/postgres/pg_store.h"
#include "adapters/shared/claims.h"
#include "adapters/shared/rows.h"

namespace dither {
namespace {

using postgres::PgError;
using postgres::Row;
using postgres::Tx;

// The SQL below spells statuses as literals (a partial index needs them).
static_assert(kStatusPending == "PENDING" && kStatusFinished == "FINISHED" &&
              kStatusFailed == "FAILED");

// `claimed_by` / `claimed_until` (Unix ms by the server's clock, so that workers on several hosts
// agree; '' and 0 = nobody) lease a PENDING dither to one worker.
constexpr std::string_view kDitherTablesSql = R"sql(
CREATE TABLE originals (
  uuid TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  filename TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE dithers (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- list order and cursor; never reused
  uuid TEXT NOT NULL,                                  -- the original (may outlive it)
  channels INTEGER NOT NULL,
  algorithm TEXT NOT NULL,
  palette TEXT NOT NULL,
  format TEXT NOT NULL,
  options_json TEXT NOT NULL,
  status TEXT NOT NULL,
  url_dither TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  error TEXT NOT NULL,
  request_id TEXT NOT NULL UNIQUE,
  traceparent TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  claimed_by TEXT NOT NULL DEFAULT '',
  claimed_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dithers_by_original ON dithers (uuid, id);
CREATE INDEX dithers_pending ON dithers (id) WHERE status = 'PENDING';
)sql";

// Owners (docs/SECURITY.md): an original's and its dithers' owner (the uploader), and who asked
// for each dither; what existed before belongs to `system`. Lists of one owner walk the
// (owner, id) index.
constexpr std::string_view kDitherOwnersSql = R"sql(
ALTER TABLE originals ADD COLUMN owner TEXT NOT NULL DEFAULT 'system';
ALTER TABLE dithers ADD COLUMN owner TEXT NOT NULL DEFAULT 'system';
ALTER TABLE dithers ADD COLUMN requested_by TEXT NOT NULL DEFAULT 'system';
CREATE INDEX dithers_by_owner ON dithers (owner, id);
)sql";

// Attempts (DitherRepository::claim_dithers): claims of each dither so far, so that one that
// can never finish is given up after DITHER_MAX_ATTEMPTS.
constexpr std::string_view kDitherAttemptsSql =
    "ALTER TABLE dithers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;";

// Canonical options (DitherRepository::legacy_options): 0 = options_json as an older version
// stored them (as requested), 1 = canonical. Rows of before are 0; every new row is written with
// 1. The partial index finds the few rows left to rewrite without reading the others.
constexpr std::string_view kDitherOptionsFormSql = R"sql(
ALTER TABLE dithers ADD COLUMN options_form INTEGER NOT NULL DEFAULT 0;
CREATE INDEX dithers_legacy_options ON dithers (id) WHERE options_form = 0;
)sql";

// Presets (DitherRepository::put_preset): named option sets per owner. COLLATE "C": owners and
// names compare, and sort, as bytes (as in SQLite), whatever the database's collation.
constexpr std::string_view kPresetsSql = R"sql(
CREATE TABLE presets (
  owner TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  description TEXT NOT NULL,
  options_json TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (owner, name)
);
)sql";

// Animations (DitherService): the original's type and frames, so that a dither that names no format
// of an animated original is made as the original's animated format. Originals learned before
// are still images of unknown type.
constexpr std::string_view kOriginalFramesSql = R"sql(
ALTER TABLE originals ADD COLUMN content_type TEXT NOT NULL DEFAULT '';
ALTER TABLE originals ADD COLUMN frames INTEGER NOT NULL DEFAULT 1;
)sql";

constexpr std::array<postgres::Migration, 8> kDitherMigrations = {{
    {1, postgres::kMessagingTablesSql},
    {2, kDitherTablesSql},
    {3, kDitherOwnersSql},
    {4, postgres::kOutboxParkingSql},
    {5, kDitherAttemptsSql},
    {6, kDitherOptionsFormSql},
    {7, kPresetsSql},
    {8, kOriginalFramesSql},
}};

constexpr postgres::Schema kDitherSchema{"the dithering service's metadata", "dither-dither",
                                         kDitherMigrations};

const std::string kDitherColumns(adapters::kDitherColumns);
const std::string kPresetColumns(adapters::kPresetColumns);
const std::string kNowMillis(postgres::kNowMillis);

constexpr auto read_dither = adapters::read_dither<Row>;
constexpr auto read_preset = adapters::read_preset<Row>;

class PostgresDitherRepository final : public postgres::OutboxStore<DitherRepository> {
 public:
  using OutboxStore::OutboxStore;

  Result<std::optional<DitherRecord>> record_original(
      const OriginalRecord& original, const std::optional<DitherRecord>& auto_dither,
      std::string_view message_id) override {
    if (message_id.empty()) {
      return make_error(ErrorKind::kInvalidArgument, "record_original needs the message's id");
    }
    return db_->write([&](Tx& tx) -> std::optional<DitherRecord> {
      if (!messaging_.first_delivery(tx, message_id)) return std::nullopt;
      const int64_t now = now_millis();
      tx.exec(upsert_original_, original.uuid.value, original.url, original.filename,
              original.blob_key.value, original.email, now, now, original.owner,
              original.content_type, original.frames);
      if (!auto_dither) return std::nullopt;
      DitherRecord dither = *auto_dither;
      dither.request_id = std::string(message_id);
      return insert_dither(tx, dither);
    });
  }

  Result<OriginalRecord> get_original(const ImageId& uuid) override {
    return db_->read([&](Tx& tx) {
      return postgres::only_row(tx.exec(select_original_, uuid.value), adapters::read_original<Row>,
                                "no original " + uuid.value);
    });
  }

  Result<DitherRecord> create_dither(const DitherRecord& dither) override {
    return db_->write([&](Tx& tx) { return insert_dither(tx, dither); });
  }

  Result<DitherRecord> get_dither(DitherId id) override {
    return db_->read([&](Tx& tx) {
      return postgres::only_row(tx.exec(select_by_id_, id.value), read_dither,
                                "no dither " + std::to_string(id.value));
    });
  }

  Result<Page<DitherRecord>> list_dithers(const PageRequest& page) override {
    return db_->read([&](Tx& tx) {
      return postgres::page_of(tx, page, select_page_, select_owners_page_, read_dither);
    });
  }

  Result<std::vector<DitherRecord>> dithers_of(const ImageId& uuid) override {
    return db_->read(
        [&](Tx& tx) { return read_dithers(tx.exec(select_of_original_, uuid.value)); });
  }

  Result<int64_t> count_pending(std::string_view owner) override {
    return db_->read([&](Tx& tx) {
      const pqxx::result r =
          owner.empty() ? tx.exec(count_pending_) : tx.exec(count_owners_pending_, owner);
      return r.at(0)[0].as<int64_t>();
    });
  }

  Result<int64_t> oldest_pending_at() override {
    return db_->read([&](Tx& tx) { return tx.exec(oldest_pending_).at(0)[0].as<int64_t>(); });
  }

  Result<std::vector<DitherRecord>> claim_dithers(int limit, std::string_view worker,
                                                  std::chrono::seconds lease) override {
    if (worker.empty()) return make_error(ErrorKind::kInvalidArgument, "a claim needs a worker");
    if (limit <= 0) return std::vector<DitherRecord>{};
    return db_->write([&](Tx& tx) {
      return adapters::in_queue_order(
          read_dithers(tx.exec(claim_, worker, adapters::lease_millis(lease), limit)));
    });
  }

  Result<bool> renew_lease(DitherId id, std::string_view worker,
                           std::chrono::seconds lease) override {
    if (worker.empty()) return make_error(ErrorKind::kInvalidArgument, "a lease needs a worker");
    const int64_t lease_ms = adapters::lease_millis(lease);
    return db_->write(
        [&](Tx& tx) { return tx.exec(renew_, lease_ms, id.value, worker).affected_rows() == 1; });
  }

  Status release_dither(DitherId id, std::string_view worker) override {
    return db_->write([&](Tx& tx) { tx.exec(release_, id.value, worker); });
  }

  Result<bool> finish_dither(DitherId id, const ObjectKey& blob_key, std::string_view url_dither,
                             const Message& event) override {
    return db_->write([&](Tx& tx) {
      if (tx.exec(finish_, blob_key.value, url_dither, now_millis(), id.value).affected_rows() ==
          0) {
        return false;
      }
      messaging_.enqueue(tx, event);
      return true;
    });
  }

  Result<bool> fail_dither(DitherId id, std::string_view error, const Message& event) override {
    return db_->write([&](Tx& tx) {
      if (tx.exec(fail_, error, now_millis(), id.value).affected_rows() == 0) return false;
      messaging_.enqueue(tx, event);
      return true;
    });
  }

  Result<DitherRecord> delete_dither(const ImageId& uuid, DitherId id,
                                     const Message& deleted) override {
    return db_->write([&](Tx& tx) {
      // The row lock the DELETE takes makes a concurrent second delete find nothing.
      const pqxx::result removed = tx.exec(delete_one_, id.value, uuid.value);
      if (removed.empty()) {
        throw PgError(ErrorKind::kNotFound,
                      "no dither " + std::to_string(id.value) + " of " + uuid.value);
      }
      DitherRecord record = read_dither(Row(removed[0]));
      messaging_.enqueue(tx, deleted);  // last: see MessagingTables
      return record;
    });
  }

  Result<std::vector<DitherRecord>> delete_dithers_of(const ImageId& uuid, const Message& deleted,
                                                      bool forget_original,
                                                      std::string_view message_id) override {
    return db_->write([&](Tx& tx) -> std::vector<DitherRecord> {
      if (!messaging_.first_delivery(tx, message_id)) return {};
      std::vector<DitherRecord> removed = read_dithers(tx.exec(delete_of_original_, uuid.value));
      std::sort(removed.begin(), removed.end(), [](const DitherRecord& a, const DitherRecord& b) {
        return a.id.value > b.id.value;  // newest first
      });
      if (forget_original) tx.exec(forget_original_, uuid.value);
      if (!removed.empty()) messaging_.enqueue(tx, deleted);  // last: see MessagingTables
      return removed;
    });
  }

  Result<std::vector<DitherRecord>> legacy_options(int limit) override {
    if (limit <= 0) return std::vector<DitherRecord>{};
    return db_->read([&](Tx& tx) { return read_dithers(tx.exec(select_legacy_, limit)); });
  }

  Result<bool> set_canonical_options(DitherId id, std::string_view options_json) override {
    return db_->write([&](Tx& tx) {
      return tx.exec(set_canonical_, options_json, id.value).affected_rows() == 1;
    });
  }

  Result<std::vector<PresetRecord>> presets_of(std::string_view owner) override {
    return db_->read([&](Tx& tx) {
      return postgres::rows_of(
          owner.empty() ? tx.exec(select_presets_) : tx.exec(select_owners_presets_, owner),
          read_preset);
    });
  }

  Result<PresetRecord> get_preset(std::string_view owner, std::string_view name) override {
    return db_->read([&](Tx& tx) {
      return postgres::only_row(tx.exec(select_preset_, owner, name), read_preset,
                                "no preset " + std::string(name));
    });
  }

  Result<PresetRecord> put_preset(const PresetRecord& preset, bool* replaced = nullptr) override {
    if (preset.owner.empty() || preset.name.empty()) {
      return make_error(ErrorKind::kInvalidArgument, "a preset needs an owner and a name");
    }
    Result<std::pair<PresetRecord, bool>> out =
        db_->write([&](Tx& tx) -> std::pair<PresetRecord, bool> {
          const int64_t now = now_millis();
          // The insert waits for a concurrent writer of the same (owner, name) and then does
          // nothing, so the update that follows sees that row (READ COMMITTED), unless it was
          // deleted meanwhile: then the insert is tried again.
          for (int attempt = 0; attempt < 3; ++attempt) {
            const pqxx::result inserted = tx.exec(insert_preset_, preset.owner, preset.name,
                                                  preset.description, preset.options_json, now);
            if (!inserted.empty()) return {read_preset(Row(inserted[0])), false};
            const pqxx::result updated =
                tx.exec(replace_preset_, preset.description, preset.options_json, now, preset.owner,
                        preset.name);
            if (!updated.empty()) return {read_preset(Row(updated[0])), true};
          }
          throw PgError(ErrorKind::kUnavailable, "the preset changed too often to be stored");
        });
    if (!out) return out.error();
    if (replaced != nullptr) *replaced = out->second;
    return std::move(out->first);
  }

  Result<bool> delete_preset(std::string_view owner, std::string_view name) override {
    return db_->write(
        [&](Tx& tx) { return tx.exec(delete_preset_, owner, name).affected_rows() == 1; });
  }

 private:
  static std::vector<DitherRecord> read_dithers(const pqxx::result& result) {
    return postgres::rows_of(result, read_dither);
  }
  std::string select_dithers(std::string_view where_and_order) const {
    return sql("SELECT " + kDitherColumns + " FROM {schema}.dithers " +
               std::string(where_and_order));
  }
  std::string select_presets(std::string_view where_and_order) const {
    return sql("SELECT " + kPresetColumns + " FROM {schema}.presets " +
               std::string(where_and_order));
  }

  // Inserts a PENDING dither, or returns the existing one with the same request_id.
  DitherRecord insert_dither(Tx& tx, const DitherRecord& dither) const {
    if (dither.request_id.empty()) {
      throw PgError(ErrorKind::kInvalidArgument, "a dither needs a request_id");
    }
    DitherRecord r = dither;
    r.status = kStatusPending;
    r.created_at = r.updated_at = now_millis();
    const pqxx::result inserted =
        tx.exec(insert_, r.uuid.value, r.channels, r.algorithm, r.palette, r.format, r.options_json,
                r.status, r.url_dither, r.blob_key.value, r.error, r.request_id, r.created_at,
                r.updated_at, r.traceparent, r.owner, r.requested_by);
    if (inserted.empty()) {
      // Already there; in READ COMMITTED this statement sees the row that conflicted.
      return read_dither(Row(tx.exec(select_by_request_id_, r.request_id).at(0)));
    }
    r.id.value = inserted[0][0].as<int64_t>();
    return r;
  }

  const std::string select_by_id_ = select_dithers("WHERE id = $1");
  const std::string select_by_request_id_ = select_dithers("WHERE request_id = $1");
  const std::string select_page_ = select_dithers("WHERE id < $1 ORDER BY id DESC LIMIT $2");
  const std::string select_owners_page_ =
      select_dithers("WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3");
  const std::string select_of_original_ = select_dithers("WHERE uuid = $1 ORDER BY id DESC");
  const std::string insert_ =
      sql("INSERT INTO {schema}.dithers (uuid, channels, algorithm, palette, format, options_json, "
          "status, url_dither, blob_key, error, request_id, created_at, updated_at, traceparent, "
          "owner, requested_by, options_form) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
          "$11, $12, $13, $14, $15, $16, 1) ON CONFLICT (request_id) DO NOTHING RETURNING id");
  const std::string upsert_original_ =
      sql("INSERT INTO {schema}.originals (uuid, url, filename, blob_key, email, created_at, "
          "updated_at, owner, content_type, frames) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
          "$10) ON CONFLICT (uuid) DO UPDATE SET url = excluded.url, filename = excluded.filename, "
          "blob_key = excluded.blob_key, email = excluded.email, updated_at = excluded.updated_at, "
          "owner = excluded.owner, content_type = excluded.content_type, "
          "frames = excluded.frames");
  const std::string select_original_ = sql("SELECT " + std::string(adapters::kOriginalColumns) +
                                           " FROM {schema}.originals WHERE uuid = $1");
  // Leases the oldest free PENDING dithers. SKIP LOCKED: rows another transaction is
  // claiming (or finishing) right now are left to it instead of waited for.
  const std::string claim_ =
      sql("UPDATE {schema}.dithers SET claimed_by = $1, claimed_until = " + kNowMillis +
          " + $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM {schema}.dithers WHERE "
          "status = 'PENDING' AND claimed_until <= " +
          kNowMillis + " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING " + kDitherColumns);
  const std::string renew_ = sql("UPDATE {schema}.dithers SET claimed_until = " + kNowMillis +
                                 " + $1 WHERE id = $2 AND claimed_by = $3 AND status = 'PENDING'");
  const std::string release_ =
      sql("UPDATE {schema}.dithers SET claimed_by = '', claimed_until = 0 "
          "WHERE id = $1 AND claimed_by = $2");
  const std::string finish_ =
      sql("UPDATE {schema}.dithers SET status = 'FINISHED', blob_key = $1, url_dither = $2, "
          "error = '', updated_at = $3, claimed_by = '', claimed_until = 0 "
          "WHERE id = $4 AND status = 'PENDING'");
  const std::string fail_ =
      sql("UPDATE {schema}.dithers SET status = 'FAILED', error = $1, updated_at = $2, "
          "claimed_by = '', claimed_until = 0 WHERE id = $3 AND status = 'PENDING'");
  const std::string delete_one_ =
      sql("DELETE FROM {schema}.dithers WHERE id = $1 AND uuid = $2 RETURNING " + kDitherColumns);
  const std::string delete_of_original_ =
      sql("DELETE FROM {schema}.dithers WHERE uuid = $1 RETURNING " + kDitherColumns);
  const std::string forget_original_ = sql("DELETE FROM {schema}.originals WHERE uuid = $1");
  const std::string select_legacy_ = select_dithers("WHERE options_form = 0 ORDER BY id LIMIT $1");
  const std::string set_canonical_ =
      sql("UPDATE {schema}.dithers SET options_json = $1, options_form = 1 WHERE id = $2");
  const std::string select_presets_ = select_presets("ORDER BY owner, name");
  const std::string select_owners_presets_ = select_presets("WHERE owner = $1 ORDER BY name");
  const std::string select_preset_ = select_presets("WHERE owner = $1 AND name = $2");
  const std::string insert_preset_ =
      sql("INSERT INTO {schema}.presets (" + kPresetColumns +
          ") VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (owner, name) DO NOTHING RETURNING " +
          kPresetColumns);
  const std::string replace_preset_ =
      sql("UPDATE {schema}.presets SET description = $1, options_json = $2, updated_at = $3 "
          "WHERE owner = $4 AND name = $5 RETURNING " +
          kPresetColumns);
  const std::string delete_preset_ =
      sql("DELETE FROM {schema}.presets WHERE owner = $1 AND name = $2");
  // Quotas and the queue's bound: the partial index of PENDING rows.
  const std::string count_pending_ =
      sql("SELECT count(*)::bigint FROM {schema}.dithers WHERE status = 'PENDING'");
  // The partial index of PENDING rows holds them in id order, which is request order.
  const std::string oldest_pending_ =
      sql("SELECT coalesce((SELECT created_at FROM {schema}.dithers WHERE status = 'PENDING' "
          "ORDER BY id LIMIT 1), 0)");
  const std::string count_owners_pending_ =
      sql("SELECT count(*)::bigint FROM {schema}.dithers WHERE status = 'PENDING' AND owner = $1");
};

}  // namespace

Result<std::unique_ptr<DitherRepository>> open_postgres_dither_repository(
    const PostgresOptions& options) {
  return postgres::open_store<DitherRepository, PostgresDitherRepository>(options, kDitherSchema,
                                                                          "dither");
}

}  // namespace dither
