// Who may call the API in PostgreSQL (distributed mode): API keys and browser sessions
// (ports/identity.h, docs/SECURITY.md), in schema `auth` by default. The same statements as the
// SQLite adapter.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "adapters/postgres/pg_store.h"
#include "adapters/shared/rows.h"
#include "ports/records.h"

namespace dither {
namespace {

using postgres::PgError;
using postgres::Row;
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

const std::string kKeyColumns(adapters::kApiKeyColumns);

constexpr auto read_key = adapters::read_api_key<Row>;

class PostgresIdentityStore final : public postgres::Store<IdentityStore> {
 public:
  using Store::Store;

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
      return postgres::only_row(tx.exec(select_key_, id), read_key,
                                "no API key " + std::string(id));
    });
  }

  Result<std::vector<ApiKeyRecord>> list_keys() override {
    return db_->read([&](Tx& tx) { return postgres::rows_of(tx.exec(select_keys_), read_key); });
  }

  Result<bool> revoke_key(std::string_view id, int64_t at) override {
    return db_->write([&](Tx& tx) {
      return revoke(tx, revoke_key_, key_exists_, id, at, "no API key " + std::string(id));
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
      return postgres::only_row(tx.exec(select_session_, id_hash), adapters::read_session<Row>,
                                "no such session");
    });
  }

  Result<bool> revoke_session(std::string_view id_hash, int64_t at) override {
    return db_->write([&](Tx& tx) {
      return revoke(tx, revoke_session_, session_exists_, id_hash, at, "no such session");
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

  // Gateways on other machines revoke too, and nothing here tells this one at no cost:
  // AUTH_CACHE_SECONDS bounds how long a checked key is believed.
  std::optional<uint64_t> revocation_stamp(Credential) override { return std::nullopt; }

 private:
  // revoke_key / revoke_session: `update` (at, key) sets revoked_at unless it is set already (it
  // keeps its first time): true when it did; kNotFound with `missing` when `exists` (key) finds
  // no row.
  static bool revoke(Tx& tx, const std::string& update, const std::string& exists,
                     std::string_view key, int64_t at, std::string_view missing) {
    if (tx.exec(update, at, key).affected_rows() > 0) return true;
    if (tx.exec(exists, key).empty()) throw PgError(ErrorKind::kNotFound, std::string(missing));
    return false;
  }

  const std::string insert_key_ =
      sql("INSERT INTO {schema}.api_keys (id, owner, name, admin, hash, created_at, revoked_at) "
          "VALUES ($1, $2, $3, $4::integer <> 0, $5, $6, $7) ON CONFLICT (id) DO NOTHING");
  const std::string select_key_ =
      sql("SELECT " + kKeyColumns + " FROM {schema}.api_keys WHERE id = $1");
  const std::string select_keys_ =
      sql("SELECT " + kKeyColumns + " FROM {schema}.api_keys ORDER BY created_at DESC, id DESC");
  const std::string revoke_key_ =
      sql("UPDATE {schema}.api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0");
  const std::string key_exists_ = sql("SELECT 1 FROM {schema}.api_keys WHERE id = $1");
  const std::string insert_session_ =
      sql("INSERT INTO {schema}.sessions (id_hash, owner, created_at, expires_at, revoked_at) "
          "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id_hash) DO NOTHING");
  const std::string select_session_ = sql("SELECT " + std::string(adapters::kSessionColumns) +
                                          " FROM {schema}.sessions WHERE id_hash = $1");
  const std::string revoke_session_ =
      sql("UPDATE {schema}.sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at = 0");
  const std::string session_exists_ = sql("SELECT 1 FROM {schema}.sessions WHERE id_hash = $1");
  const std::string forget_expired_ = sql("DELETE FROM {schema}.sessions WHERE expires_at < $1");
  const std::string revoke_all_sessions_ =
      sql("UPDATE {schema}.sessions SET revoked_at = $1 WHERE revoked_at = 0");
  const std::string revoke_owners_sessions_ =
      sql("UPDATE {schema}.sessions SET revoked_at = $1 WHERE owner = $2 AND revoked_at = 0");
};

}  // namespace

Result<std::unique_ptr<IdentityStore>> open_postgres_identity_store(
    const PostgresOptions& options) {
  return postgres::open_store<IdentityStore, PostgresIdentityStore>(options, kIdentitySchema,
                                                                    "auth");
}

}  // namespace dither
