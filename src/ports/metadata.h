// Ports: the metadata each service keeps.
//
// ImageRepository belongs to the upload service, DitherRepository to the dithering service. Each
// is also that service's Outbox: every write that implies a message takes the message and commits
// both in one transaction. Consumer-side writes take the consumed message's id and are no-ops when
// that id was already applied (idempotent consumers; the ids are kept in the same transaction).
//
// Adapters: SQLite (embedded default, schema by versioned migrations) and PostgreSQL.
// Thread-safe: every method may be called from any thread at the same time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ports/message.h"
#include "ports/outbox.h"
#include "ports/records.h"

namespace dither {

class ImageRepository : public Outbox {
 public:
  // Inserts `image` (id, created_at and updated_at are assigned) and queues `uploaded`.
  virtual Result<ImageRecord> insert_image(const ImageRecord& image, const Message& uploaded) = 0;
  virtual Result<ImageRecord> get_image(const ImageId& uuid) = 0;  // kNotFound
  virtual Result<Page<ImageRecord>> list_images(const PageRequest& page) = 0;
  // Deletes the row and queues `deleted`; kNotFound when there is no such image.
  virtual Result<ImageRecord> delete_image(const ImageId& uuid, const Message& deleted) = 0;

  // Consumer side (dither topic). Each applies at most once per message_id; an unknown uuid is a
  // no-op (the image was deleted meanwhile). Returns whether anything changed.
  // DITHER_UPLOADED: status FINISHED, url_dither = dither.url_dither, error cleared; the summary
  // is added to (or replaces the one with the same dither_id in) the image's dithers.
  virtual Result<bool> mark_finished(const ImageId& uuid, const DitherSummary& dither,
                                     std::string_view message_id) = 0;
  // DITHER_FAILED: status FAILED with dither.error, unless the image is already FINISHED (an
  // on-demand dither failing does not undo a finished one); the summary is added either way.
  virtual Result<bool> mark_failed(const ImageId& uuid, const DitherSummary& dither,
                                   std::string_view message_id) = 0;
  // DITHER_DELETED: status DITHER_DELETED, url_dither cleared, the dither summaries removed.
  virtual Result<bool> mark_dithers_deleted(const ImageId& uuid, std::string_view message_id) = 0;
  // DITHER_DELETED naming one dither: only the summary with `dither_id` is removed (if there is
  // one). Then url_dither is that of the newest (highest dither_id) remaining FINISHED summary
  // and the status FINISHED, error cleared; when no FINISHED summary remains, url_dither is ""
  // and the status DITHER_DELETED (error kept, as mark_dithers_deleted keeps it).
  virtual Result<bool> mark_dither_deleted(const ImageId& uuid, int64_t dither_id,
                                           std::string_view message_id) = 0;

  // What `owner` stores: how many images and the sum of their originals' sizes (quotas,
  // docs/SECURITY.md "Limits"); zeros for an owner with nothing.
  struct Usage {
    int64_t images = 0;
    int64_t bytes = 0;
  };
  virtual Result<Usage> usage(std::string_view owner) = 0;

  // Whether the store answers (for /health).
  virtual Status ping() = 0;
};

class DitherRepository : public Outbox {
 public:
  // IMAGE_UPLOADED: remembers the original and, when `auto_dither` is given, creates that dither
  // (PENDING, request_id = message_id) in the same transaction. Once per message_id; returns the
  // created dither, if any.
  virtual Result<std::optional<DitherRecord>> record_original(
      const OriginalRecord& original, const std::optional<DitherRecord>& auto_dither,
      std::string_view message_id) = 0;
  virtual Result<OriginalRecord> get_original(const ImageId& uuid) = 0;  // kNotFound

