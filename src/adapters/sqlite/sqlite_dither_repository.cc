#include "adapters/sqlite/sqlite_dither_repository.h"

#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "adapters/shared/claims.h"
#include "adapters/shared/rows.h"
#include "adapters/sqlite/outbox_table.h"
#include "adapters/sqlite/sqlite_store.h"

namespace dither {
namespace {

using sqlite::Connection;
using sqlite::SqliteError;
using sqlite::Statement;

// The SQL below spells statuses as literals (a partial index needs them).
static_assert(kStatusPending == "PENDING" && kStatusFinished == "FINISHED" &&
              kStatusFailed == "FAILED");

constexpr std::string_view kDitherTablesSql = R"sql(
CREATE TABLE originals (
  uuid TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  filename TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE dithers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,  -- list order and cursor; never reused
  uuid TEXT NOT NULL,                    -- the original (no foreign key: dithers may outlive it)
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
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX dithers_by_original ON dithers (uuid, id);
CREATE INDEX dithers_pending ON dithers (id) WHERE status = 'PENDING';
)sql";

// The W3C trace context a dither was requested under, so that its DITHER_* message continues
// the request's (or the IMAGE_UPLOADED message's) trace.
constexpr std::string_view kDitherTraceSql =
    "ALTER TABLE dithers ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';";

// Work claiming: who holds a PENDING dither, and until when (Unix ms; 0 = nobody). The partial
// index of migration 2 still finds the queue; the lease is checked on its few rows.
constexpr std::string_view kDitherClaimsSql = R"sql(
ALTER TABLE dithers ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE dithers ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
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

// Attempts (DitherRepository::claim_dithers): claims of each dither so far, kept across
// restarts, so that one that can never finish is given up after DITHER_MAX_ATTEMPTS.
constexpr std::string_view kDitherAttemptsSql =
    "ALTER TABLE dithers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;";

// Canonical options (DitherRepository::legacy_options): 0 = options_json as an older version
// stored them (as requested), 1 = canonical. Rows of before are 0; every new row is written with
// 1. The partial index finds the few rows left to rewrite without reading the others.
constexpr std::string_view kDitherOptionsFormSql = R"sql(
ALTER TABLE dithers ADD COLUMN options_form INTEGER NOT NULL DEFAULT 0;
CREATE INDEX dithers_legacy_options ON dithers (id) WHERE options_form = 0;
)sql";

// Presets (DitherRepository::put_preset): named option sets per owner. BINARY collation (the
// default): owners and names compare, and sort, as bytes.
constexpr std::string_view kPresetsSql = R"sql(
CREATE TABLE presets (
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  options_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (owner, name)
) STRICT, WITHOUT ROWID;
)sql";

// Animations (DitherService): the original's type and frames, so that a dither that names no format
// of an animated original is made as the original's animated format. Originals learned before
// are still images of unknown type.
constexpr std::string_view kOriginalFramesSql = R"sql(
ALTER TABLE originals ADD COLUMN content_type TEXT NOT NULL DEFAULT '';
ALTER TABLE originals ADD COLUMN frames INTEGER NOT NULL DEFAULT 1;
)sql";

constexpr std::array<sqlite::Migration, 10> kDitherMigrations = {{
    {1, sqlite::kMessagingTablesSql},
    {2, kDitherTablesSql},
    {3, kDitherTraceSql},
    {4, kDitherClaimsSql},
    {5, kDitherOwnersSql},
    {6, sqlite::kOutboxParkingSql},
    {7, kDitherAttemptsSql},
    {8, kDitherOptionsFormSql},
    {9, kPresetsSql},
    {10, kOriginalFramesSql},
}};

std::string select_dithers(std::string_view where_and_order) {
  return "SELECT " + std::string(adapters::kDitherColumns) + " FROM dithers " +
         std::string(where_and_order);
}
const std::string kSelectById = select_dithers("WHERE id = ?");
const std::string kSelectByRequestId = select_dithers("WHERE request_id = ?");
const std::string kSelectPage = select_dithers("WHERE id < ? ORDER BY id DESC LIMIT ?");
const std::string kSelectOwnersPage =
    select_dithers("WHERE owner = ? AND id < ? ORDER BY id DESC LIMIT ?");
