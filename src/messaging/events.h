// The bodies of the five message types (SPEC section 4), built and read in one place.
//
// Bodies are JSON objects. Every body keeps the Python prototype's fields (IMAGE_UPLOADED
// `uuid, url, filename`; DITHER_UPLOADED `uuid, url_dither`; IMAGE_DELETED, DITHER_DELETED
// `uuid`) so a consumer written for the prototype understands ours; the rest are additions, and
// readers ignore fields they do not know. DITHER_DELETED adds `dither_id` when only that one
// dither of the image was deleted; without it, every dither of the image went. IMAGE_UPLOADED and
// DITHER_UPLOADED/FAILED carry the image's `owner` (version 1.1; absent: the system owner).
// IMAGE_UPLOADED carries `frames`, the frames of an animated GIF or WebP (absent, or not a
// positive integer: 1, a still image).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "ports/message.h"
#include "ports/records.h"

namespace dither {

struct ImageUploadedEvent {
  ImageId uuid;
  std::string url;
  std::string filename;
  ObjectKey blob_key;  // where the original is stored (our addition)
  std::string content_type;
  int64_t size = 0;
  int width = 0;
  int height = 0;
  int frames = 1;               // an animated GIF's or WebP's; 1 when the body names none
  std::string email;            // "" when none was given
  std::string owner{"system"};  // who uploaded it; "system" when the body names none
};

// DITHER_UPLOADED (with url_dither) or DITHER_FAILED (with error).
struct DitherEvent {
  ImageId uuid;
  int64_t dither_id = 0;
  std::string url_dither;
  std::string error;
  int channels = 0;
  std::string algorithm;
  std::string palette;
  std::string format;
  std::string source;    // "auto" or "request"
  std::string url;       // the original's URL (for the notification's links); "" if unknown
  std::string filename;  // the original's file name; "" if unknown
  std::string email;     // the original's, for the notification service; "" when none, and ""
                         // when the dither was not asked for by the original's owner (no mail)
  std::string owner{"system"};  // the original's owner; "system" when the body names none
};

// DITHER_DELETED: every dither of `uuid` (no dither_id), or only dither `dither_id`.
struct DitherDeletedEvent {
  ImageId uuid;
  std::optional<int64_t> dither_id;
};

std::string image_uploaded_body(const ImageUploadedEvent& e);
std::string dither_event_body(const DitherEvent& e, bool failed);
// IMAGE_DELETED and DITHER_DELETED of every dither: {"uuid": ...}.
std::string uuid_body(const ImageId& uuid);
// DITHER_DELETED: {"uuid": ...}, plus "dither_id": N when `dither_id` is given.
std::string dither_deleted_body(const DitherDeletedEvent& e);

// Readers: kInvalidArgument when the body is not a JSON object or lacks a required field
// (a message that can never be processed: it goes to the dead-letter topic).
Result<ImageUploadedEvent> read_image_uploaded(std::string_view body);
Result<DitherEvent> read_dither_event(std::string_view body);
Result<ImageId> read_uuid(std::string_view body);
// A DITHER_DELETED body: `dither_id` absent (or null) means every dither of the image; present,
// it must be a positive integer (kInvalidArgument otherwise).
Result<DitherDeletedEvent> read_dither_deleted(std::string_view body);

// ISO 8601 UTC with milliseconds, e.g. "2026-11-30T12:00:00.123Z".
std::string iso_time(int64_t millis);

}  // namespace dither
