// The dithering service's business logic: remember originals from IMAGE_UPLOADED (and dither
// each automatically with the default preset), accept dither requests, do the work, store the
// results, publish DITHER_UPLOADED / DITHER_FAILED / DITHER_DELETED, and remove an image's dithers
// on IMAGE_DELETED. No HTTP here (dither_api.h) and no concrete store.
//
// Work is durable: a request is a PENDING row first; DitherWorkers (dither_workers.h) pick
// PENDING rows and call process(). A crash leaves the row PENDING and the work is done after the
// restart; a result blob has a fixed key per dither, so doing it twice leaves one result.
//
// Thread-safe (the ports are).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "imaging/codec.h"
#include "messaging/events.h"
#include "pipeline/presets.h"
#include "pipeline/process_options.h"
#include "ports/blob_store.h"
#include "ports/identity.h"
#include "ports/message.h"
#include "ports/metadata.h"
#include "ports/url_fetcher.h"
#include "services/common/quotas.h"

namespace dither::observability {
class Metrics;
class Tracer;
}  // namespace dither::observability

namespace dither {

// The automatic dither of every upload: AUTO_DITHER_PRESET (a built-in preset, or none), then
// AUTO_DITHER_OPTIONS over it (pairs as a query string gives them).
struct AutoDither {
  bool enabled = true;
  std::string preset;
  pipeline::OptionPairs options = {{"algorithm", "floyd-steinberg"}, {"channels", "2"}};

  // The options every automatic dither is made with; config.cc calls it at start-up so that a
  // bad setting stops the start, DitherService once when it is made.
  Result<pipeline::ProcessOptions> resolve() const;
  // The record's channels: the options' `channels`, else 2.
  int channels() const;
  // Whether the preset or the options name an output format (else an animated original keeps
  // its own: DitherService::follow_animation).
  bool names_format() const;
};

// Parses "name=value&name=value" (AUTO_DITHER_OPTIONS) into pairs; values are not checked here.
Result<pipeline::OptionPairs> parse_option_query(std::string_view text);

// A dither id from a path: a positive decimal integer that fits in 63 bits, digits only.
// kInvalidArgument otherwise.
Result<DitherId> parse_dither_id(std::string_view text);

class DitherService {
 public:
  DitherService(DitherRepository& dithers, BlobStore& blobs, Topics topics, imaging::Limits limits,
                AutoDither auto_dither, std::function<void()> outbox_written,
                std::function<void()> work_added, Quotas quotas = {});

  // POST /images/{uuid}/{channels}: `options` from the query string and the JSON body, in that
  // order (a later value wins). `channels` (2..256) means palette levels:channels unless a
  // palette option is given. `preset` names a preset (built-in, else the caller's own): its
  // options, then the explicit ones over them; a preset is complete, so its palette replaces
  // levels:channels. With presets_only, a preset and nothing else. Everything is parsed and
  // validated here, once (400 on any bad value); the record stores the canonical form. 404 when
  // the original is unknown. `request_id` makes the call idempotent: the same id returns the same
  // dither. Its DITHER_* message continues the trace `traceparent` (when valid).
  // Every call naming an image answers kNotFound, exactly as for an unknown one, when `caller`
  // may not reach it (another owner's, and the caller is no admin). A dither requested by someone
  // other than the image's owner (an admin) is never mailed to the upload's address.
  // After those checks, the limits (quotas.h): the queue's bound (everyone), then the caller's
  // pending dithers and the image's dithers (admins are exempt); a refusal fills `refused` (when
  // given) and returns its error(). Asking again with the `request_id` of a dither that exists
  // returns it, whatever the limits say now. Automatic dithers (on_image_message) are never
  // refused: the upload service checked the queue's bound before accepting the upload.
  Result<DitherRecord> request(std::string_view uuid, std::string_view channels,
                               const pipeline::OptionPairs& options, std::string_view request_id,
                               const Caller& caller, std::string_view traceparent = {},
                               Refusal* refused = nullptr);
  // page.owner filters (the caller's list_filter()).
  Result<Page<DitherRecord>> list(const PageRequest& page);
  Result<std::vector<DitherRecord>> dithers_of(std::string_view uuid, const Caller& caller);
  // DELETE /images/{uuid}: removes the dithers of `uuid` and their blobs, queues
  // DITHER_DELETED; returns how many were removed. 404 when the original is unknown.
  Result<int> remove_dithers(std::string_view uuid, const Caller& caller,
                             std::string_view traceparent);
  // DELETE /images/{uuid}/{dither_id}: removes that one dither (its blob first, then the row)
  // and queues DITHER_DELETED {"uuid", "dither_id"}; returns the removed dither.
  // kInvalidArgument for a malformed uuid or an id that is not positive; kNotFound when the
  // original is unknown, or the dither does not exist or belongs to another original. A worker
  // making that dither at the same moment finds its row gone and removes its own result.
  Result<DitherRecord> remove_dither(std::string_view uuid, DitherId dither_id,
                                     const Caller& caller, std::string_view traceparent);