const std::string kSelectOfOriginal = select_dithers("WHERE uuid = ? ORDER BY id DESC");
const std::string kSelectLegacy = select_dithers("WHERE options_form = 0 ORDER BY id LIMIT ?");
// Leases the oldest free PENDING dithers (free: nobody holds them, or the lease ended).
const std::string kClaim =
    "UPDATE dithers SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 WHERE id IN "
    "(SELECT id FROM dithers "
    "WHERE status = 'PENDING' AND claimed_until <= ? ORDER BY id LIMIT ?) RETURNING " +
    std::string(adapters::kDitherColumns);
const std::string kSelectOriginal =
    "SELECT " + std::string(adapters::kOriginalColumns) + " FROM originals WHERE uuid = ?";

constexpr auto read_dither = adapters::read_dither<Statement>;
constexpr auto read_preset = adapters::read_preset<Statement>;

std::vector<DitherRecord> read_dithers(Statement& st) { return sqlite::rows_of(st, read_dither); }

std::optional<DitherRecord> find_dither(Connection& c, const std::string& sql, const auto& key) {
  auto st = c.prepare(sql);
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return read_dither(st);
}

// Inserts a PENDING dither, or returns the existing one with the same request_id.
DitherRecord insert_dither(Connection& c, const DitherRecord& dither) {
  if (dither.request_id.empty()) {
    throw SqliteError(ErrorKind::kInvalidArgument, "a dither needs a request_id");
  }
  DitherRecord r = dither;
  r.status = kStatusPending;
  r.created_at = r.updated_at = now_millis();
  c.prepare(
       "INSERT INTO dithers (uuid, channels, algorithm, palette, format, options_json, status, "
       "url_dither, blob_key, error, request_id, created_at, updated_at, traceparent, owner, "
       "requested_by, options_form) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
       "ON CONFLICT (request_id) DO NOTHING")
      .bind_all(r.uuid.value, r.channels, r.algorithm, r.palette, r.format, r.options_json,
                r.status, r.url_dither, r.blob_key.value, r.error, r.request_id, r.created_at,
                r.updated_at, r.traceparent, r.owner, r.requested_by)
      .run();
  if (c.changes() == 0) return find_dither(c, kSelectByRequestId, r.request_id).value();
  r.id.value = c.last_insert_rowid();
  return r;
}

const std::string kPresetColumns(adapters::kPresetColumns);
const std::string kSelectPresets =
    "SELECT " + kPresetColumns + " FROM presets ORDER BY owner, name";
const std::string kSelectOwnersPresets =
    "SELECT " + kPresetColumns + " FROM presets WHERE owner = ? ORDER BY name";
const std::string kSelectPreset =
    "SELECT " + kPresetColumns + " FROM presets WHERE owner = ? AND name = ?";
const std::string kReplacePreset =
    "UPDATE presets SET description = ?, options_json = ?, updated_at = ? "
    "WHERE owner = ? AND name = ? RETURNING " +
    kPresetColumns;
const std::string kInsertPreset = "INSERT INTO presets (" + kPresetColumns +
                                  ") VALUES (?, ?, ?, ?, ?, ?) RETURNING " + kPresetColumns;

class SqliteDitherRepository final : public sqlite::OutboxStore<DitherRepository> {
 public:
  using OutboxStore::OutboxStore;

  Result<std::optional<DitherRecord>> record_original(
      const OriginalRecord& original, const std::optional<DitherRecord>& auto_dither,
      std::string_view message_id) override;
  Result<OriginalRecord> get_original(const ImageId& uuid) override;

  Result<DitherRecord> create_dither(const DitherRecord& dither) override;
  Result<DitherRecord> get_dither(DitherId id) override;
  Result<Page<DitherRecord>> list_dithers(const PageRequest& page) override;
  Result<std::vector<DitherRecord>> dithers_of(const ImageId& uuid) override;
  Result<int64_t> count_pending(std::string_view owner) override;
  Result<int64_t> oldest_pending_at() override;
  Result<std::vector<DitherRecord>> claim_dithers(int limit, std::string_view worker,
                                                  std::chrono::seconds lease) override;
  Result<bool> renew_lease(DitherId id, std::string_view worker,
                           std::chrono::seconds lease) override;
  Status release_dither(DitherId id, std::string_view worker) override;

