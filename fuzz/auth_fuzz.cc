// Signed links and key checks (src/auth, common/crypto.h): LinkSigner::verify with a fuzzed
// object key, expires and sig (and fuzzed signing keys), api_key_id, and base64url.
//
// Input: fields separated by 0xFF: key1, key2, object key, expires, sig, presented API key,
// base64url text. Missing fields are empty.
//
// Invariants: base64url round-trips both ways and decodes only canonical text; verify() accepts
// (kValid or kExpired) only the exact signature one of the keys makes for that object key and
// that canonical expiry, a link made by sign() verifies, and kUnsigned only without both query
// parameters; api_key_id() accepts exactly "dk_" + "k" + 11 lower-case hex digits + "_" + 43
// base64url characters and returns the id part.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/api_keys.h"
#include "auth/link_signer.h"
#include "common/crypto.h"
#include "fuzz/fuzz_support.h"

namespace {

using namespace dither;

bool is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// The format, written out independently of api_keys.cc.
bool well_formed_key(std::string_view k) {
  if (k.size() != 3 + 12 + 1 + 43 || !k.starts_with("dk_k") || k[15] != '_') return false;
  for (size_t i = 4; i < 15; ++i) {
    if (!is_lower_hex(k[i])) return false;
  }
  for (size_t i = 16; i < k.size(); ++i) {
    if (!is_b64url_char(k[i])) return false;
  }
  return true;
}

void check_base64url(std::string_view text) {
  const std::optional<std::string> bytes = from_base64url(text);
  if (bytes) {
    FUZZ_CHECK(base64url(*bytes) == text);  // only the canonical encoding decodes
  }
  const std::string encoded = base64url(text);
  for (const char c : encoded) FUZZ_CHECK(is_b64url_char(c));
  FUZZ_CHECK(encoded.size() == (text.size() * 4 + 2) / 3);
  const std::optional<std::string> decoded = from_base64url(encoded);
  FUZZ_CHECK(decoded.has_value() && *decoded == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = fuzz::as_text(data, size);
  const std::string key1(fuzz::next_field(rest, fuzz::kFieldSeparator));
  const std::string key2(fuzz::next_field(rest, fuzz::kFieldSeparator));
  const std::string_view object_key = fuzz::next_field(rest, fuzz::kFieldSeparator);
  const std::string_view expires_field = fuzz::next_field(rest, fuzz::kFieldSeparator);
  const std::string_view sig_field = fuzz::next_field(rest, fuzz::kFieldSeparator);
  const std::string_view presented = fuzz::next_field(rest, fuzz::kFieldSeparator);
  const std::string_view b64 = fuzz::next_field(rest, fuzz::kFieldSeparator);

  check_base64url(b64);
  check_base64url(sig_field);

  // API keys.
  const std::optional<std::string> id = api_key_id(presented);
  FUZZ_CHECK(id.has_value() == well_formed_key(presented));
  if (id) {
    FUZZ_CHECK(*id == presented.substr(3, 12));
    FUZZ_CHECK(is_valid_key_id(*id));
  }

  // Signed links. "-" stands for an absent parameter.
  if (key1.empty() || key2.empty()) return 0;  // keys are never empty
  const LinkSigner signer({key1, key2}, "https://d.example/files/");
  const std::optional<std::string_view> expires =
      expires_field == "-" ? std::nullopt : std::optional<std::string_view>(expires_field);
  const std::optional<std::string_view> sig =
      sig_field == "-" ? std::nullopt : std::optional<std::string_view>(sig_field);
  constexpr int64_t kNow = 1'800'000'000;
  const LinkSigner::Verdict verdict = signer.verify(object_key, expires, sig, kNow);
  FUZZ_CHECK((verdict == LinkSigner::Verdict::kUnsigned) == (!expires && !sig));
  if (verdict == LinkSigner::Verdict::kValid || verdict == LinkSigner::Verdict::kExpired) {
    // Accepted: the expiry is a canonical positive decimal and the signature is exactly one of
    // the keys' HMAC of "<key>\n<expires>".
    FUZZ_CHECK(!expires->empty() && (*expires)[0] >= '1' && (*expires)[0] <= '9');
    std::string signed_data(object_key);
    signed_data += '\n';
    signed_data += *expires;
    FUZZ_CHECK(*sig == base64url(hmac_sha256(key1, signed_data)) ||
               *sig == base64url(hmac_sha256(key2, signed_data)));
    const int64_t when = std::stoll(std::string(*expires));
    FUZZ_CHECK((verdict == LinkSigner::Verdict::kValid) == (when > kNow));
  }

  // What the signer makes, it accepts; only the first key signs.
  const std::string query = signer.query_for(object_key, kNow + 60);
  const size_t amp = query.find("&sig=");
  FUZZ_CHECK(query.starts_with("expires=") && amp != std::string::npos);
  const std::string made_expires = query.substr(8, amp - 8);
  const std::string made_sig = query.substr(amp + 5);
  FUZZ_CHECK(signer.verify(object_key, made_expires, made_sig, kNow) ==
             LinkSigner::Verdict::kValid);
  // A signer with only the second key accepts it only when that key makes the same HMAC (HMAC
  // pads keys with zero bytes: "k" and "k\0" are the same key).
  std::string made_data(object_key);
  made_data += '\n';
  made_data += made_expires;
  const bool same_key = base64url(hmac_sha256(key2, made_data)) == made_sig;
  const LinkSigner second_only({key2}, "https://d.example/files/");
  FUZZ_CHECK(second_only.verify(object_key, made_expires, made_sig, kNow) ==
             (same_key ? LinkSigner::Verdict::kValid : LinkSigner::Verdict::kInvalid));
  const std::string url = signer.sign("https://d.example/files/" + std::string(object_key), kNow);
  if (object_key.find('?') == std::string_view::npos) {
    FUZZ_CHECK(url.ends_with(signer.query_for(object_key, kNow)));
  }
  return 0;
}
