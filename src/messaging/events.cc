#include "messaging/events.h"

#include <boost/json.hpp>
#include <cstdint>
#include <ctime>
#include <limits>

#include "ports/identity.h"

namespace dither {
namespace {

namespace json = boost::json;

Result<json::object> parse_object(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return make_error(ErrorKind::kInvalidArgument, "message body is not a JSON object");
  }
  return std::move(v.as_object());
}

std::string string_field(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->as_string());
}

int64_t int_field(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return 0;
}

// A body without an owner (the prototype's) belongs to the system owner.
std::string owner_field(const json::object& o) {
  std::string owner = string_field(o, "owner");
  return owner.empty() ? std::string(kSystemOwner) : owner;
}

Result<ImageId> uuid_field(const json::object& o) {
  const std::string text = string_field(o, "uuid");
  if (text.empty()) return make_error(ErrorKind::kInvalidArgument, "message body has no uuid");
  return parse_image_id(text);
}

}  // namespace

std::string image_uploaded_body(const ImageUploadedEvent& e) {
  json::object o;
  o["uuid"] = e.uuid.value;
  o["url"] = e.url;
  o["filename"] = e.filename;
  o["blob_key"] = e.blob_key.value;
  o["content_type"] = e.content_type;
  o["size"] = e.size;
  o["width"] = e.width;
  o["height"] = e.height;
  o["frames"] = e.frames;
  if (!e.email.empty()) o["email"] = e.email;
  o["owner"] = e.owner;
  return json::serialize(o);
}

std::string dither_event_body(const DitherEvent& e, bool failed) {
  json::object o;
  o["uuid"] = e.uuid.value;
  if (failed) {
    o["error"] = e.error;
  } else {
    o["url_dither"] = e.url_dither;
  }
  o["dither_id"] = e.dither_id;
  o["channels"] = e.channels;
  o["algorithm"] = e.algorithm;
  o["palette"] = e.palette;
  o["format"] = e.format;
  o["source"] = e.source;
  if (!e.url.empty()) o["url"] = e.url;
  if (!e.filename.empty()) o["filename"] = e.filename;
  if (!e.email.empty()) o["email"] = e.email;
  o["owner"] = e.owner;
  return json::serialize(o);
}

std::string uuid_body(const ImageId& uuid) {
  json::object o;
  o["uuid"] = uuid.value;
  return json::serialize(o);
}

std::string dither_deleted_body(const DitherDeletedEvent& e) {
  json::object o;
  o["uuid"] = e.uuid.value;
  if (e.dither_id) o["dither_id"] = *e.dither_id;
  return json::serialize(o);
}

Result<ImageUploadedEvent> read_image_uploaded(std::string_view body) {
  Result<json::object> o = parse_object(body);
  if (!o) return o.error();
  Result<ImageId> uuid = uuid_field(*o);
  if (!uuid) return uuid.error();
  ImageUploadedEvent e;
  e.uuid = std::move(*uuid);
  e.url = string_field(*o, "url");
  e.filename = string_field(*o, "filename");
  e.blob_key = ObjectKey{string_field(*o, "blob_key")};
  // The Python prototype's body has no blob_key: then the original is fetched from `url`.
  const bool by_url =
      e.blob_key.value.empty() && (e.url.starts_with("http://") || e.url.starts_with("https://"));
  if (!by_url && !is_valid_object_key(e.blob_key.value)) {
    return make_error(ErrorKind::kInvalidArgument, "IMAGE_UPLOADED for " + e.uuid.value +
                                                       " has neither a valid blob_key nor an "
                                                       "http(s) url");
  }
  e.content_type = string_field(*o, "content_type");
  e.size = int_field(*o, "size");
  e.width = static_cast<int>(int_field(*o, "width"));
  e.height = static_cast<int>(int_field(*o, "height"));
  // Bodies of before animations have no frames: a still image.
  const int64_t frames = int_field(*o, "frames");
  e.frames =
      frames >= 1 && frames <= std::numeric_limits<int>::max() ? static_cast<int>(frames) : 1;
  e.email = string_field(*o, "email");
  e.owner = owner_field(*o);
  return e;
}

Result<DitherEvent> read_dither_event(std::string_view body) {
  Result<json::object> o = parse_object(body);
  if (!o) return o.error();
  Result<ImageId> uuid = uuid_field(*o);
  if (!uuid) return uuid.error();
  DitherEvent e;
  e.uuid = std::move(*uuid);
  e.dither_id = int_field(*o, "dither_id");
  e.url_dither = string_field(*o, "url_dither");
  e.error = string_field(*o, "error");
  e.channels = static_cast<int>(int_field(*o, "channels"));
  e.algorithm = string_field(*o, "algorithm");
  e.palette = string_field(*o, "palette");
  e.format = string_field(*o, "format");
  e.source = string_field(*o, "source");
  e.url = string_field(*o, "url");
  e.filename = string_field(*o, "filename");
  e.email = string_field(*o, "email");
  e.owner = owner_field(*o);
  return e;
}

Result<ImageId> read_uuid(std::string_view body) {
  Result<json::object> o = parse_object(body);
  if (!o) return o.error();
  return uuid_field(*o);
}

Result<DitherDeletedEvent> read_dither_deleted(std::string_view body) {
  Result<json::object> o = parse_object(body);
  if (!o) return o.error();
  Result<ImageId> uuid = uuid_field(*o);
  if (!uuid) return uuid.error();
  DitherDeletedEvent e;
  e.uuid = std::move(*uuid);
  const json::value* id = o->if_contains("dither_id");
  if (id != nullptr && !id->is_null()) {
    const bool positive =
        (id->is_int64() && id->as_int64() > 0) ||
        (id->is_uint64() && id->as_uint64() > 0 &&
         id->as_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    if (!positive) {
      return make_error(
          ErrorKind::kInvalidArgument,
          "DITHER_DELETED for " + e.uuid.value + " has a dither_id that is not a positive integer");
    }
    e.dither_id = id->is_int64() ? id->as_int64() : static_cast<int64_t>(id->as_uint64());
  }
  return e;
}

std::string iso_time(int64_t millis) {
  const std::time_t secs = static_cast<std::time_t>(millis / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buf,
                static_cast<int>(millis % 1000));
  return out;
}

}  // namespace dither
