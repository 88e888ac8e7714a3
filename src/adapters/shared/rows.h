// The records as rows, shared by the SQLite and PostgreSQL repositories: for each record the
// columns its queries select (and RETURN), in order, and the one function that reads a row of
// them. A row is anything that reads its columns by 0-based index: column_text(i),
// column_int64(i), column_int(i) and column_bool(i) (a sqlite::Statement on a row, a
// postgres::Row). The tables themselves differ in types (INTEGER / BIGINT, STRICT) and stay in
// each adapter; their column names are the same.
#pragma once

#include <string_view>

#include "ports/identity.h"
#include "ports/notifications.h"
#include "ports/records.h"

namespace dither::adapters {

inline constexpr std::string_view kImageColumns =
    "id, uuid, filename, status, url, url_dither, content_type, size, width, height, email, "
    "error, blob_key, created_at, updated_at, owner, frames";

template <class Row>
ImageRecord read_image(const Row& row) {
  ImageRecord r;
  r.id = row.column_int64(0);
  r.uuid.value = row.column_text(1);
  r.filename = row.column_text(2);
  r.status = row.column_text(3);
  r.url = row.column_text(4);
  r.url_dither = row.column_text(5);
  r.content_type = row.column_text(6);
  r.size = row.column_int64(7);
  r.width = row.column_int(8);
  r.height = row.column_int(9);
  r.email = row.column_text(10);
  r.error = row.column_text(11);
  r.blob_key.value = row.column_text(12);
  r.created_at = row.column_int64(13);
  r.updated_at = row.column_int64(14);
  r.owner = row.column_text(15);
  r.frames = row.column_int(16);
  return r;
}

// An image's dither summaries (table image_dithers, keyed by image_uuid).
inline constexpr std::string_view kSummaryColumns =
    "dither_id, status, url_dither, channels, algorithm, palette, format, error, created_at";

template <class Row>
DitherSummary read_summary(const Row& row) {
  DitherSummary d;
  d.dither_id = row.column_int64(0);
  d.status = row.column_text(1);
  d.url_dither = row.column_text(2);
  d.channels = row.column_int(3);
  d.algorithm = row.column_text(4);
  d.palette = row.column_text(5);
  d.format = row.column_text(6);
  d.error = row.column_text(7);
  d.created_at = row.column_int64(8);
  return d;
}

inline constexpr std::string_view kOriginalColumns =
    "uuid, url, filename, blob_key, email, owner, content_type, frames";

template <class Row>
OriginalRecord read_original(const Row& row) {
  OriginalRecord r;
  r.uuid.value = row.column_text(0);
  r.url = row.column_text(1);
  r.filename = row.column_text(2);
  r.blob_key.value = row.column_text(3);
  r.email = row.column_text(4);
  r.owner = row.column_text(5);
  r.content_type = row.column_text(6);
  r.frames = row.column_int(7);
  return r;
}

inline constexpr std::string_view kDitherColumns =
    "id, uuid, channels, algorithm, palette, format, options_json, status, url_dither, "
    "blob_key, error, request_id, created_at, updated_at, traceparent, owner, requested_by, "
    "attempts";

template <class Row>
DitherRecord read_dither(const Row& row) {
  DitherRecord r;
  r.id.value = row.column_int64(0);
  r.uuid.value = row.column_text(1);
  r.channels = row.column_int(2);
  r.algorithm = row.column_text(3);
  r.palette = row.column_text(4);
  r.format = row.column_text(5);
  r.options_json = row.column_text(6);
  r.status = row.column_text(7);
  r.url_dither = row.column_text(8);
  r.blob_key.value = row.column_text(9);
  r.error = row.column_text(10);
  r.request_id = row.column_text(11);
  r.created_at = row.column_int64(12);
  r.updated_at = row.column_int64(13);
  r.traceparent = row.column_text(14);
  r.owner = row.column_text(15);
  r.requested_by = row.column_text(16);
  r.attempts = row.column_int(17);
  return r;
}

inline constexpr std::string_view kPresetColumns =
    "owner, name, description, options_json, created_at, updated_at";

template <class Row>
PresetRecord read_preset(const Row& row) {
  PresetRecord r;
  r.owner = row.column_text(0);
  r.name = row.column_text(1);
  r.description = row.column_text(2);
  r.options_json = row.column_text(3);
  r.created_at = row.column_int64(4);
  r.updated_at = row.column_int64(5);
  return r;
}

inline constexpr std::string_view kNotificationColumns =
    "id, uuid, dither_id, kind, mail_from, mail_to, subject, text_part, html_part, "
    "mail_message_id, status, attempts, last_error, next_attempt_at, created_at, updated_at, "
    "sent_at, owner, to_hash";

template <class Row>
Notification read_notification(const Row& row) {
  Notification n;
  n.id = row.column_int64(0);
  n.uuid.value = row.column_text(1);
  n.dither_id = row.column_int64(2);
  n.kind = row.column_text(3);
  n.mail.from = row.column_text(4);
  n.mail.to = row.column_text(5);
  n.mail.subject = row.column_text(6);
  n.mail.text = row.column_text(7);
  n.mail.html = row.column_text(8);
  n.mail.message_id = row.column_text(9);
  n.status = row.column_text(10);
  n.attempts = row.column_int(11);
  n.last_error = row.column_text(12);
  n.next_attempt_at = row.column_int64(13);
  n.created_at = row.column_int64(14);
  n.updated_at = row.column_int64(15);
  n.sent_at = row.column_int64(16);
  n.owner = row.column_text(17);
  n.to_hash = row.column_text(18);
  return n;
}

inline constexpr std::string_view kApiKeyColumns =
    "id, owner, name, admin, hash, created_at, revoked_at";

template <class Row>
ApiKeyRecord read_api_key(const Row& row) {
  ApiKeyRecord k;
  k.id = row.column_text(0);
  k.owner = row.column_text(1);
  k.name = row.column_text(2);
  k.admin = row.column_bool(3);
  k.hash = row.column_text(4);
  k.created_at = row.column_int64(5);
  k.revoked_at = row.column_int64(6);
  return k;
}

inline constexpr std::string_view kSessionColumns =
    "id_hash, owner, created_at, expires_at, revoked_at";

template <class Row>
SessionRecord read_session(const Row& row) {
  SessionRecord s;
  s.id_hash = row.column_text(0);
  s.owner = row.column_text(1);
  s.created_at = row.column_int64(2);
  s.expires_at = row.column_int64(3);
  s.revoked_at = row.column_int64(4);
  return s;
}

}  // namespace dither::adapters
