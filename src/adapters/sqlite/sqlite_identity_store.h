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

}  // namespace dither
