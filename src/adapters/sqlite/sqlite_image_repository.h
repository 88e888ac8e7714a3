// The upload service's metadata in SQLite: images, the dither summaries learned from the dither
// topic, and the service's outbox.
//
//   Result<std::unique_ptr<ImageRepository>> repo = open_sqlite_image_repository("data/upload.db");
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
// Errors: kUnavailable when the file cannot be opened or is locked, kUnsupported when the file
// belongs to another service or has a newer schema version than this program knows, kInternal
// otherwise. ":memory:" gives a private in-memory store (for tests).
Result<std::unique_ptr<ImageRepository>> open_sqlite_image_repository(
    const std::string& path, const SqliteOptions& options = {});

}  // namespace dither
