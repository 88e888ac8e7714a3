// Message bodies of every type through their readers (src/messaging/events.h). Our bodies and the
// Python prototype's (IMAGE_UPLOADED with only uuid, url, filename; DITHER_UPLOADED with uuid,
// url_dither) are both plain JSON read by these functions, so every input goes through all four.
//
// Invariants: what a reader accepts has a canonical uuid, writes back (the *_body() writers) into
// a body the same reader accepts with equal fields, and never an empty owner; an IMAGE_UPLOADED
// either names a valid blob key or an http(s) URL; a DITHER_DELETED dither_id is positive.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "messaging/events.h"
#include "ports/records.h"

namespace {

using namespace dither;

void check_uuid(const ImageId& uuid) {
  const Result<ImageId> again = parse_image_id(uuid.value);
  FUZZ_CHECK(again.ok() && again->value == uuid.value);
}

bool same(const ImageUploadedEvent& a, const ImageUploadedEvent& b) {
  return a.uuid.value == b.uuid.value && a.url == b.url && a.filename == b.filename &&
         a.blob_key.value == b.blob_key.value && a.content_type == b.content_type &&
         a.size == b.size && a.width == b.width && a.height == b.height && a.frames == b.frames &&
         a.email == b.email && a.owner == b.owner;
}

bool same(const DitherEvent& a, const DitherEvent& b) {
  return a.uuid.value == b.uuid.value && a.dither_id == b.dither_id &&
         a.url_dither == b.url_dither && a.error == b.error && a.channels == b.channels &&
         a.algorithm == b.algorithm && a.palette == b.palette && a.format == b.format &&
         a.source == b.source && a.url == b.url && a.filename == b.filename && a.email == b.email &&
         a.owner == b.owner;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body = fuzz::as_text(data, size);

  if (const Result<ImageUploadedEvent> e = read_image_uploaded(body)) {
    check_uuid(e->uuid);
    FUZZ_CHECK(!e->owner.empty());
    FUZZ_CHECK(e->frames >= 1);  // absent or nonsense: a still image
    FUZZ_CHECK(is_valid_object_key(e->blob_key.value) ||
               (e->blob_key.value.empty() &&
                (e->url.starts_with("http://") || e->url.starts_with("https://"))));
    const Result<ImageUploadedEvent> again = read_image_uploaded(image_uploaded_body(*e));
    FUZZ_CHECK(again.ok() && same(*e, *again));
  } else {
    FUZZ_CHECK(e.error().kind == ErrorKind::kInvalidArgument);
  }

  if (const Result<DitherEvent> e = read_dither_event(body)) {
    check_uuid(e->uuid);
    FUZZ_CHECK(!e->owner.empty());
    // A body carries url_dither (DITHER_UPLOADED) or error (DITHER_FAILED), never both.
    const bool failed = !e->error.empty();
    DitherEvent expected = *e;
    (failed ? expected.url_dither : expected.error).clear();
    const Result<DitherEvent> again = read_dither_event(dither_event_body(*e, failed));
    FUZZ_CHECK(again.ok() && same(expected, *again));
  } else {
    FUZZ_CHECK(e.error().kind == ErrorKind::kInvalidArgument);
  }

  if (const Result<ImageId> uuid = read_uuid(body)) {
    check_uuid(*uuid);
    const Result<ImageId> again = read_uuid(uuid_body(*uuid));
    FUZZ_CHECK(again.ok() && again->value == uuid->value);
  } else {
    FUZZ_CHECK(uuid.error().kind == ErrorKind::kInvalidArgument);
  }

  if (const Result<DitherDeletedEvent> e = read_dither_deleted(body)) {
    check_uuid(e->uuid);
    if (e->dither_id) FUZZ_CHECK(*e->dither_id > 0);
    const Result<DitherDeletedEvent> again = read_dither_deleted(dither_deleted_body(*e));
    FUZZ_CHECK(again.ok() && again->uuid.value == e->uuid.value &&
               again->dither_id == e->dither_id);
  } else {
    FUZZ_CHECK(e.error().kind == ErrorKind::kInvalidArgument);
  }

  // Timestamps in bodies and answers, from any 64-bit value.
  if (size >= 8) {
    int64_t millis = 0;
    std::memcpy(&millis, data, sizeof millis);
    const std::string text = iso_time(millis);
    FUZZ_CHECK(!text.empty() && text.back() == 'Z');
  }
  return 0;
}
