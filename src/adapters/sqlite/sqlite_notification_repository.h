// The notification service's store in SQLite: the e-mails it owes, has sent or gave up on, and
// the ids of the messages it consumed.
//
//   Result<std::unique_ptr<NotificationRepository>> repo =
//       open_sqlite_notification_repository("data/notify.db");
//   if (!repo) return fail_startup(repo.error());
//
// Thread-safe (see Database): reads run concurrently on pooled read-only connections, writes are
// serialised on one writer connection. See README.md for the schema and durability settings.
#pragma once

#include <memory>
#include <string>

#include "adapters/sqlite/sqlite_db.h"
#include "ports/notifications.h"

namespace dither {

// Opens (creating it and its parent directory if needed) and migrates the database at `path`,
// then frees every claim left in it (one process owns an embedded database, so they are its
// previous life's). Errors as for open_sqlite_image_repository.
Result<std::unique_ptr<NotificationRepository>> open_sqlite_notification_repository(
    const std::string& path, const SqliteOptions& options = {});

}  // namespace dither
