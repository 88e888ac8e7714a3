// Who may call the API in PostgreSQL (distributed mode): API keys and browser sessions
// (ports/identity.h, docs/SECURITY.md), in schema `auth` by default. The same statements as the
// SQLite adapter.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "adapters/postgres/pg_db.h"
#include "adapters/postgres/postgres.h"
#include "ports/records.h"

namespace dither {
namespace {

using postgres::Database;
using postgres::PgError;
using postgres::text_of;
using postgres::Tx;

// Only digests are kept: an API key's peppered HMAC, a session id's SHA-256. `revoked_at` is 0
// while the key or session is valid.
constexpr std::string_view kIdentityTablesSql = R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  admin BOOLEAN NOT NULL,
  hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL
);
CREATE INDEX api_keys_newest ON api_keys (created_at, id);
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_owner ON sessions (owner);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
)sql";

constexpr std::array<postgres::Migration, 1> kIdentityMigrations = {{
    {1, kIdentityTablesSql},
}};

constexpr postgres::Schema kIdentitySchema{"the API keys and sessions", "dither-auth",
                                           kIdentityMigrations};

constexpr std::string_view kKeyColumns = "id, owner, name, admin, hash, created_at, revoked_at";

ApiKeyRecord read_key(const pqxx::row& row) {
  ApiKeyRecord k;
  k.id = text_of(row[0]);
  k.owner = text_of(row[1]);
  k.name = text_of(row[2]);
  k.admin = row[3].as<bool>();
  k.hash = text_of(row[4]);
  k.created_at = row[5].as<int64_t>();
  k.revoked_at = row[6].as<int64_t>();
  return k;
}

class PostgresIdentityStore final : public IdentityStore {
 public:
  explicit PostgresIdentityStore(std::unique_ptr<Database> db)
      : db_(std::move(db)),
        insert_key_(sql("INSERT INTO {schema}.api_keys (id, owner, name, admin, hash, created_at, "
                        "revoked_at) VALUES ($1, $2, $3, $4::integer <> 0, $5, $6, $7) "
                        "ON CONFLICT (id) DO NOTHING")),
        select_key_(
            sql("SELECT " + std::string(kKeyColumns) + " FROM {schema}.api_keys WHERE id = $1")),
        select_keys_(sql("SELECT " + std::string(kKeyColumns) +
                         " FROM {schema}.api_keys ORDER BY created_at DESC, id DESC")),
        revoke_key_(sql("UPDATE {schema}.api_keys SET revoked_at = $1 WHERE id = $2 AND "
                        "revoked_at = 0")),
        key_exists_(sql("SELECT 1 FROM {schema}.api_keys WHERE id = $1")),
        insert_session_(sql("INSERT INTO {schema}.sessions (id_hash, owner, created_at, "
                            "expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5) "
                            "ON CONFLICT (id_hash) DO NOTHING")),
        select_session_(sql("SELECT id_hash, owner, created_at, expires_at, revoked_at "
                            "FROM {schema}.sessions WHERE id_hash = $1")),
        revoke_session_(sql("UPDATE {schema}.sessions SET revoked_at = $1 WHERE id_hash = $2 "
                            "AND revoked_at = 0")),
        session_exists_(sql("SELECT 1 FROM {schema}.sessions WHERE id_hash = $1")),
        forget_expired_(sql("DELETE FROM {schema}.sessions WHERE expires_at < $1")),
        revoke_all_sessions_(
            sql("UPDATE {schema}.sessions SET revoked_at = $1 WHERE revoked_at = 0")),
        revoke_owners_sessions_(sql("UPDATE {schema}.sessions SET revoked_at = $1 WHERE "
                                    "owner = $2 AND revoked_at = 0")) {}

  Status insert_key(const ApiKeyRecord& key) override {
    return db_->write([&](Tx& tx) {
      if (tx.exec(insert_key_, key.id, key.owner, key.name, key.admin ? 1 : 0, key.hash,
                  key.created_at, key.revoked_at)
              .affected_rows() == 0) {
        throw PgError(ErrorKind::kInvalidArgument, "an API key " + key.id + " exists already");
      }
    });
  }

