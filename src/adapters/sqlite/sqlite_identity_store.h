// Who may call the API in SQLite (embedded mode): API keys and browser sessions
// (ports/identity.h, docs/SECURITY.md), in a file of their own (`auth.db` in the data directory).
//
//   Result<std::unique_ptr<IdentityStore>> store = open_sqlite_identity_store("data/auth.db");
//   if (!store) return fail_startup(store.error());
//
// Thread-safe (see Database): reads run concurrently on pooled read-only connections, writes are
// serialised on one writer connection. See README.md for the schema and durability settings.
#pragma once

#include <memory>
#include <string>

#include "adapters/sqlite/sqlite_db.h"
#include "ports/identity.h"

namespace dither {

// Opens (creating it and its parent directory if needed) and migrates the database at `path`.
// Errors as for open_sqlite_image_repository.
Result<std::unique_ptr<IdentityStore>> open_sqlite_identity_store(
    const std::string& path, const SqliteOptions& options = {});

// Returned by open_sqlite_identity_store; the type is public so tests and tools can name it.
class SqliteIdentityStore final : public IdentityStore {
 public:
  explicit SqliteIdentityStore(std::unique_ptr<sqlite::Database> db);

  Status insert_key(const ApiKeyRecord& key) override;
  Result<ApiKeyRecord> get_key(std::string_view id) override;
  Result<std::vector<ApiKeyRecord>> list_keys() override;
  Result<bool> revoke_key(std::string_view id, int64_t at) override;

  Status insert_session(const SessionRecord& session) override;
  Result<SessionRecord> get_session(std::string_view id_hash) override;
  Result<bool> revoke_session(std::string_view id_hash, int64_t at) override;
  Result<int> revoke_sessions(std::string_view owner, int64_t at) override;

  Status ping() override;

 private:
  std::unique_ptr<sqlite::Database> db_;
};

}  // namespace dither
