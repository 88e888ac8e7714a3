// API keys (docs/SECURITY.md): "dk_<id>_<secret>", the id public (48 random bits), the secret 256
// random bits; only HMAC-SHA256(pepper, key) is stored.
//
//   Result<NewApiKey> k = make_api_key("", "laptop", false, pepper);   // show k->key once
//   store.insert_key(k->record);
//   std::optional<std::string> id = api_key_id(presented);            // then get_key(*id) and
//   constant_time_equal(api_key_hash(pepper, presented), record.hash)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/crypto.h"
#include "common/result.h"
#include "ports/identity.h"

namespace dither {

struct NewApiKey {
  std::string key;  // the whole key: shown once, never stored or logged
  ApiKeyRecord record;
};

// A new key of `owner` ("" = an owner of its own, "key:<id>"). kInvalidArgument for an owner
// that is not 1-64 characters of [A-Za-z0-9._:@-], or a name that is not 1-100 characters
// (code points) of UTF-8 without control characters (C0, DEL).
Result<NewApiKey> make_api_key(std::string_view owner, std::string_view name, bool admin,
                               std::string_view pepper);
// The id of a well-formed key ("dk_" + id + "_" + 43 base64url characters), or nullopt.
std::optional<std::string> api_key_id(std::string_view key);
// hex HMAC-SHA256(pepper, key); the second form with the pepper prepared once (HmacSha256), for
// a server that hashes every presented key.
std::string api_key_hash(std::string_view pepper, std::string_view key);
std::string api_key_hash(const HmacSha256& peppered, std::string_view key);
bool is_valid_owner(std::string_view owner);
// A key id as made here: "k" + 11 lower-case hex digits.
bool is_valid_key_id(std::string_view id);

}  // namespace dither