  // Presets (docs/API.md "Presets"): the built-in ones and the caller's own (every owner's for an
  // admin), as the API answers them.
  Result<std::vector<PresetRecord>> presets(const Caller& caller);
  // Saves the caller's preset `name` (creates or replaces; `*replaced` says which) from options
  // as a request gives them. kInvalidArgument for a bad name or option, a refusal (`refused`)
  // past QUOTA_PRESETS; with presets_only only admins may (kForbidden as a refusal).
  Result<PresetRecord> save_preset(std::string_view name, std::string_view description,
                                   const pipeline::OptionPairs& options, const Caller& caller,
                                   bool* replaced, Refusal* refused);
  // Removes the caller's preset `name`; kNotFound when the caller has none of that name; a
  // built-in one is a refusal (403 forbidden).
  Status delete_preset(std::string_view name, const Caller& caller, Refusal* refused);

  // Start-up: rewrites options that an older version stored as requested into the canonical form
  // (DitherRepository::legacy_options). Returns how many were rewritten.
  Result<int> canonicalize_stored_options();

  // Only presets may be asked for (PRESETS_ONLY); only admins save presets then.
  void set_presets_only(bool only) { presets_only_ = only; }

  // Records the dithers made (by algorithm and outcome), the time of each stage and the queue's
  // depth into `metrics` (docs/METRICS.md); not owned, must outlive the service. Unset: nothing.
  void set_metrics(observability::Metrics& metrics);
  // Where the service's spans go (docs/TRACING.md): a CONSUMER span per message, a "dither job"
  // span per dither made with its stages (read, decode, dither, encode, store), the PRODUCER
  // spans of its messages; not owned, must outlive the service. Unset: none.
  void set_tracer(observability::Tracer* tracer) { tracer_ = tracer; }
  ~DitherService();

  // Consumer of the image topic: IMAGE_UPLOADED, IMAGE_DELETED; other types are ignored.
  Status on_image_message(const Message& message);

  // Does one PENDING dither: original in, result stored, row FINISHED (DITHER_UPLOADED) or
  // FAILED (DITHER_FAILED). A kUnavailable error means "try again later" (the row stays
  // PENDING); any other outcome is final and returns OK.
  Status process(const DitherRecord& dither);
  // Ends a PENDING dither that cannot succeed (DitherWorkers: too many attempts) as FAILED with
  // `reason` (public: it is the record's error and the DITHER_FAILED message's), without
  // touching the original. OK also when the dither is no longer PENDING.
  Status give_up(const DitherRecord& dither, std::string_view reason);

  Status health();

  // The service's outbox (parked messages: GET /outbox/parked, POST /outbox/parked/{seq}).
  Outbox& outbox() { return dithers_; }

  // Where originals announced only by URL (the prototype's IMAGE_UPLOADED) are fetched from; not
  // owned. Without one, such a dither fails with a clear error.
  void set_url_fetcher(UrlFetcher* fetcher) { fetcher_ = fetcher; }

  // The options a stored dither was requested with.
  static Result<pipeline::ProcessOptions> options_of(const DitherRecord& dither);
  // "auto" for the automatic dither of an upload, "request" for one asked for over HTTP.
  static std::string_view source_of(const DitherRecord& dither);
  // The output format of a dither whose options do not name one (`names_format` false) of an
  // animated original (frames > 1): the original's own, so that the animation stays one (a GIF
  // as GIF, a WebP as WebP; a GIF dithered to a palette of more than 256 colours, which GIF
  // cannot hold, as WebP). A still original, or a named format, leaves `options` as they are.
  static void follow_animation(pipeline::ProcessOptions& options, bool names_format,
                               const OriginalRecord& original);

 private:
  DitherRecord make_record(const ImageId& uuid, const pipeline::ProcessOptions& options,
                           int channels, std::string request_id,
                           std::string_view traceparent) const;
  // OK unless presets_only_ and `caller` is no admin: then a 403 refusal (in `refused`).
  Status presets_may_change(const Caller& caller, Refusal* refused) const;
  // A request's options: the path's channels, the preset's, the explicit ones (request()).
  // `names_format` says whether the preset or the explicit ones chose the output format.
  Result<pipeline::ProcessOptions> request_options(std::string_view channels,
                                                   const pipeline::OptionPairs& options,
                                                   const Caller& caller, bool& names_format);
  // The original, or kNotFound ("no image <uuid>") when unknown or out of `caller`'s reach.
  Result<OriginalRecord> reachable_original(const ImageId& uuid, const Caller& caller);
  Status remove_blobs(const std::vector<DitherRecord>& dithers);
  // The DITHER_* message's fields for `dither` (and its original, when known).
  static DitherEvent event_of(const DitherRecord& dither, const Result<OriginalRecord>& original);

  DitherRepository& dithers_;
  BlobStore& blobs_;
  Topics topics_;
  imaging::Limits limits_;
  UrlFetcher* fetcher_ = nullptr;
  AutoDither auto_;
  std::function<void()> outbox_written_;
  std::function<void()> work_added_;
  Quotas quotas_;
  Result<pipeline::ProcessOptions> auto_options_;  // auto_.resolve(), once
  bool auto_names_format_ = false;                 // auto_.names_format(), once
  bool presets_only_ = false;
  struct Recorded;  // the series set_metrics() made
  std::unique_ptr<Recorded> recorded_;
  observability::Tracer* tracer_ = nullptr;

  // A refusal of a new dither of `uuid` by `caller`, if any (request()).
  Result<std::optional<Refusal>> admit(const ImageId& uuid, std::string_view request_id,
                                       const Caller& caller);
};

}  // namespace dither