  Result<bool> finish_dither(DitherId id, const ObjectKey& blob_key, std::string_view url_dither,
                             const Message& event) override;
  Result<bool> fail_dither(DitherId id, std::string_view error, const Message& event) override;
  Result<DitherRecord> delete_dither(const ImageId& uuid, DitherId id,
                                     const Message& deleted) override;
  Result<std::vector<DitherRecord>> delete_dithers_of(const ImageId& uuid, const Message& deleted,
                                                      bool forget_original,
                                                      std::string_view message_id) override;

  Result<std::vector<DitherRecord>> legacy_options(int limit) override;
  Result<bool> set_canonical_options(DitherId id, std::string_view options_json) override;

  Result<std::vector<PresetRecord>> presets_of(std::string_view owner) override;
  Result<PresetRecord> get_preset(std::string_view owner, std::string_view name) override;
  Result<PresetRecord> put_preset(const PresetRecord& preset, bool* replaced = nullptr) override;
  Result<bool> delete_preset(std::string_view owner, std::string_view name) override;
};

}  // namespace

Result<std::unique_ptr<DitherRepository>> open_sqlite_dither_repository(
    const std::string& path, const SqliteOptions& options) {
  static constexpr sqlite::Schema kSchema{"the dithering service's metadata", 0x44494454,  // DIDT
                                          kDitherMigrations};
  return sqlite::open_store<DitherRepository, SqliteDitherRepository>(path, kSchema, options,
                                                                      "dithers");
}

Result<std::optional<DitherRecord>> SqliteDitherRepository::record_original(
    const OriginalRecord& original, const std::optional<DitherRecord>& auto_dither,
    std::string_view message_id) {
  if (message_id.empty()) {
    return make_error(ErrorKind::kInvalidArgument, "record_original needs the message's id");
  }
  return db_->write([&](Connection& c) -> std::optional<DitherRecord> {
    if (!sqlite::first_delivery(c, message_id)) return std::nullopt;
    const int64_t now = now_millis();
    c.prepare(
         "INSERT INTO originals (uuid, url, filename, blob_key, email, created_at, updated_at, "
         "owner, content_type, frames) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
         "ON CONFLICT (uuid) DO UPDATE SET "
         "url = excluded.url, filename = excluded.filename, blob_key = excluded.blob_key, "
         "email = excluded.email, updated_at = excluded.updated_at, owner = excluded.owner, "
         "content_type = excluded.content_type, frames = excluded.frames")
        .bind_all(original.uuid.value, original.url, original.filename, original.blob_key.value,
                  original.email, now, now, original.owner, original.content_type, original.frames)
        .run();
    if (!auto_dither) return std::nullopt;
    DitherRecord dither = *auto_dither;
    dither.request_id = std::string(message_id);
    return insert_dither(c, dither);
  });
}

Result<OriginalRecord> SqliteDitherRepository::get_original(const ImageId& uuid) {
  return db_->read([&](Connection& c) {
    return sqlite::only_row(c, kSelectOriginal, adapters::read_original<Statement>,
                            "no original " + uuid.value, uuid.value);
  });
}

Result<DitherRecord> SqliteDitherRepository::create_dither(const DitherRecord& dither) {
  return db_->write([&](Connection& c) { return insert_dither(c, dither); });
}

Result<DitherRecord> SqliteDitherRepository::get_dither(DitherId id) {
  return db_->read([&](Connection& c) {
    auto found = find_dither(c, kSelectById, id.value);
    if (!found) {
      throw SqliteError(ErrorKind::kNotFound, "no dither " + std::to_string(id.value));
    }
    return std::move(*found);
  });
}

Result<Page<DitherRecord>> SqliteDitherRepository::list_dithers(const PageRequest& page) {
  return db_->read([&](Connection& c) {
    return sqlite::page_of(c, page, kSelectPage, kSelectOwnersPage, read_dither);
  });
}

Result<std::vector<DitherRecord>> SqliteDitherRepository::dithers_of(const ImageId& uuid) {
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kSelectOfOriginal);
    st.bind(1, uuid.value);
    return read_dithers(st);
  });
}

