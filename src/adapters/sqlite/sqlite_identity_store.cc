#include "adapters/sqlite/sqlite_identity_store.h"

#include <array>
#include <string>
#include <utility>

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

constexpr std::string_view kKeyColumns = "id, owner, name, admin, hash, created_at, revoked_at";
const std::string kSelectKey = "SELECT " + std::string(kKeyColumns) + " FROM api_keys WHERE id = ?";
const std::string kSelectKeys =
    "SELECT " + std::string(kKeyColumns) + " FROM api_keys ORDER BY created_at DESC, id DESC";
constexpr std::string_view kInsertKey =
    "INSERT INTO api_keys (id, owner, name, admin, hash, created_at, revoked_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING";
constexpr std::string_view kRevokeKey =
    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0";
constexpr std::string_view kKeyExists = "SELECT 1 FROM api_keys WHERE id = ?";

constexpr std::string_view kSelectSession =
    "SELECT id_hash, owner, created_at, expires_at, revoked_at FROM sessions WHERE id_hash = ?";
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

ApiKeyRecord read_key(const Statement& st) {
  ApiKeyRecord k;
  k.id = st.column_text(0);
  k.owner = st.column_text(1);
  k.name = st.column_text(2);
  k.admin = st.column_int64(3) != 0;
  k.hash = st.column_text(4);
  k.created_at = st.column_int64(5);
  k.revoked_at = st.column_int64(6);
  return k;
}

bool exists(Connection& c, std::string_view sql, std::string_view key) {
  auto st = c.prepare(sql);
  st.bind(1, key);
  return st.step();
}

}  // namespace

Result<std::unique_ptr<IdentityStore>> open_sqlite_identity_store(const std::string& path,
                                                                  const SqliteOptions& options) {
  static constexpr sqlite::Schema kSchema{"the API keys and sessions", 0x44494155,  // "DIAU"
                                          kIdentityMigrations};
  auto db = sqlite::Database::open(path, kSchema, options);
  if (!db) return db.error();
  return std::unique_ptr<IdentityStore>(new SqliteIdentityStore(std::move(*db)));
}

SqliteIdentityStore::SqliteIdentityStore(std::unique_ptr<sqlite::Database> db)
    : db_(std::move(db)) {}

Status SqliteIdentityStore::insert_key(const ApiKeyRecord& key) {
  return db_->write([&](Connection& c) {
    c.prepare(kInsertKey)
        .bind_all(key.id, key.owner, key.name, key.admin ? 1 : 0, key.hash, key.created_at,
                  key.revoked_at)
        .run();
    if (c.changes() == 0) {
      throw SqliteError(
          make_error(ErrorKind::kInvalidArgument, "an API key " + key.id + " exists already"));
    }
  });
}

Result<ApiKeyRecord> SqliteIdentityStore::get_key(std::string_view id) {
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kSelectKey);
    st.bind(1, id);
    if (!st.step()) {
      throw SqliteError(make_error(ErrorKind::kNotFound, "no API key " + std::string(id)));
    }
    return read_key(st);
  });
}

Result<std::vector<ApiKeyRecord>> SqliteIdentityStore::list_keys() {
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kSelectKeys);
    std::vector<ApiKeyRecord> keys;
    while (st.step()) keys.push_back(read_key(st));
    return keys;
  });
}

Result<bool> SqliteIdentityStore::revoke_key(std::string_view id, int64_t at) {
  return db_->write([&](Connection& c) {
    c.prepare(kRevokeKey).bind_all(at, id).run();
    if (c.changes() > 0) return true;
    if (!exists(c, kKeyExists, id)) {
      throw SqliteError(make_error(ErrorKind::kNotFound, "no API key " + std::string(id)));
    }
    return false;  // revoked already: it keeps its first time
  });
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
      throw SqliteError(make_error(ErrorKind::kInvalidArgument, "the session exists already"));
    }
  });
}

Result<SessionRecord> SqliteIdentityStore::get_session(std::string_view id_hash) {
  return db_->read([&](Connection& c) {
    auto st = c.prepare(kSelectSession);
    st.bind(1, id_hash);
    if (!st.step()) throw SqliteError(make_error(ErrorKind::kNotFound, "no such session"));
    SessionRecord s;
    s.id_hash = st.column_text(0);
    s.owner = st.column_text(1);
    s.created_at = st.column_int64(2);
    s.expires_at = st.column_int64(3);
    s.revoked_at = st.column_int64(4);
    return s;
  });
}

Result<bool> SqliteIdentityStore::revoke_session(std::string_view id_hash, int64_t at) {
  return db_->write([&](Connection& c) {
    c.prepare(kRevokeSession).bind_all(at, id_hash).run();
    if (c.changes() > 0) return true;
    if (!exists(c, kSessionExists, id_hash)) {
      throw SqliteError(make_error(ErrorKind::kNotFound, "no such session"));
    }
    return false;
  });
}

Result<int> SqliteIdentityStore::revoke_sessions(std::string_view owner, int64_t at) {
  return db_->write([&](Connection& c) {
    // Expired sessions are forgotten first: they reach nothing any more, revoked or not.
    c.prepare(kForgetExpired).bind(1, now_millis()).run();
    if (owner.empty()) {
      c.prepare(kRevokeAllSessions).bind(1, at).run();
    } else {
      c.prepare(kRevokeOwnersSessions).bind_all(at, owner).run();
    }
    return c.changes();
  });
}

Status SqliteIdentityStore::ping() {
  return db_->read([](Connection& c) { c.prepare("SELECT 1").run(); });
}

}  // namespace dither
