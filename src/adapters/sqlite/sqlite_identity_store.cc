#include "adapters/sqlite/sqlite_identity_store.h"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "adapters/shared/rows.h"
#include "adapters/sqlite/shared_counter.h"
#include "adapters/sqlite/sqlite_store.h"
#include "ports/records.h"

namespace dither {
namespace {

using sqlite::Connection;
using sqlite::SqliteError;
using sqlite::Statement;

// Only digests are kept: an API key's peppered HMAC, a session id's SHA-256. `revoked_at` is 0
// while the key or session is valid. `admin` is 0 or 1.
constexpr std::string_view kIdentityTablesSql = R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  admin INTEGER NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX api_keys_newest ON api_keys (created_at, id);
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_owner ON sessions (owner);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
)sql";

constexpr std::array<sqlite::Migration, 1> kIdentityMigrations = {{
    {1, kIdentityTablesSql},
}};

const std::string kKeyColumns(adapters::kApiKeyColumns);
const std::string kSelectKey = "SELECT " + kKeyColumns + " FROM api_keys WHERE id = ?";
const std::string kSelectKeys =
    "SELECT " + kKeyColumns + " FROM api_keys ORDER BY created_at DESC, id DESC";
constexpr std::string_view kInsertKey =
    "INSERT INTO api_keys (id, owner, name, admin, hash, created_at, revoked_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING";
constexpr std::string_view kRevokeKey =
    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0";
constexpr std::string_view kKeyExists = "SELECT 1 FROM api_keys WHERE id = ?";

const std::string kSelectSession =
    "SELECT " + std::string(adapters::kSessionColumns) + " FROM sessions WHERE id_hash = ?";
constexpr std::string_view kInsertSession =
    "INSERT INTO sessions (id_hash, owner, created_at, expires_at, revoked_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id_hash) DO NOTHING";
constexpr std::string_view kRevokeSession =
    "UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at = 0";
constexpr std::string_view kSessionExists = "SELECT 1 FROM sessions WHERE id_hash = ?";
constexpr std::string_view kForgetExpired = "DELETE FROM sessions WHERE expires_at < ?";
constexpr std::string_view kRevokeAllSessions =
    "UPDATE sessions SET revoked_at = ? WHERE revoked_at = 0";
constexpr std::string_view kRevokeOwnersSessions =
    "UPDATE sessions SET revoked_at = ? WHERE owner = ? AND revoked_at = 0";

constexpr auto read_key = adapters::read_api_key<Statement>;

// revoke_key / revoke_session: `update` (at, key) sets revoked_at unless it is set already (it
// keeps its first time): true when it did; kNotFound with `missing` when `exists` (key) finds no
// row.
bool revoke(Connection& c, std::string_view update, std::string_view exists, std::string_view key,
            int64_t at, std::string_view missing) {
  c.prepare(update).bind_all(at, key).run();
  if (c.changes() > 0) return true;
  if (!c.prepare(exists).bind_all(key).step()) {
    throw SqliteError(ErrorKind::kNotFound, std::string(missing));
  }
  return false;
}

class SqliteIdentityStore final : public sqlite::Store<IdentityStore> {
 public:
  SqliteIdentityStore(std::unique_ptr<sqlite::Database> db,
                      std::unique_ptr<sqlite::SharedCounters> revocations)
      : Store(std::move(db)), revocations_(std::move(revocations)) {}

  Status insert_key(const ApiKeyRecord& key) override;
  Result<ApiKeyRecord> get_key(std::string_view id) override;
  Result<std::vector<ApiKeyRecord>> list_keys() override;
  Result<bool> revoke_key(std::string_view id, int64_t at) override;

  Status insert_session(const SessionRecord& session) override;
  Result<SessionRecord> get_session(std::string_view id_hash) override;
  Result<bool> revoke_session(std::string_view id_hash, int64_t at) override;
  Result<int> revoke_sessions(std::string_view owner, int64_t at) override;

  std::optional<uint64_t> revocation_stamp(Credential kind) override {
    return revocations_->load(counter_of(kind));
  }

 private:
  static size_t counter_of(Credential kind) { return kind == Credential::kKey ? 0 : 1; }