  // A requested dither (PENDING); id, created_at and updated_at are assigned.
  virtual Result<DitherRecord> create_dither(const DitherRecord& dither) = 0;
  virtual Result<DitherRecord> get_dither(DitherId id) = 0;  // kNotFound
  virtual Result<Page<DitherRecord>> list_dithers(const PageRequest& page) = 0;
  // The dithers of one original, newest first.
  virtual Result<std::vector<DitherRecord>> dithers_of(const ImageId& uuid) = 0;
  // How many dithers are PENDING (claimed or not) of `owner`, or of every owner when `owner` is
  // "" (the queue's depth). Quotas and the queue's bound (docs/SECURITY.md "Limits").
  virtual Result<int64_t> count_pending(std::string_view owner) = 0;
  // When the oldest PENDING dither was requested (Unix ms; 0 when none): the queue's age.
  virtual Result<int64_t> oldest_pending_at() = 0;
  // Work claiming, for several workers (threads, processes, hosts) sharing the store. Claims up
  // to `limit` PENDING dithers, oldest first, that nobody holds (or whose lease expired): each is
  // leased to `worker` until now + `lease`. A worker that dies loses its claims when the lease
  // expires; finish/fail only apply to PENDING dithers, claimed or not, as before. A lease of 0
  // claims nothing for long: the dither is free again at once. An empty `worker` is
  // kInvalidArgument.
  //
  // Every claim counts an attempt: the returned records carry `attempts` already incremented (and
  // the count survives restarts, including the embedded store's freeing of claims at start-up).
  // The cap is the caller's (DitherWorkers, DITHER_MAX_ATTEMPTS): a worker that claims a dither
  // whose attempts exceed it does not process it but fails it ("gave up after N attempts", with
  // its DITHER_FAILED event, through fail_dither), so a file that crashes or hangs the process,
  // or keeps failing transiently, ends FAILED instead of being retried for ever. A crash between
  // that claim and the fail only raises the count: the next claim fails it again.
  virtual Result<std::vector<DitherRecord>> claim_dithers(int limit, std::string_view worker,
                                                          std::chrono::seconds lease) = 0;
  // Extends the lease `worker` holds on PENDING dither `id` to now + `lease` (a long dither is
  // not handed to another worker while it runs). Returns false, changing nothing, when `worker`
  // no longer holds it (the lease ended and another worker claimed it, it was released, it is no
  // longer PENDING or is gone).
  virtual Result<bool> renew_lease(DitherId id, std::string_view worker,
                                   std::chrono::seconds lease) = 0;
  // Gives back a dither `worker` holds (after a transient error, or when stopping), so any
  // worker may claim it at once. A no-op when `worker` does not hold it.
  virtual Status release_dither(DitherId id, std::string_view worker) = 0;

  // Completes a PENDING dither and queues `event` (DITHER_UPLOADED / DITHER_FAILED). Returns false
  // (and changes nothing) when the dither no longer exists or is not PENDING.
  virtual Result<bool> finish_dither(DitherId id, const ObjectKey& blob_key,
                                     std::string_view url_dither, const Message& event) = 0;
  virtual Result<bool> fail_dither(DitherId id, std::string_view error, const Message& event) = 0;

  // Removes dither `id` and queues `deleted` (DITHER_DELETED) in one transaction; returns the
  // removed dither (its blob is the caller's to remove). kNotFound, changing nothing, when there
  // is no such dither or it belongs to another original than `uuid`.
  virtual Result<DitherRecord> delete_dither(const ImageId& uuid, DitherId id,
                                             const Message& deleted) = 0;

  // Removes every dither of `uuid` and queues `deleted` (DITHER_DELETED) when there was at least
  // one; with `forget_original` also forgets the original (IMAGE_DELETED). Once per `message_id`
  // when one is given (consumer side); returns the removed dithers (their blobs are the caller's
  // to remove).
  virtual Result<std::vector<DitherRecord>> delete_dithers_of(const ImageId& uuid,
                                                              const Message& deleted,
                                                              bool forget_original,
                                                              std::string_view message_id) = 0;

  // Dithers whose options are still in the form an older version stored (options_form 0), oldest
  // first, at most `limit` (the service rewrites them at start: DitherService::canonicalize).
  // Every dither the store creates (create_dither, record_original) is canonical already.
  virtual Result<std::vector<DitherRecord>> legacy_options(int limit) = 0;
  // Stores `options_json` as dither `id`'s options and marks them canonical. False, changing
  // nothing, when there is no such dither. Nothing else changes (updated_at neither: the options
  // mean what they meant, only their spelling is new).
  virtual Result<bool> set_canonical_options(DitherId id, std::string_view options_json) = 0;

  // Presets: the option sets owners saved under names. Owners and names compare exactly (bytes,
  // case included); lists are in that byte order.
  //
  // The presets of `owner` by name; of every owner (by owner, then name) when `owner` is "".
  virtual Result<std::vector<PresetRecord>> presets_of(std::string_view owner) = 0;
  // kNotFound when `owner` has no preset `name`.
  virtual Result<PresetRecord> get_preset(std::string_view owner, std::string_view name) = 0;
  // Creates (owner, name), or replaces its description and options (created_at kept, updated_at
  // now); returns what is stored. `*replaced` (when given) tells which happened. An empty owner
  // or name is kInvalidArgument.
  virtual Result<PresetRecord> put_preset(const PresetRecord& preset, bool* replaced = nullptr) = 0;
  // Removes (owner, name); false when there was none.
  virtual Result<bool> delete_preset(std::string_view owner, std::string_view name) = 0;

  virtual Status ping() = 0;
};

}  // namespace dither
