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

// Returned by open_sqlite_dither_repository; the type is public so tests and tools can name it.
class SqliteDitherRepository final : public DitherRepository {
 public:
  explicit SqliteDitherRepository(std::unique_ptr<sqlite::Database> db);

  Result<std::optional<DitherRecord>> record_original(
      const OriginalRecord& original, const std::optional<DitherRecord>& auto_dither,
      std::string_view message_id) override;
  Result<OriginalRecord> get_original(const ImageId& uuid) override;

  Result<DitherRecord> create_dither(const DitherRecord& dither) override;
  Result<DitherRecord> get_dither(DitherId id) override;
  Result<Page<DitherRecord>> list_dithers(const PageRequest& page) override;
  Result<std::vector<DitherRecord>> dithers_of(const ImageId& uuid) override;
  Result<int64_t> count_pending(std::string_view owner) override;
  Result<std::vector<DitherRecord>> claim_dithers(int limit, std::string_view worker,
                                                  std::chrono::seconds lease) override;
  Result<bool> renew_lease(DitherId id, std::string_view worker,
                           std::chrono::seconds lease) override;
  Status release_dither(DitherId id, std::string_view worker) override;

  Result<bool> finish_dither(DitherId id, const ObjectKey& blob_key, std::string_view url_dither,
                             const Message& event) override;
  Result<bool> fail_dither(DitherId id, std::string_view error, const Message& event) override;
  Result<DitherRecord> delete_dither(const ImageId& uuid, DitherId id,
                                     const Message& deleted) override;
  Result<std::vector<DitherRecord>> delete_dithers_of(const ImageId& uuid, const Message& deleted,
                                                      bool forget_original,
                                                      std::string_view message_id) override;

  Result<std::vector<DitherRecord>> legacy_options(int limit) override;
  Result<bool> set_canonical_options(DitherId id, std::string_view options_json) override;

  Result<std::vector<PresetRecord>> presets_of(std::string_view owner) override;
  Result<PresetRecord> get_preset(std::string_view owner, std::string_view name) override;
  Result<PresetRecord> put_preset(const PresetRecord& preset, bool* replaced = nullptr) override;
  Result<bool> delete_preset(std::string_view owner, std::string_view name) override;

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
