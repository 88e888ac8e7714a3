#include "auth/api_keys.h"

#include <algorithm>

#include "common/crypto.h"
#include "common/utf8.h"
#include "ports/records.h"

namespace dither {
namespace {

constexpr std::string_view kPrefix = "dk_";
constexpr size_t kIdLength = 12;
constexpr size_t kSecretLength = 43;  // 32 bytes, base64url

bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool is_base64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

bool is_valid_owner(std::string_view owner) {
  return !owner.empty() && owner.size() <= 64 &&
         std::all_of(owner.begin(), owner.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
         });
}

bool is_valid_key_id(std::string_view id) {
  return id.size() == kIdLength && id[0] == 'k' &&
         std::all_of(id.begin() + 1, id.end(), is_hex_lower);
}

Result<NewApiKey> make_api_key(std::string_view owner, std::string_view name, bool admin,
                               std::string_view pepper) {
  if (!owner.empty() && !is_valid_owner(owner)) {
    return make_error(ErrorKind::kInvalidArgument,
                      "an owner is 1-64 characters of A-Z a-z 0-9 . _ : @ -");
  }
  // Characters as the OpenAPI document counts them (maxLength): code points, not bytes.
  const size_t characters = code_points(name);
  if (characters < 1 || characters > 100 || to_valid_utf8(name) != name ||
      std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return make_error(ErrorKind::kInvalidArgument,
                      "a key's name is 1 to 100 characters of UTF-8 without control characters");
  }
  NewApiKey out;
  ApiKeyRecord& r = out.record;
  r.id = "k" + random_hex(kIdLength / 2).substr(0, kIdLength - 1);
  out.key = std::string(kPrefix) + r.id + "_" + random_token(32);
  r.owner = owner.empty() ? "key:" + r.id : std::string(owner);
  r.name = std::string(name);
  r.admin = admin;
  r.hash = api_key_hash(pepper, out.key);
  r.created_at = now_millis();
  return out;
}

std::optional<std::string> api_key_id(std::string_view key) {
  if (key.size() != kPrefix.size() + kIdLength + 1 + kSecretLength || !key.starts_with(kPrefix)) {
    return std::nullopt;
  }
  const std::string_view id = key.substr(kPrefix.size(), kIdLength);
  const std::string_view secret = key.substr(kPrefix.size() + kIdLength + 1);
  if (!is_valid_key_id(id) || key[kPrefix.size() + kIdLength] != '_' ||
      !std::all_of(secret.begin(), secret.end(), is_base64url)) {
    return std::nullopt;
  }
  return std::string(id);
}

std::string api_key_hash(std::string_view pepper, std::string_view key) {
  return to_hex(hmac_sha256(pepper, key));
}

std::string api_key_hash(const HmacSha256& peppered, std::string_view key) {
  return to_hex(peppered(key));
}

}  // namespace dither