Result<int64_t> SqliteDitherRepository::count_pending(std::string_view owner) {
  return db_->read([&](Connection& c) -> int64_t {
    // Both walk the partial index of PENDING rows, which the queue's bound keeps short.
    if (owner.empty()) {
      auto st = c.prepare("SELECT count(*) FROM dithers WHERE status = 'PENDING'");
      return st.step() ? st.column_int64(0) : 0;
    }
    auto st = c.prepare("SELECT count(*) FROM dithers WHERE status = 'PENDING' AND owner = ?");
    st.bind(1, owner);
    return st.step() ? st.column_int64(0) : 0;
  });
}

Result<int64_t> SqliteDitherRepository::oldest_pending_at() {
  return db_->read([&](Connection& c) -> int64_t {
    // The partial index of PENDING rows holds them in id order, which is request order.
    auto st =
        c.prepare("SELECT created_at FROM dithers WHERE status = 'PENDING' ORDER BY id LIMIT 1");
    return st.step() ? st.column_int64(0) : 0;
  });
}

Result<std::vector<DitherRecord>> SqliteDitherRepository::claim_dithers(
    int limit, std::string_view worker, std::chrono::seconds lease) {
  if (worker.empty()) return make_error(ErrorKind::kInvalidArgument, "a claim needs a worker");
  if (limit <= 0) return std::vector<DitherRecord>{};
  return db_->write(
      [&](Connection& c) { return sqlite::claim(c, kClaim, worker, lease, limit, read_dither); });
}

Result<bool> SqliteDitherRepository::renew_lease(DitherId id, std::string_view worker,
                                                 std::chrono::seconds lease) {
  if (worker.empty()) return make_error(ErrorKind::kInvalidArgument, "a lease needs a worker");
  return db_->write([&](Connection& c) {
    c.prepare(
         "UPDATE dithers SET claimed_until = ? WHERE id = ? AND claimed_by = ? AND "
         "status = 'PENDING'")
        .bind_all(now_millis() + adapters::lease_millis(lease), id.value, worker)
        .run();
    return c.changes() == 1;
  });
}

Status SqliteDitherRepository::release_dither(DitherId id, std::string_view worker) {
  return db_->write([&](Connection& c) {
    c.prepare(
         "UPDATE dithers SET claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?")
        .bind_all(id.value, worker)
        .run();
  });
}

Result<bool> SqliteDitherRepository::finish_dither(DitherId id, const ObjectKey& blob_key,
                                                   std::string_view url_dither,
                                                   const Message& event) {
  return db_->write([&](Connection& c) {
    c.prepare(
         "UPDATE dithers SET status = 'FINISHED', blob_key = ?, url_dither = ?, error = '', "
         "updated_at = ?, claimed_by = '', claimed_until = 0 WHERE id = ? AND status = 'PENDING'")
        .bind_all(blob_key.value, url_dither, now_millis(), id.value)
        .run();
    if (c.changes() == 0) return false;
    sqlite::enqueue_message(c, event);
    return true;
  });
}

Result<bool> SqliteDitherRepository::fail_dither(DitherId id, std::string_view error,
                                                 const Message& event) {
  return db_->write([&](Connection& c) {
    c.prepare(
         "UPDATE dithers SET status = 'FAILED', error = ?, updated_at = ?, claimed_by = '', "
         "claimed_until = 0 WHERE id = ? AND status = 'PENDING'")
        .bind_all(error, now_millis(), id.value)
        .run();
    if (c.changes() == 0) return false;
    sqlite::enqueue_message(c, event);
    return true;
  });
}

Result<DitherRecord> SqliteDitherRepository::delete_dither(const ImageId& uuid, DitherId id,
                                                           const Message& deleted) {
  return db_->write([&](Connection& c) {
    std::optional<DitherRecord> found = find_dither(c, kSelectById, id.value);
    if (!found || found->uuid != uuid) {
      throw SqliteError(ErrorKind::kNotFound,
                        "no dither " + std::to_string(id.value) + " of " + uuid.value);
    }
    c.prepare("DELETE FROM dithers WHERE id = ?").bind(1, id.value).run();
    sqlite::enqueue_message(c, deleted);
    return std::move(*found);
  });
}

