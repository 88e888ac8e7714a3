#include "adapters/sqlite/sqlite_image_repository.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "adapters/shared/rows.h"
#include "adapters/sqlite/outbox_table.h"
#include "adapters/sqlite/sqlite_store.h"

namespace dither {
namespace {

using sqlite::Connection;
using sqlite::Statement;

// The SQL below spells statuses as literals.
static_assert(kStatusFinished == "FINISHED" && kStatusFailed == "FAILED" &&
              kStatusDitherDeleted == "DITHER_DELETED");

constexpr std::string_view kImageTablesSql = R"sql(
CREATE TABLE images (
  id INTEGER PRIMARY KEY AUTOINCREMENT,  -- list order and cursor; never reused
  uuid TEXT NOT NULL UNIQUE,
  filename TEXT NOT NULL,
  status TEXT NOT NULL,
  url TEXT NOT NULL,
  url_dither TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  email TEXT NOT NULL,
  error TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE image_dithers (
  image_uuid TEXT NOT NULL REFERENCES images (uuid) ON DELETE CASCADE,
  dither_id INTEGER NOT NULL,
  status TEXT NOT NULL,
  url_dither TEXT NOT NULL,
  channels INTEGER NOT NULL,
  algorithm TEXT NOT NULL,
  palette TEXT NOT NULL,
  format TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (image_uuid, dither_id)
) STRICT, WITHOUT ROWID;
)sql";

// Owners (docs/SECURITY.md): who uploaded each image; what existed before belongs to `system`.
// Lists of one owner walk the (owner, id) index.
constexpr std::string_view kImageOwnersSql = R"sql(
ALTER TABLE images ADD COLUMN owner TEXT NOT NULL DEFAULT 'system';
CREATE INDEX images_by_owner ON images (owner, id);
)sql";

// Animations: the frames of an animated GIF or WebP; everything stored before is a still image.
constexpr std::string_view kImageFramesSql =
    "ALTER TABLE images ADD COLUMN frames INTEGER NOT NULL DEFAULT 1;";

constexpr std::array<sqlite::Migration, 5> kImageMigrations = {{
    {1, sqlite::kMessagingTablesSql},
    {2, kImageTablesSql},
    {3, kImageOwnersSql},
    {4, sqlite::kOutboxParkingSql},
    {5, kImageFramesSql},
}};

const std::string kImageColumns(adapters::kImageColumns);
const std::string kSelectImageByUuid = "SELECT " + kImageColumns + " FROM images WHERE uuid = ?";
const std::string kSelectImagePage =
    "SELECT " + kImageColumns + " FROM images WHERE id < ? ORDER BY id DESC LIMIT ?";
const std::string kSelectOwnersImagePage =
    "SELECT " + kImageColumns + " FROM images WHERE owner = ? AND id < ? ORDER BY id DESC LIMIT ?";
const std::string kSelectSummaries = "SELECT " + std::string(adapters::kSummaryColumns) +
                                     " FROM image_dithers WHERE image_uuid = ? ORDER BY dither_id "
                                     "DESC";

constexpr auto read_image = adapters::read_image<Statement>;

// The image with its summaries, or kNotFound.
ImageRecord read_full_image(Connection& c, const ImageId& uuid) {
  ImageRecord image =
      sqlite::only_row(c, kSelectImageByUuid, read_image, "no image " + uuid.value, uuid.value);
  auto st = c.prepare(kSelectSummaries);
  st.bind(1, uuid.value);
  image.dithers = sqlite::rows_of(st, adapters::read_summary<Statement>);
  return image;
}

// Adds the summary, or replaces the one with the same dither_id.
void put_summary(Connection& c, const ImageId& uuid, const DitherSummary& d) {
  c.prepare(
       "INSERT OR REPLACE INTO image_dithers (image_uuid, dither_id, status, url_dither, "
       "channels, algorithm, palette, format, error, created_at) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(uuid.value, d.dither_id, d.status, d.url_dither, d.channels, d.algorithm, d.palette,
                d.format, d.error, d.created_at)
      .run();
}

class SqliteImageRepository final : public sqlite::OutboxStore<ImageRepository> {
 public:
  using OutboxStore::OutboxStore;

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

 private:
  // mark_finished / mark_failed: once per message, `update` (`value`, now, uuid) of the image,
  // then the dither's summary; false when the image is gone (deleted meanwhile).
  Result<bool> record_outcome(std::string_view update, std::string_view value, const ImageId& uuid,
                              const DitherSummary& dither, std::string_view message_id);
};

}  // namespace

Result<std::unique_ptr<ImageRepository>> open_sqlite_image_repository(
    const std::string& path, const SqliteOptions& options) {
  static constexpr sqlite::Schema kSchema{"the upload service's metadata", 0x44495550,  // "DIUP"
                                          kImageMigrations};
  return sqlite::open_store<ImageRepository, SqliteImageRepository>(path, kSchema, options);
}

Result<ImageRecord> SqliteImageRepository::insert_image(const ImageRecord& image,
                                                        const Message& uploaded) {
  return db_->write([&](Connection& c) {
    ImageRecord r = image;
    r.created_at = r.updated_at = now_millis();
    r.dithers.clear();
    c.prepare(
         "INSERT INTO images (uuid, filename, status, url, url_dither, content_type, size, "
         "width, height, email, error, blob_key, created_at, updated_at, owner, frames) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind_all(r.uuid.value, r.filename, r.status, r.url, r.url_dither, r.content_type, r.size,
                  r.width, r.height, r.email, r.error, r.blob_key.value, r.created_at, r.updated_at,
                  r.owner, r.frames)
        .run();
    r.id = c.last_insert_rowid();
    sqlite::enqueue_message(c, uploaded);
    return r;
  });
}

