#include "ports/message.h"

#include <cstdio>
#include <random>

#include "common/crypto.h"
#include "common/hash.h"
#include "ports/records.h"

namespace dither {
namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string random_hex_digits(size_t digits) {
  std::string out = random_hex((digits + 1) / 2).substr(0, digits);
  if (out.find_first_not_of('0') == std::string::npos) out.back() = '1';  // all-zero is invalid
  return out;
}

}  // namespace

std::optional<std::string_view> Message::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string Message::dedupe_id() const {
  if (const std::string_view id = message_id(); !id.empty()) return std::string(id);
  // FNV-1a, 64 bits, over type NUL key NUL body: stable across builds and machines.
  uint64_t h = kFnv1aOffsetBasis;
  const auto mix = [&h](std::string_view part) {
    h = fnv1a(std::string_view("", 1), fnv1a(part, h));
  };
  mix(message_type());
  mix(key);
  mix(body);
  char out[32];
  std::snprintf(out, sizeof out, "content:%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string new_traceparent(std::string_view parent) {
  // version "00" - trace id (32 hex) - parent span id (16 hex) - flags
  std::string trace_id;
  if (parent.size() == 55 && parent.substr(0, 3) == "00-" && parent[35] == '-' &&
      parent[52] == '-' && is_lower_hex(parent.substr(3, 32)) &&
      parent.substr(3, 32) != std::string(32, '0')) {
    trace_id = std::string(parent.substr(3, 32));
  } else {
    trace_id = random_hex_digits(32);
  }
  return "00-" + trace_id + "-" + random_hex_digits(16) + "-01";
}

Message make_message(std::string topic, std::string_view message_type, std::string key,
                     std::string body, std::string_view traceparent) {
  Message m;
  m.topic = std::move(topic);
  m.key = std::move(key);
  m.body = std::move(body);
  m.headers = {
      {std::string(kHeaderMessageType), std::string(message_type)},
      {std::string(kHeaderVersion), std::string(kMessageVersion)},
      {std::string(kHeaderMessageId), new_image_id().value},
      {std::string(kHeaderTraceparent), new_traceparent(traceparent)},
  };
  return m;
}

}  // namespace dither
