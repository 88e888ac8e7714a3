// Small cryptographic helpers over OpenSSL's libcrypto: the operating system's CSPRNG, SHA-256,
// HMAC-SHA256, base64url and constant-time comparison. Everything that grants access (uuids, API
// keys, session ids, link signatures) is made from these, never from a seeded generator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace dither {

// `n` bytes from the CSPRNG (getrandom). Aborts the process if the kernel cannot give them: there
// is no safe way on without randomness.
std::string random_bytes(size_t n);
// `n` random bytes as base64url without padding (32 bytes -> 43 characters).
std::string random_token(size_t n = 32);
// `n` random bytes as lower-case hex (2n characters).
std::string random_hex(size_t n);

// Raw 32-byte digests.
std::string sha256(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);

// HMAC-SHA256 under one key, prepared once: the key's two padded blocks are hashed when it is
// made, so each message then costs only its own blocks (hmac_sha256() above redoes the key, and
// OpenSSL's look-up of the algorithm, on every call: a fifth of a gateway's CPU per request when
// every answer carries signed links). Same results as hmac_sha256(key, data); immutable, so one
// object is used from any number of threads; cheap to copy.
//
//   const HmacSha256 mac(secret);
//   std::string tag = mac(message);  // raw 32 bytes
class HmacSha256 {
 public:
  HmacSha256();  // the empty key
  explicit HmacSha256(std::string_view key);
  std::string operator()(std::string_view data) const;

 private:
  struct State;
  std::shared_ptr<const State> state_;
};

std::string to_hex(std::string_view bytes);
// base64url (RFC 4648 section 5) without padding, and back (nullopt for anything else).
std::string base64url(std::string_view bytes);
std::optional<std::string> from_base64url(std::string_view text);

// Equal length and bytes, in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace dither
