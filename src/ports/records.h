// The data the services keep, as plain values shared by ports, adapters and services.
//
// Field names follow the Python prototype (`uuid, filename, status, url, url_dither` for images;
// `id, uuid, channels, url_dither` for dithers) so JSON built from these records keeps them.
// Times are milliseconds since the Unix epoch (UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither {

// An original image's id: a lower-case canonical UUID (8-4-4-4-12 hex digits).
struct ImageId {
  std::string value;
  friend bool operator==(const ImageId&, const ImageId&) = default;
};

// Parses a UUID in canonical form (either case); anything else is kInvalidArgument.
Result<ImageId> parse_image_id(std::string_view text);
// A new random (version 4) UUID.
ImageId new_image_id();

// A dither's id: a positive integer, unique within the dithering service.
struct DitherId {
  int64_t value = 0;
  friend bool operator==(const DitherId&, const DitherId&) = default;
};

// A key in blob storage, e.g. "originals/<uuid>.jpg" or "dithers/<uuid>/<id>.png". Keys use only
// [A-Za-z0-9._/-], never start with '/' and never contain "..".
struct ObjectKey {
  std::string value;
  friend bool operator==(const ObjectKey&, const ObjectKey&) = default;
};
bool is_valid_object_key(std::string_view key);
// Where the preview of the stored file `key` is kept once made: "thumbnails/<key>.webp". Whoever
// removes `key` removes this too.
inline ObjectKey thumbnail_key_of(const ObjectKey& key) {
  return ObjectKey{"thumbnails/" + key.value + ".webp"};
}

// Image status on the upload side (SPEC section 3).
inline constexpr std::string_view kStatusPending = "PENDING";
inline constexpr std::string_view kStatusFinished = "FINISHED";
inline constexpr std::string_view kStatusFailed = "FAILED";
inline constexpr std::string_view kStatusDitherDeleted = "DITHER_DELETED";

// What the upload service learns of a dither from the dither topic (event-carried state), to list
// an image's dithers without asking the dithering service.
struct DitherSummary {
  int64_t dither_id = 0;
  std::string status;  // FINISHED or FAILED
  std::string url_dither;
  int channels = 0;
  std::string algorithm;
  std::string palette;
  std::string format;
  std::string error;
  int64_t created_at = 0;
};

// One uploaded original, owned by the upload service.
struct ImageRecord {
  int64_t id = 0;  // sequence number assigned by the store; the list's order and cursor
  ImageId uuid;
  std::string filename;  // as given by the client, sanitised
  std::string status{kStatusPending};
  std::string url;           // public URL of the original
  std::string url_dither;    // public URL of the latest finished dither, or ""
  std::string content_type;  // sniffed, e.g. "image/jpeg"
  int64_t size = 0;          // bytes
  int width = 0;
  int height = 0;
  int frames = 1;               // of an animated GIF or WebP; 1 for a still image
  std::string email;            // where to send the link, or ""
  std::string error;            // why dithering failed, when status is FAILED
  std::string owner{"system"};  // who uploaded it (ports/identity.h); never changes
  ObjectKey blob_key;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<DitherSummary> dithers;  // filled by get_image only, newest first
};

// One dither of an original, owned by the dithering service. Status is PENDING, FINISHED or
// FAILED.
struct DitherRecord {
  DitherId id;
  ImageId uuid;  // the original
  int channels = 2;
  std::string algorithm;  // canonical option values, as pipeline::describe() gives them
  std::string palette;
  std::string format;        // "png", "gif" or "webp"
  std::string options_json;  // every option, canonical, as a JSON object
  std::string status{kStatusPending};
  std::string url_dither;       // public URL when FINISHED
  ObjectKey blob_key;           // set when FINISHED
  std::string error;            // when FAILED
  std::string request_id;       // what created it: a message_id or an HTTP request id; unique
  std::string traceparent;      // the W3C trace context it was requested under, or ""
  std::string owner{"system"};  // the original's owner (for lists); never changes
  std::string requested_by{"system"};  // who asked for it (the owner for automatic dithers)
  int attempts = 0;  // claims so far (DitherRepository::claim_dithers); internal, not in the API
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// What the dithering service knows of an original, learned from IMAGE_UPLOADED.
struct OriginalRecord {
  ImageId uuid;
  std::string url;
  std::string filename;
  ObjectKey blob_key;
  std::string email;
  std::string owner{"system"};  // from IMAGE_UPLOADED; "system" when the body names none
  // What a dither without a `format` of its own is made as (DitherService): an animation (frames
  // > 1) keeps its format. "" and 1 when the body did not say (the prototype's, older versions).
  std::string content_type{};
  int frames = 1;
};

// A named set of dither options that an owner saved (built-in presets live in the pipeline).
struct PresetRecord {
  std::string owner;         // whose it is
  std::string name;          // unique per owner
  std::string description;   // free text, may be empty
  std::string options_json;  // canonical options, a JSON object of text values
  int64_t created_at = 0;    // ms since the epoch, as the other records
  int64_t updated_at = 0;
};

// A page of a newest-first list. `next_cursor` is empty on the last page.
template <class T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;
};

struct PageRequest {
  int limit = 50;                 // 1..1000
  std::optional<int64_t> before;  // only items with id < before (the previous page's cursor)
  std::string owner;              // only this owner's items; "" = every owner's (admins)
};

int64_t now_millis();

}  // namespace dither
