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

// Returned by open_sqlite_notification_repository; the type is public so tests and tools can
// name it.
class SqliteNotificationRepository final : public NotificationRepository {
 public:
  explicit SqliteNotificationRepository(std::unique_ptr<sqlite::Database> db);

  Result<bool> record(const Notification& n, std::string_view message_id) override;
  Result<std::vector<Notification>> claim_due(int limit, std::string_view worker,
                                              std::chrono::seconds lease) override;
  Result<bool> mark_sent(int64_t id) override;
  Result<bool> retry_later(int64_t id, std::string_view error, int64_t next_attempt_at) override;
  Result<bool> mark_failed(int64_t id, std::string_view error) override;
  Result<Notification> get(int64_t id) override;
  Result<Page<Notification>> list(const PageRequest& page) override;
  Result<int> count_recent(std::string_view to_hash, int64_t since) override;
  Result<int> erase_image(const ImageId& uuid) override;
  Status ping() override;

 private:
  std::unique_ptr<sqlite::Database> db_;
};

}  // namespace dither
