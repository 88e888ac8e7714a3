// The upload service's business logic: accept an image, keep its record, publish its events, and
// keep its status current from the dither topic. No HTTP here (upload_api.h maps requests onto
// these functions) and no concrete store: it talks to the ImageRepository, BlobStore and, through
// the repository's outbox, the event bus.
//
//   UploadService svc(repo, blobs, topics, limits, [&] { relay.notify(); });
//   Result<ImageRecord> r = svc.upload(bytes, "cat.jpg", "", traceparent);
//
// Thread-safe (the ports are).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "imaging/codec.h"
#include "ports/blob_store.h"
#include "ports/identity.h"
#include "ports/message.h"
#include "ports/metadata.h"
#include "services/common/quotas.h"

namespace dither::observability {
class Metrics;
class Tracer;
}  // namespace dither::observability

namespace dither {

class UploadService {
 public:
  // The depth of the dither queue (DitherRepository::count_pending("")), when this service's
  // uploads are dithered automatically; empty: the queue's bound is not checked here.
  using QueueDepth = std::function<Result<int64_t>()>;

  UploadService(ImageRepository& images, BlobStore& blobs, Topics topics, imaging::Limits limits,
                std::function<void()> outbox_written, Quotas quotas = {},
                QueueDepth queue_depth = {});

  // Checks the quotas of `caller` (admins are exempt: images and bytes stored) and the dither
  // queue's bound (quotas.h) first, with cheap queries: a refusal fills `refused` (when given)
  // and returns its error(), before anything is decoded or stored. Then validates `bytes` (size,
  // sniffed format, header pixel count, then imaging::verify(), decode()'s verdict at a fraction
  // of the work, so that a truncated or corrupt file is refused now rather than failing later),
  // stores the original, inserts the record and
  // queues IMAGE_UPLOADED in one transaction. On any failure nothing is left behind. `email` may
  // be empty; otherwise it must look like an address. The image belongs to `caller.owner`.
  Result<ImageRecord> upload(std::span<const uint8_t> bytes, std::string_view filename,
                             std::string_view email, const Caller& caller,
                             std::string_view traceparent, Refusal* refused = nullptr);
  // kNotFound, exactly as for an unknown uuid, when `caller` may not reach the image.
  Result<ImageRecord> get(std::string_view uuid, const Caller& caller);
  // page.owner filters (the caller's list_filter()).
  Result<Page<ImageRecord>> list(const PageRequest& page);
  // Removes the original and the record, and queues IMAGE_DELETED (the dithering service then
  // removes the dithers). kNotFound as get() for another owner's image.
  Result<ImageRecord> remove(std::string_view uuid, const Caller& caller,
                             std::string_view traceparent);

  // Consumer of the dither topic: DITHER_UPLOADED, DITHER_FAILED, DITHER_DELETED (of every
  // dither of the image, or with `dither_id` of that one: ImageRepository::mark_dither_deleted).
  // Other types are ignored; a body that cannot be read is an error (the bus dead-letters it).
  Status on_dither_message(const Message& message);

  Status health();

  // The service's outbox (parked messages: GET /outbox/parked, POST /outbox/parked/{seq}).
  Outbox& outbox() { return images_; }
  // Removes stored originals that have no record: what a crash between storing the blob and
  // committing the row leaves. Call at start-up, before accepting uploads. Returns how many.
  Result<int> remove_orphan_originals();
  const imaging::Limits& limits() const { return limits_; }
  const Quotas& quotas() const { return quotas_; }

  // Records uploads by outcome, the stored ones' sizes and the time of each stage into `metrics`
  // (docs/METRICS.md); not owned, must outlive the service. Unset: nothing is recorded.
  void set_metrics(observability::Metrics& metrics);
  // Where the upload's spans go (an "upload" span with its stages, and the PRODUCER span of its
  // IMAGE_UPLOADED; docs/TRACING.md); not owned, must outlive the service. Unset: none.
  void set_tracer(observability::Tracer* tracer) { tracer_ = tracer; }
  ~UploadService();

 private:
  struct Recorded;  // the series set_metrics() made
  std::unique_ptr<Recorded> recorded_;
  Result<ImageRecord> store(std::span<const uint8_t> bytes, std::string_view filename,
                            std::string_view email, const Caller& caller,
                            std::string_view traceparent, Refusal* refused);
  ImageRepository& images_;
  BlobStore& blobs_;
  Topics topics_;
  imaging::Limits limits_;
  std::function<void()> outbox_written_;
  Quotas quotas_;
  QueueDepth queue_depth_;
  observability::Tracer* tracer_ = nullptr;

  // A refusal of an upload of `size` bytes by `caller`, if any (upload()).
  Result<std::optional<Refusal>> admit(const Caller& caller, int64_t size);
};

// What a client-given file name becomes: the last path component, control characters and
// quotes removed, at most 200 bytes; "upload.<ext>" when nothing is left.
std::string clean_filename(std::string_view name, std::string_view extension);

}  // namespace dither