Result<ImageRecord> SqliteImageRepository::get_image(const ImageId& uuid) {
  return db_->read([&](Connection& c) { return read_full_image(c, uuid); });
}

Result<Page<ImageRecord>> SqliteImageRepository::list_images(const PageRequest& page) {
  return db_->read([&](Connection& c) {
    return sqlite::page_of(c, page, kSelectImagePage, kSelectOwnersImagePage, read_image);
  });
}

Result<ImageRecord> SqliteImageRepository::delete_image(const ImageId& uuid,
                                                        const Message& deleted) {
  Result<ImageRecord> removed = db_->write([&](Connection& c) {
    ImageRecord image = read_full_image(c, uuid);
    c.prepare("DELETE FROM images WHERE id = ?").bind(1, image.id).run();  // summaries cascade
    sqlite::enqueue_message(c, deleted);
    return image;
  });
  // The row held the address: no copy may stay in the files (best effort: a busy WAL is
  // truncated by a later erasure).
  if (removed) (void)db_->forget_erased();
  return removed;
}

Result<bool> SqliteImageRepository::mark_finished(const ImageId& uuid, const DitherSummary& dither,
                                                  std::string_view message_id) {
  return record_outcome(
      "UPDATE images SET status = 'FINISHED', url_dither = ?, error = '', updated_at = ? "
      "WHERE uuid = ?",
      dither.url_dither, uuid, dither, message_id);
}

Result<bool> SqliteImageRepository::mark_failed(const ImageId& uuid, const DitherSummary& dither,
                                                std::string_view message_id) {
  // A failed on-demand dither does not undo a finished image.
  return record_outcome(
      "UPDATE images SET "
      "status = CASE status WHEN 'FINISHED' THEN status ELSE 'FAILED' END, "
      "error = CASE status WHEN 'FINISHED' THEN error ELSE ? END, updated_at = ? "
      "WHERE uuid = ?",
      dither.error, uuid, dither, message_id);
}

Result<bool> SqliteImageRepository::record_outcome(std::string_view update, std::string_view value,
                                                   const ImageId& uuid, const DitherSummary& dither,
                                                   std::string_view message_id) {
  return db_->write([&](Connection& c) {
    if (!sqlite::first_delivery(c, message_id)) return false;
    c.prepare(update).bind_all(value, now_millis(), uuid.value).run();
    if (c.changes() == 0) return false;
    put_summary(c, uuid, dither);
    return true;
  });
}

Result<bool> SqliteImageRepository::mark_dithers_deleted(const ImageId& uuid,
                                                         std::string_view message_id) {
  return db_->write([&](Connection& c) {
    if (!sqlite::first_delivery(c, message_id)) return false;
    c.prepare(
         "UPDATE images SET status = 'DITHER_DELETED', url_dither = '', updated_at = ? "
         "WHERE uuid = ?")
        .bind_all(now_millis(), uuid.value)
        .run();
    if (c.changes() == 0) return false;
    c.prepare("DELETE FROM image_dithers WHERE image_uuid = ?").bind(1, uuid.value).run();
    return true;
  });
}

Result<bool> SqliteImageRepository::mark_dither_deleted(const ImageId& uuid, int64_t dither_id,
                                                        std::string_view message_id) {
  return db_->write([&](Connection& c) {
    if (!sqlite::first_delivery(c, message_id)) return false;
    c.prepare("DELETE FROM image_dithers WHERE image_uuid = ? AND dither_id = ?")
        .bind_all(uuid.value, dither_id)
        .run();
    // The image shows the newest finished dither that is left, or none.
    std::optional<std::string> newest;
    {
      auto st = c.prepare(
          "SELECT url_dither FROM image_dithers WHERE image_uuid = ? AND status = 'FINISHED' "
          "ORDER BY dither_id DESC LIMIT 1");
      st.bind(1, uuid.value);
      if (st.step()) newest = st.column_text(0);
    }
    if (newest) {
      c.prepare(
           "UPDATE images SET status = 'FINISHED', url_dither = ?, error = '', updated_at = ? "
           "WHERE uuid = ?")
          .bind_all(*newest, now_millis(), uuid.value)
          .run();
    } else {
      c.prepare(
           "UPDATE images SET status = 'DITHER_DELETED', url_dither = '', updated_at = ? "
           "WHERE uuid = ?")
          .bind_all(now_millis(), uuid.value)
          .run();
    }
    return c.changes() > 0;  // none: the image was deleted meanwhile
  });
}

Result<ImageRepository::Usage> SqliteImageRepository::usage(std::string_view owner) {
  return db_->read([&](Connection& c) {
    // The (owner, id) index finds the owner's rows; a quota keeps them few.
    auto st = c.prepare("SELECT count(*), coalesce(sum(size), 0) FROM images WHERE owner = ?");
    st.bind_all(owner);
    Usage u;
    if (st.step()) {
      u.images = st.column_int64(0);
      u.bytes = st.column_int64(1);
    }
    return u;
  });
}

}  // namespace dither
