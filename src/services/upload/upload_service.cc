#include "services/upload/upload_service.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/utf8.h"
#include "mail/rfc5322.h"
#include "messaging/events.h"
#include "observability/metrics.h"
#include "observability/tracing.h"
#include "services/common/message_trace.h"

namespace dither {

std::string clean_filename(std::string_view name, std::string_view extension) {
  const size_t slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  // Control characters and quotes go; what is not UTF-8 becomes U+FFFD (every store then takes
  // the name as text, and nothing echoes invalid bytes).
  std::string out;
  for (char c : to_valid_utf8(name)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '"' || c == '\'' || c == '<' || c == '>') continue;
    out.push_back(c);
  }
  if (out.size() > 200) {
    // At most 200 bytes, cut between two characters (`out` is valid UTF-8 by now).
    size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  if (out.empty() || out == "." || out == "..") out = "upload." + std::string(extension);
  return out;
}

UploadService::UploadService(ImageRepository& images, BlobStore& blobs, Topics topics,
                             imaging::Limits limits, std::function<void()> outbox_written,
                             Quotas quotas, QueueDepth queue_depth)
    : images_(images),
      blobs_(blobs),
      topics_(std::move(topics)),
      limits_(limits),
      outbox_written_(std::move(outbox_written)),
      quotas_(quotas),
      queue_depth_(std::move(queue_depth)) {}

Result<std::optional<Refusal>> UploadService::admit(const Caller& caller, int64_t size) {
  // The queue first, for everyone: an upload that would be dithered past the bound is refused
  // before it is stored, so that nothing accepted waits behind a full queue.
  if (queue_depth_ && quotas_.max_pending_dithers > 0) {
    Result<int64_t> depth = queue_depth_();
    if (!depth) {
      // The bound is back-pressure, not a rule: an upload is not refused for want of a count.
      spdlog::warn("cannot count the dither queue: {}", depth.error().message);
    } else if (*depth >= quotas_.max_pending_dithers) {
      return std::optional<Refusal>(Refusal::queue_full(
          "the dither queue is full (" + std::to_string(*depth) + " dithers waiting, at most " +
          std::to_string(quotas_.max_pending_dithers) + "); try again later"));
    }
  }
  if (caller.admin || (quotas_.images <= 0 && quotas_.bytes <= 0)) return std::optional<Refusal>{};
  Result<ImageRepository::Usage> usage = images_.usage(caller.owner);
  if (!usage) return usage.error();
  if (quotas_.images > 0 && usage->images >= quotas_.images) {
    return std::optional<Refusal>(
        Refusal::quota_exceeded("image quota reached: you store " + std::to_string(usage->images) +
                                " images, the limit is " + std::to_string(quotas_.images) +
                                " (QUOTA_IMAGES); delete some to upload more"));
  }
  if (quotas_.bytes > 0 && usage->bytes + size > quotas_.bytes) {
    return std::optional<Refusal>(Refusal::quota_exceeded(
        "storage quota exceeded: you store " + std::to_string(usage->bytes) +
        " bytes of originals, this upload is " + std::to_string(size) + " bytes and the limit is " +
        std::to_string(quotas_.bytes) + " bytes (QUOTA_BYTES); delete some to upload more"));
  }
  return std::optional<Refusal>{};
}

// What set_metrics() records.
struct UploadService::Recorded {
  explicit Recorded(observability::Metrics& metrics)
      : uploads(metrics.counter("uploads_total",
                                "Uploads by outcome: stored, the refusal's code (quota_exceeded, "
                                "queue_full...) or the error kind that turned one away.",
                                {"outcome"})),
        sizes(metrics
                  .histogram("upload_size_bytes", "Sizes of the stored uploads.", {},
                             observability::kByteBuckets)
                  .with({})),
        stages(metrics.histogram("upload_stage_duration_seconds",
                                 "Time of each stage of a stored upload: verify (the whole file "
                                 "read as the dither will), store (the original), record (the row "
                                 "and its message).",
                                 {"stage"}, observability::kStageBuckets)) {}
  observability::CounterFamily uploads;
  prometheus::Histogram& sizes;
  observability::HistogramFamily stages;
};

UploadService::~UploadService() = default;

void UploadService::set_metrics(observability::Metrics& metrics) {
  recorded_ = std::make_unique<Recorded>(metrics);
}

Result<ImageRecord> UploadService::upload(std::span<const uint8_t> bytes, std::string_view filename,
                                          std::string_view email, const Caller& caller,
                                          std::string_view traceparent, Refusal* refused) {
  Refusal refusal;
  observability::Span span =
      observability::start_span(tracer_, "upload", observability::SpanKind::kInternal, traceparent);
  Result<ImageRecord> stored = store(bytes, filename, email, caller, span.traceparent(), &refusal);
  if (refused != nullptr) *refused = refusal;
  span.set("dither.upload.bytes", bytes.size());
  if (stored) {
    span.set("dither.image", stored->uuid.value).set("dither.upload.format", stored->content_type);
  } else {
    // The refusal's code or the error's kind: never the message (it may quote the request).
    span.set_error(!refusal.code.empty() ? refusal.code
                                         : std::string(to_string(stored.error().kind)));
  }
  if (recorded_) {
    // A refusal by its code (quota_exceeded, queue_full...), another failure by its error kind.
    recorded_->uploads
        .with({stored                  ? std::string_view("stored")
               : !refusal.code.empty() ? std::string_view(refusal.code)
                                       : to_string(stored.error().kind)})
        .Increment();
    if (stored) recorded_->sizes.Observe(static_cast<double>(bytes.size()));
  }
  return stored;
}

Result<ImageRecord> UploadService::store(std::span<const uint8_t> bytes, std::string_view filename,
                                         std::string_view email, const Caller& caller,
                                         std::string_view traceparent, Refusal* refused) {
  if (!email.empty() && !mail_format::is_valid_address(email)) {
    return make_error(ErrorKind::kInvalidArgument, "email is not a valid address");
  }
  if (bytes.empty()) return make_error(ErrorKind::kInvalidArgument, "the upload is empty");
  // Quotas and the queue: cheap queries, before any decoding.
  Result<std::optional<Refusal>> refusal = admit(caller, static_cast<int64_t>(bytes.size()));
  if (!refusal) return refusal.error();
  if (refusal->has_value()) {
    if (refused != nullptr) *refused = **refusal;
    return (*refusal)->error();
  }
  // verify() checks size, sniffed format and header pixel count first (probe), then reads every
  // pixel as the dithering service's decode() will (a JPEG at 1/8 scale: the same entropy
  // decoding, a fraction of the work), so that a file the dither would refuse is refused here;
  // the size is the displayed one (EXIF orientation applied).
  using Clock = std::chrono::steady_clock;
  const auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  // Each stage a span under the upload's (`traceparent`), ended with its scope.
  const auto stage = [&](std::string_view name) {
    return observability::start_span(tracer_, name, observability::SpanKind::kInternal,
                                     traceparent);
  };
  const Clock::time_point verifying = Clock::now();
  observability::Span verify_span = stage("verify");
  Result<imaging::ImageInfo> decoded = imaging::verify(bytes, limits_);
  verify_span.end();
  const double verify_ms = ms_since(verifying);
  if (!decoded) return decoded.error();
  const imaging::InputFormat format = decoded->format;

  const std::string_view ext = imaging::to_string(format);
  ImageRecord record;
  record.uuid = new_image_id();
  record.filename = clean_filename(filename, ext);
  record.content_type = std::string(imaging::content_type(format));
  record.size = static_cast<int64_t>(bytes.size());
  record.width = decoded->width;
  record.height = decoded->height;
  record.frames = decoded->frames;  // verify() checked them against the animation limits
  record.email = std::string(email);
  record.owner = caller.owner;
  record.blob_key = ObjectKey{"originals/" + record.uuid.value + "." + std::string(ext)};
  record.url = blobs_.public_url(record.blob_key);
  record.status = std::string(kStatusPending);

  const Clock::time_point storing = Clock::now();
  observability::Span store_span = stage("store");
  if (Status s = blobs_.put(record.blob_key, bytes, record.content_type); !s) return s.error();
  store_span.end();
  const double store_ms = ms_since(storing);
  const Clock::time_point recording = Clock::now();
  observability::Span record_span = stage("record");

  ImageUploadedEvent event;
  event.uuid = record.uuid;
  event.url = record.url;
  event.filename = record.filename;
  event.blob_key = record.blob_key;
  event.content_type = record.content_type;
  event.size = record.size;
  event.width = record.width;
  event.height = record.height;
  event.frames = record.frames;
  event.email = record.email;
  event.owner = record.owner;
  Message message = make_message(topics_.image, kImageUploaded, record.uuid.value,
                                 image_uploaded_body(event), traceparent);
  trace_publish(tracer_, message, record_span.traceparent());
  Result<ImageRecord> inserted = images_.insert_image(record, message);
  if (!inserted) {
    // Normally the row and its event were rolled back together and the blob must go too. But a
    // store that became unreachable may have lost the answer to a commit that happened: then
    // the row decides, and while it cannot be read the blob stays (an orphan at worst, which the
    // embedded start-up sweep removes; never a row without its original).
    if (inserted.error().kind == ErrorKind::kUnavailable) {
      Result<ImageRecord> committed = images_.get_image(record.uuid);
      if (committed) {
        if (outbox_written_) outbox_written_();
        return committed;
      }
      if (committed.error().kind != ErrorKind::kNotFound) {
        spdlog::warn("upload {}: the insert's outcome is unknown ({}); keeping its blob",
                     record.uuid.value, inserted.error().message);
        return inserted.error();
      }
    }
    if (Status s = blobs_.remove(record.blob_key); !s) {
      spdlog::error("upload {}: cannot remove the blob after a failed insert: {}",
                    record.uuid.value, s.error().message);
    }
    return inserted.error();
  }
  if (outbox_written_) outbox_written_();
  if (recorded_) {
    recorded_->stages.with({"verify"}).Observe(verify_ms / 1e3);
    recorded_->stages.with({"store"}).Observe(store_ms / 1e3);
    recorded_->stages.with({"record"}).Observe(ms_since(recording) / 1e3);
  }
  // Where the time goes (scripts/bench/services.py reads it).
  spdlog::info("upload {} stored: {} bytes, verify {:.1f} ms, store {:.1f} ms, record {:.1f} ms",
               record.uuid.value, bytes.size(), verify_ms, store_ms, ms_since(recording));
  return inserted;
}

Result<ImageRecord> UploadService::get(std::string_view uuid, const Caller& caller) {
  Result<ImageId> id = parse_image_id(uuid);
  if (!id) return id.error();
  Result<ImageRecord> image = images_.get_image(*id);
  // Another owner's image answers exactly as an unknown one (no existence oracle).
  if ((!image && image.error().kind == ErrorKind::kNotFound) ||
      (image && !caller.may_reach(image->owner))) {
    return make_error(ErrorKind::kNotFound, "no image " + id->value);
  }
  return image;
}

Result<Page<ImageRecord>> UploadService::list(const PageRequest& page) {
  return images_.list_images(page);
}

Result<ImageRecord> UploadService::remove(std::string_view uuid, const Caller& caller,
                                          std::string_view traceparent) {
  Result<ImageId> id = parse_image_id(uuid);
  if (!id) return id.error();
  Result<ImageRecord> existing = get(id->value, caller);
  if (!existing) return existing.error();
  // The blob first: if the process dies after this, a retried DELETE finds the row and finishes.
  if (Status s = blobs_.remove(existing->blob_key); !s) return s.error();
  if (Status s = blobs_.remove(thumbnail_key_of(existing->blob_key)); !s) return s.error();
  Message message =
      make_message(topics_.image, kImageDeleted, id->value, uuid_body(*id), traceparent);
  trace_publish(tracer_, message, traceparent);
  Result<ImageRecord> removed = images_.delete_image(*id, message);
  if (!removed) return removed.error();
  if (outbox_written_) outbox_written_();
  return removed;
}

Status UploadService::on_dither_message(const Message& message) {
  const observability::Span span = trace_consume(tracer_, message);
  const std::string_view type = message.message_type();
  const bool uploaded = type == kDitherUploaded;
  const bool failed = type == kDitherFailed;
  if (uploaded || failed) {
    Result<DitherEvent> e = read_dither_event(message.body);
    if (!e) return e.error();
    DitherSummary summary;
    summary.dither_id = e->dither_id;
    summary.status = std::string(uploaded ? kStatusFinished : kStatusFailed);
    summary.url_dither = e->url_dither;
    summary.channels = e->channels;
    summary.algorithm = e->algorithm;
    summary.palette = e->palette;
    summary.format = e->format;
    summary.error = e->error;
    summary.created_at = now_millis();
    Result<bool> changed = uploaded ? images_.mark_finished(e->uuid, summary, message.dedupe_id())
                                    : images_.mark_failed(e->uuid, summary, message.dedupe_id());
    if (!changed) return changed.error();
    return {};
  }
  if (type == kDitherDeleted) {
    // With dither_id only that dither went; without it (the prototype's body) all of them.
    Result<DitherDeletedEvent> e = read_dither_deleted(message.body);
    if (!e) return e.error();
    Result<bool> changed =
        e->dither_id ? images_.mark_dither_deleted(e->uuid, *e->dither_id, message.dedupe_id())
                     : images_.mark_dithers_deleted(e->uuid, message.dedupe_id());
    if (!changed) return changed.error();
    return {};
  }
  return {};  // a type this version does not know: ignored (forward compatibility)
}

Status UploadService::health() { return images_.ping(); }

Result<int> UploadService::remove_orphan_originals() {
  Result<std::vector<ObjectKey>> keys = blobs_.list("originals/");
  if (!keys) return keys.error();
  int removed = 0;
  for (const ObjectKey& key : *keys) {
    // originals/<uuid>.<ext>
    const std::string_view name = std::string_view(key.value).substr(10);
    Result<ImageId> uuid = parse_image_id(name.substr(0, name.find('.')));
    if (!uuid) continue;  // not ours
    Result<ImageRecord> record = images_.get_image(*uuid);
    if (record) continue;
    if (record.error().kind != ErrorKind::kNotFound) return record.error();
    if (Status s = blobs_.remove(key); !s) return s.error();
    ++removed;
  }
  return removed;
}

}  // namespace dither