Result<std::vector<DitherRecord>> SqliteDitherRepository::delete_dithers_of(
    const ImageId& uuid, const Message& deleted, bool forget_original,
    std::string_view message_id) {
  Result<std::vector<DitherRecord>> out =
      db_->write([&](Connection& c) -> std::vector<DitherRecord> {
        if (!sqlite::first_delivery(c, message_id)) return {};
        auto st = c.prepare(kSelectOfOriginal);
        st.bind(1, uuid.value);
        std::vector<DitherRecord> removed = read_dithers(st);
        if (!removed.empty()) {
          c.prepare("DELETE FROM dithers WHERE uuid = ?").bind(1, uuid.value).run();
          sqlite::enqueue_message(c, deleted);
        }
        if (forget_original) {
          c.prepare("DELETE FROM originals WHERE uuid = ?").bind(1, uuid.value).run();
        }
        return removed;
      });
  // The original's row held the address: no copy may stay in the files (best effort).
  if (out && forget_original) (void)db_->forget_erased();
  return out;
}

Result<std::vector<DitherRecord>> SqliteDitherRepository::legacy_options(int limit) {
  if (limit <= 0) return std::vector<DitherRecord>{};
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kSelectLegacy);
    st.bind(1, limit);
    return read_dithers(st);
  });
}

Result<bool> SqliteDitherRepository::set_canonical_options(DitherId id,
                                                           std::string_view options_json) {
  return db_->write([&](Connection& c) {
    c.prepare("UPDATE dithers SET options_json = ?, options_form = 1 WHERE id = ?")
        .bind_all(options_json, id.value)
        .run();
    return c.changes() == 1;
  });
}

Result<std::vector<PresetRecord>> SqliteDitherRepository::presets_of(std::string_view owner) {
  return db_->read([&](Connection& c) {
    // Both walk the primary key: (owner, name) in byte order.
    auto st = c.prepare(owner.empty() ? kSelectPresets : kSelectOwnersPresets);
    if (!owner.empty()) st.bind(1, owner);
    return sqlite::rows_of(st, read_preset);
  });
}

Result<PresetRecord> SqliteDitherRepository::get_preset(std::string_view owner,
                                                        std::string_view name) {
  return db_->read([&](Connection& c) {
    return sqlite::only_row(c, kSelectPreset, read_preset, "no preset " + std::string(name), owner,
                            name);
  });
}

Result<PresetRecord> SqliteDitherRepository::put_preset(const PresetRecord& preset,
                                                        bool* replaced) {
  if (preset.owner.empty() || preset.name.empty()) {
    return make_error(ErrorKind::kInvalidArgument, "a preset needs an owner and a name");
  }
  Result<std::pair<PresetRecord, bool>> out =
      db_->write([&](Connection& c) -> std::pair<PresetRecord, bool> {
        // Writes are serialised: the row the update does not find, the insert creates.
        const int64_t now = now_millis();
        {
          auto st = c.prepare(kReplacePreset);
          st.bind_all(preset.description, preset.options_json, now, preset.owner, preset.name);
          std::vector<PresetRecord> updated = sqlite::rows_of(st, read_preset);
          if (!updated.empty()) return {std::move(updated[0]), true};
        }
        auto st = c.prepare(kInsertPreset);
        st.bind_all(preset.owner, preset.name, preset.description, preset.options_json, now, now);
        std::vector<PresetRecord> inserted = sqlite::rows_of(st, read_preset);
        if (inserted.empty()) {
          throw SqliteError(ErrorKind::kInternal, "an inserted preset is missing");
        }
        return {std::move(inserted[0]), false};
      });
  if (!out) return out.error();
  if (replaced != nullptr) *replaced = out->second;
  return std::move(out->first);
}

Result<bool> SqliteDitherRepository::delete_preset(std::string_view owner, std::string_view name) {
  return db_->write([&](Connection& c) {
    c.prepare("DELETE FROM presets WHERE owner = ? AND name = ?").bind_all(owner, name).run();
    return c.changes() == 1;
  });
}

}  // namespace dither