  Result<ApiKeyRecord> get_key(std::string_view id) override {
    return db_->read([&](Tx& tx) {
      const pqxx::result found = tx.exec(select_key_, id);
      if (found.empty()) throw PgError(ErrorKind::kNotFound, "no API key " + std::string(id));
      return read_key(found[0]);
    });
  }

  Result<std::vector<ApiKeyRecord>> list_keys() override {
    return db_->read([&](Tx& tx) {
      std::vector<ApiKeyRecord> keys;
      for (const auto& row : tx.exec(select_keys_)) keys.push_back(read_key(row));
      return keys;
    });
  }

  Result<bool> revoke_key(std::string_view id, int64_t at) override {
    return db_->write([&](Tx& tx) {
      if (tx.exec(revoke_key_, at, id).affected_rows() > 0) return true;
      if (tx.exec(key_exists_, id).empty()) {
        throw PgError(ErrorKind::kNotFound, "no API key " + std::string(id));
      }
      return false;  // revoked already: it keeps its first time
    });
  }

  Status insert_session(const SessionRecord& session) override {
    return db_->write([&](Tx& tx) {
      // The table holds live sessions only (an index on expires_at keeps this cheap).
      tx.exec(forget_expired_, session.created_at);
      if (tx.exec(insert_session_, session.id_hash, session.owner, session.created_at,
                  session.expires_at, session.revoked_at)
              .affected_rows() == 0) {
        throw PgError(ErrorKind::kInvalidArgument, "the session exists already");
      }
    });
  }

  Result<SessionRecord> get_session(std::string_view id_hash) override {
    return db_->read([&](Tx& tx) {
      const pqxx::result found = tx.exec(select_session_, id_hash);
      if (found.empty()) throw PgError(ErrorKind::kNotFound, "no such session");
      SessionRecord s;
      s.id_hash = text_of(found[0][0]);
      s.owner = text_of(found[0][1]);
      s.created_at = found[0][2].as<int64_t>();
      s.expires_at = found[0][3].as<int64_t>();
      s.revoked_at = found[0][4].as<int64_t>();
      return s;
    });
  }

  Result<bool> revoke_session(std::string_view id_hash, int64_t at) override {
    return db_->write([&](Tx& tx) {
      if (tx.exec(revoke_session_, at, id_hash).affected_rows() > 0) return true;
      if (tx.exec(session_exists_, id_hash).empty()) {
        throw PgError(ErrorKind::kNotFound, "no such session");
      }
      return false;
    });
  }

  Result<int> revoke_sessions(std::string_view owner, int64_t at) override {
    return db_->write([&](Tx& tx) {
      // Expired sessions are forgotten first: they reach nothing any more, revoked or not.
      tx.exec(forget_expired_, now_millis());
      const pqxx::result revoked = owner.empty() ? tx.exec(revoke_all_sessions_, at)
                                                 : tx.exec(revoke_owners_sessions_, at, owner);
      return static_cast<int>(revoked.affected_rows());
    });
  }

  Status ping() override {
    return db_->read([&](Tx& tx) { tx.exec(ping_); });
  }

 private:
  std::string sql(std::string_view text) const { return db_->qualify(text); }

  std::unique_ptr<Database> db_;
  const std::string insert_key_;
  const std::string select_key_;
  const std::string select_keys_;
  const std::string revoke_key_;
  const std::string key_exists_;
  const std::string insert_session_;
  const std::string select_session_;
  const std::string revoke_session_;
  const std::string session_exists_;
  const std::string forget_expired_;
  const std::string revoke_all_sessions_;
  const std::string revoke_owners_sessions_;
  const std::string ping_ = "SELECT 1";
};

}  // namespace

Result<std::unique_ptr<IdentityStore>> open_postgres_identity_store(
    const PostgresOptions& options) {
  auto db = Database::open(options, kIdentitySchema, "auth");
  if (!db) return db.error();
  return std::unique_ptr<IdentityStore>(new PostgresIdentityStore(std::move(*db)));
}

}  // namespace dither
