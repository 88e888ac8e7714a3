// The messages the services exchange, exactly as Kafka carries them (SPEC section 4).
//
// A message has a topic (its destination), a key (the original image's uuid, so one image's
// messages stay in order), headers and a JSON body. The in-process bus carries the same values, so
// switching to Kafka is configuration only.
//
//   Message m = make_message(topics.image, kImageUploaded, uuid.value, body_json);
//   // m.headers: message_type, version "1.1.0" (1.1: bodies carry `owner`), message_id (new UUID),
//   traceparent (new trace)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dither {

inline constexpr std::string_view kImageUploaded = "IMAGE_UPLOADED";
inline constexpr std::string_view kImageDeleted = "IMAGE_DELETED";
inline constexpr std::string_view kDitherUploaded = "DITHER_UPLOADED";
inline constexpr std::string_view kDitherDeleted = "DITHER_DELETED";
inline constexpr std::string_view kDitherFailed = "DITHER_FAILED";
inline constexpr std::string_view kMessageVersion = "1.1.0";

inline constexpr std::string_view kHeaderMessageType = "message_type";
inline constexpr std::string_view kHeaderVersion = "version";
inline constexpr std::string_view kHeaderMessageId = "message_id";
inline constexpr std::string_view kHeaderTraceparent = "traceparent";

struct Topics {
  std::string image = "images";    // KAFKA_IMAGE_TOPIC
  std::string dither = "dithers";  // KAFKA_DITHER_TOPIC
  // Where a message that can never be processed goes, with the reason: "<topic>.dlq".
  static std::string dead_letter(std::string_view topic) { return std::string(topic) + ".dlq"; }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Message {
  std::string topic;
  std::string key;
  Headers headers;
  std::string body;  // a JSON object

  // The value of a header, if present (first occurrence).
  std::optional<std::string_view> header(std::string_view name) const;
  std::string_view message_type() const { return header(kHeaderMessageType).value_or(""); }
  std::string_view message_id() const { return header(kHeaderMessageId).value_or(""); }
  // What consumers de-duplicate on: the message_id header, or for a message without one (the
  // Python prototype sent only message_type and version) "content:" + a hash of its type, key and
  // body, so the same event delivered twice is still applied once.
  std::string dedupe_id() const;
};

// A message with the four standard headers. `traceparent` continues the given W3C trace context
// (a new span id under the same trace id) or, when empty or malformed, starts a new trace.
Message make_message(std::string topic, std::string_view message_type, std::string key,
                     std::string body, std::string_view traceparent = {});

// A new W3C traceparent "00-<32 hex trace id>-<16 hex span id>-01"; with a valid parent, keeps
// its trace id.
std::string new_traceparent(std::string_view parent = {});

}  // namespace dither
