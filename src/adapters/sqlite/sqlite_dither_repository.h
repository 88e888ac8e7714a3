// The dithering service's metadata in SQLite: the originals it learned of, its dithers, and the
// service's outbox.
//
//   Result<std::unique_ptr<DitherRepository>> repo =
//       open_sqlite_dither_repository("data/dither.db");
//   if (!repo) return fail_startup(repo.error());
//
// Thread-safe (see Database): reads run concurrently on pooled read-only connections, writes are
// serialised on one writer connection. See README.md for the schema and durability settings.
#pragma once

#include <memory>
#include <string>

#include "adapters/sqlite/sqlite_db.h"
#include "ports/metadata.h"

namespace dither {

// Opens (creating it and its parent directory if needed) and migrates the database at `path`.
// Errors as for open_sqlite_image_repository.
Result<std::unique_ptr<DitherRepository>> open_sqlite_dither_repository(
    const std::string& path, const SqliteOptions& options = {});

}  // namespace dither