  // `result` of a revocation's write, once `kind`'s stamp has moved: after the write returned,
  // committed or not (a failed one moves it harmlessly). A reader who read the stamp before its
  // look-up and finds it unchanged later looked up before the revocation was committed, or it
  // would have seen it.
  template <class T>
  T after_moving(Credential kind, T result) {
    revocations_->bump(counter_of(kind));
    return result;
  }

  std::unique_ptr<sqlite::SharedCounters> revocations_;
};

}  // namespace

Result<std::unique_ptr<IdentityStore>> open_sqlite_identity_store(const std::string& path,
                                                                  const SqliteOptions& options) {
  static constexpr sqlite::Schema kSchema{"the API keys and sessions", 0x44494155,  // "DIAU"
                                          kIdentityMigrations};
  Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::open(path, kSchema, options);
  if (!db) return db.error();
  // Beside the database (its directory exists now), like SQLite's own -wal and -shm files: every
  // process that opens this store maps the same counter.
  Result<std::unique_ptr<sqlite::SharedCounters>> revocations = sqlite::SharedCounters::open(
      sqlite::is_in_memory(path) ? std::string() : path + "-revocations");
  if (!revocations) return revocations.error();
  return std::unique_ptr<IdentityStore>(
      new SqliteIdentityStore(std::move(*db), std::move(*revocations)));
}

Status SqliteIdentityStore::insert_key(const ApiKeyRecord& key) {
  return db_->write([&](Connection& c) {
    c.prepare(kInsertKey)
        .bind_all(key.id, key.owner, key.name, key.admin ? 1 : 0, key.hash, key.created_at,
                  key.revoked_at)
        .run();
    if (c.changes() == 0) {
      throw SqliteError(ErrorKind::kInvalidArgument, "an API key " + key.id + " exists already");
    }
  });
}

Result<ApiKeyRecord> SqliteIdentityStore::get_key(std::string_view id) {
  return db_->read([&](Connection& c) {
    return sqlite::only_row(c, kSelectKey, read_key, "no API key " + std::string(id), id);
  });
}

Result<std::vector<ApiKeyRecord>> SqliteIdentityStore::list_keys() {
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kSelectKeys);
    return sqlite::rows_of(st, read_key);
  });
}

Result<bool> SqliteIdentityStore::revoke_key(std::string_view id, int64_t at) {
  return after_moving(Credential::kKey, db_->write([&](Connection& c) {
    return revoke(c, kRevokeKey, kKeyExists, id, at, "no API key " + std::string(id));
  }));
}

Status SqliteIdentityStore::insert_session(const SessionRecord& session) {
  return db_->write([&](Connection& c) {
    // The table holds live sessions only (an index on expires_at keeps this cheap).
    c.prepare(kForgetExpired).bind(1, session.created_at).run();
    c.prepare(kInsertSession)
        .bind_all(session.id_hash, session.owner, session.created_at, session.expires_at,
                  session.revoked_at)
        .run();
    if (c.changes() == 0) {
      throw SqliteError(ErrorKind::kInvalidArgument, "the session exists already");
    }
  });
}

Result<SessionRecord> SqliteIdentityStore::get_session(std::string_view id_hash) {
  return db_->read([&](Connection& c) {
    return sqlite::only_row(c, kSelectSession, adapters::read_session<Statement>, "no such session",
                            id_hash);
  });
}

Result<bool> SqliteIdentityStore::revoke_session(std::string_view id_hash, int64_t at) {
  return after_moving(Credential::kSession, db_->write([&](Connection& c) {
    return revoke(c, kRevokeSession, kSessionExists, id_hash, at, "no such session");
  }));
}

Result<int> SqliteIdentityStore::revoke_sessions(std::string_view owner, int64_t at) {
  return after_moving(Credential::kSession, db_->write([&](Connection& c) {
    // Expired sessions are forgotten first: they reach nothing any more, revoked or not.
    c.prepare(kForgetExpired).bind(1, now_millis()).run();
    if (owner.empty()) {
      c.prepare(kRevokeAllSessions).bind(1, at).run();
    } else {
      c.prepare(kRevokeOwnersSessions).bind_all(at, owner).run();
    }
    return c.changes();
  }));
}

}  // namespace dither
