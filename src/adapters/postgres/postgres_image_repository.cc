// The upload service's metadata in PostgreSQL: images, the dither summaries learned from the
// dither topic, and the service's outbox. The same statements as the SQLite adapter, in the
// repository's schema.
#include <array>
#include <string>
#include <utility>

#include "adapters/postgres/pg_store.h"
#include "adapters/shared/rows.h"

namespace dither {
namespace {

using postgres::Row;
using postgres::Tx;

// The SQL below spells statuses as literals.
static_assert(kStatusFinished == "FINISHED" && kStatusFailed == "FAILED" &&
              kStatusDitherDeleted == "DITHER_DELETED");

constexpr std::string_view kImageTablesSql = R"sql(
CREATE TABLE images (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- list order and cursor; never reused
  uuid TEXT NOT NULL UNIQUE,
  filename TEXT NOT NULL,
  status TEXT NOT NULL,
  url TEXT NOT NULL,
  url_dither TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  email TEXT NOT NULL,
  error TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE image_dithers (
  image_uuid TEXT NOT NULL REFERENCES images (uuid) ON DELETE CASCADE,
  dither_id BIGINT NOT NULL,
  status TEXT NOT NULL,
  url_dither TEXT NOT NULL,
  channels INTEGER NOT NULL,
  algorithm TEXT NOT NULL,
  palette TEXT NOT NULL,
  format TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (image_uuid, dither_id)
);
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

constexpr std::array<postgres::Migration, 5> kImageMigrations = {{
    {1, postgres::kMessagingTablesSql},
    {2, kImageTablesSql},
    {3, kImageOwnersSql},
    {4, postgres::kOutboxParkingSql},
    {5, kImageFramesSql},
}};

constexpr postgres::Schema kImageSchema{"the upload service's metadata", "dither-upload",
                                        kImageMigrations};

const std::string kImageColumns(adapters::kImageColumns);

constexpr auto read_image = adapters::read_image<Row>;

class PostgresImageRepository final : public postgres::OutboxStore<ImageRepository> {
 public:
  using OutboxStore::OutboxStore;

  Result<ImageRecord> insert_image(const ImageRecord& image, const Message& uploaded) override {
    return db_->write([&](Tx& tx) {
      ImageRecord r = image;
      r.created_at = r.updated_at = now_millis();
      r.dithers.clear();
      r.id = tx.exec(insert_, r.uuid.value, r.filename, r.status, r.url, r.url_dither,
                     r.content_type, r.size, r.width, r.height, r.email, r.error, r.blob_key.value,
                     r.created_at, r.updated_at, r.owner, r.frames)[0][0]
                 .as<int64_t>();
      messaging_.enqueue(tx, uploaded);
      return r;
    });
  }

  Result<ImageRecord> get_image(const ImageId& uuid) override {
    return db_->read([&](Tx& tx) { return read_full_image(tx, select_by_uuid_, uuid); });
  }

  Result<Page<ImageRecord>> list_images(const PageRequest& page) override {
    return db_->read([&](Tx& tx) {
      return postgres::page_of(tx, page, select_page_, select_owners_page_, read_image);
    });
  }

  Result<ImageRecord> delete_image(const ImageId& uuid, const Message& deleted) override {
    return db_->write([&](Tx& tx) {
      // Locked, so that of two concurrent deletes the second finds nothing.
      ImageRecord image = read_full_image(tx, lock_by_uuid_, uuid);
      tx.exec(delete_, image.id);  // summaries cascade
      messaging_.enqueue(tx, deleted);
      return image;
    });
  }

  Result<bool> mark_finished(const ImageId& uuid, const DitherSummary& dither,
                             std::string_view message_id) override {
    return db_->write([&](Tx& tx) {
      if (!messaging_.first_delivery(tx, message_id)) return false;
      if (tx.exec(mark_finished_, dither.url_dither, now_millis(), uuid.value).affected_rows() ==
          0) {
        return false;  // deleted meanwhile
      }
      put_summary(tx, uuid, dither);
      return true;
    });
  }

  Result<bool> mark_failed(const ImageId& uuid, const DitherSummary& dither,
                           std::string_view message_id) override {
    return db_->write([&](Tx& tx) {
      if (!messaging_.first_delivery(tx, message_id)) return false;
      if (tx.exec(mark_failed_, dither.error, now_millis(), uuid.value).affected_rows() == 0) {
        return false;
      }
      put_summary(tx, uuid, dither);
      return true;
    });
  }

  Result<bool> mark_dithers_deleted(const ImageId& uuid, std::string_view message_id) override {
    return db_->write([&](Tx& tx) {
      if (!messaging_.first_delivery(tx, message_id)) return false;
      if (tx.exec(mark_deleted_, now_millis(), uuid.value).affected_rows() == 0) return false;
      tx.exec(delete_summaries_, uuid.value);
      return true;
    });
  }

  Result<bool> mark_dither_deleted(const ImageId& uuid, int64_t dither_id,
                                   std::string_view message_id) override {
    return db_->write([&](Tx& tx) {
      if (!messaging_.first_delivery(tx, message_id)) return false;
      // Locked, so that a concurrent consumer write of the same image waits for this one.
      if (tx.exec(lock_image_, uuid.value).empty()) return false;  // deleted meanwhile
      tx.exec(delete_summary_, uuid.value, dither_id);
      // The image shows the newest finished dither that is left, or none.
      const pqxx::result newest = tx.exec(newest_finished_, uuid.value);
      if (newest.empty()) {
        tx.exec(mark_deleted_, now_millis(), uuid.value);
      } else {
        tx.exec(show_dither_, postgres::text_of(newest[0][0]), now_millis(), uuid.value);
      }
      return true;
    });
  }

  Usage usage_of(Tx& tx, std::string_view owner) const {
    const pqxx::row row = tx.exec(usage_, owner).at(0);
    return Usage{row[0].as<int64_t>(), row[1].as<int64_t>()};
  }

  Result<Usage> usage(std::string_view owner) override {
    return db_->read([&](Tx& tx) { return usage_of(tx, owner); });
  }

 private:
  // The image with its summaries, or kNotFound.
  ImageRecord read_full_image(Tx& tx, const std::string& select, const ImageId& uuid) const {
    ImageRecord image =
        postgres::only_row(tx.exec(select, uuid.value), read_image, "no image " + uuid.value);
    image.dithers =
        postgres::rows_of(tx.exec(select_summaries_, uuid.value), adapters::read_summary<Row>);
    return image;
  }

  // Adds the summary, or replaces the one with the same dither_id.
  void put_summary(Tx& tx, const ImageId& uuid, const DitherSummary& d) const {
    tx.exec(put_summary_, uuid.value, d.dither_id, d.status, d.url_dither, d.channels, d.algorithm,
            d.palette, d.format, d.error, d.created_at);
  }

  const std::string insert_ =
      sql("INSERT INTO {schema}.images (uuid, filename, status, url, url_dither, content_type, "
          "size, width, height, email, error, blob_key, created_at, updated_at, owner, frames) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
          "RETURNING id");
  const std::string select_by_uuid_ =
      sql("SELECT " + kImageColumns + " FROM {schema}.images WHERE uuid = $1");
  const std::string lock_by_uuid_ =
      sql("SELECT " + kImageColumns + " FROM {schema}.images WHERE uuid = $1 FOR UPDATE");
  const std::string select_page_ = sql(
      "SELECT " + kImageColumns + " FROM {schema}.images WHERE id < $1 ORDER BY id DESC LIMIT $2");
  const std::string select_owners_page_ =
      sql("SELECT " + kImageColumns +
          " FROM {schema}.images WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3");
  const std::string select_summaries_ =
      sql("SELECT " + std::string(adapters::kSummaryColumns) +
          " FROM {schema}.image_dithers WHERE image_uuid = $1 ORDER BY dither_id DESC");
  const std::string put_summary_ =
      sql("INSERT INTO {schema}.image_dithers (image_uuid, dither_id, status, url_dither, "
          "channels, algorithm, palette, format, error, created_at) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
          "ON CONFLICT (image_uuid, dither_id) DO UPDATE SET status = excluded.status, "
          "url_dither = excluded.url_dither, channels = excluded.channels, "
          "algorithm = excluded.algorithm, palette = excluded.palette, format = excluded.format, "
          "error = excluded.error, created_at = excluded.created_at");
  const std::string delete_ = sql("DELETE FROM {schema}.images WHERE id = $1");
  const std::string mark_finished_ =
      sql("UPDATE {schema}.images SET status = 'FINISHED', url_dither = $1, error = '', "
          "updated_at = $2 WHERE uuid = $3");
  // A failed on-demand dither does not undo a finished image.
  const std::string mark_failed_ =
      sql("UPDATE {schema}.images SET "
          "status = CASE status WHEN 'FINISHED' THEN status ELSE 'FAILED' END, "
          "error = CASE status WHEN 'FINISHED' THEN error ELSE $1 END, "
          "updated_at = $2 WHERE uuid = $3");
  const std::string mark_deleted_ =
      sql("UPDATE {schema}.images SET status = 'DITHER_DELETED', url_dither = '', updated_at = $1 "
          "WHERE uuid = $2");
  const std::string delete_summaries_ =
      sql("DELETE FROM {schema}.image_dithers WHERE image_uuid = $1");
  const std::string lock_image_ = sql("SELECT 1 FROM {schema}.images WHERE uuid = $1 FOR UPDATE");
  const std::string delete_summary_ =
      sql("DELETE FROM {schema}.image_dithers WHERE image_uuid = $1 AND dither_id = $2");
  const std::string newest_finished_ =
      sql("SELECT url_dither FROM {schema}.image_dithers WHERE image_uuid = $1 "
          "AND status = 'FINISHED' ORDER BY dither_id DESC LIMIT 1");
  const std::string show_dither_ =
      sql("UPDATE {schema}.images SET status = 'FINISHED', url_dither = $1, error = '', "
          "updated_at = $2 WHERE uuid = $3");
  // Quotas: the (owner, id) index finds the owner's rows.
  const std::string usage_ =
      sql("SELECT count(*)::bigint, coalesce(sum(size), 0)::bigint FROM {schema}.images "
          "WHERE owner = $1");
};

}  // namespace

Result<std::unique_ptr<ImageRepository>> open_postgres_image_repository(
    const PostgresOptions& options) {
  return postgres::open_store<ImageRepository, PostgresImageRepository>(options, kImageSchema,
                                                                        "upload");
}

}  // namespace dither
