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

// Returned by open_sqlite_image_repository; the type is public so tests and tools can name it.
class SqliteImageRepository final : public ImageRepository {
 public:
  explicit SqliteImageRepository(std::unique_ptr<sqlite::Database> db);

  Result<ImageRecord> insert_image(const ImageRecord& image, const Message& uploaded) override;
  Result<ImageRecord> get_image(const ImageId& uuid) override;
  Result<Page<ImageRecord>> list_images(const PageRequest& page) override;
  Result<ImageRecord> delete_image(const ImageId& uuid, const Message& deleted) override;

  Result<bool> mark_finished(const ImageId& uuid, const DitherSummary& dither,
                             std::string_view message_id) override;
  Result<bool> mark_failed(const ImageId& uuid, const DitherSummary& dither,
                           std::string_view message_id) override;
  Result<bool> mark_dithers_deleted(const ImageId& uuid, std::string_view message_id) override;
  Result<bool> mark_dither_deleted(const ImageId& uuid, int64_t dither_id,
                                   std::string_view message_id) override;

  Result<Usage> usage(std::string_view owner) override;

  Result<std::vector<OutboxEntry>> pending_messages(int limit) override;
  Status remove_message(int64_t seq) override;
  Status record_publish_failure(int64_t seq, std::string_view error, bool park) override;
  Result<std::vector<OutboxEntry>> parked_messages(int limit) override;
  Status republish(int64_t seq) override;
  Status ping() override;

 private:
  std::unique_ptr<sqlite::Database> db_;
};

}  // namespace dither
