// Signed links to stored files (docs/SECURITY.md): "/files/<key>?expires=<unix s>&sig=<sig>" with
// sig = base64url(HMAC-SHA256(link key, "<key>\n<expires>")). The first key signs; every key
// verifies, so keys rotate without breaking links. The signature covers the object key, not the
// route, so one signature opens a file and its thumbnail.
//
//   LinkSigner signer({key}, "https://dither.example/files/");
//   std::string url = signer.sign(record.url, answer_expiry(now_seconds(), 3600));
//   LinkSigner::Verdict v = signer.verify("originals/x.png", expires, sig, now_seconds());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto.h"

namespace dither {

class LinkSigner {
 public:
  enum class Verdict { kValid, kUnsigned, kInvalid, kExpired };

  LinkSigner() = default;
  // `keys`: the first signs, all verify (each non-empty). `files_prefix`: the absolute URL prefix
  // of files the gateway serves ("<PUBLIC_BASE_URL>/files/"); URLs elsewhere (a public bucket,
  // Cloudinary) are left as they are.
  LinkSigner(const std::vector<std::string>& keys, std::string files_prefix);

  // `url` with "?expires=..&sig=.." when it is under the files prefix; otherwise unchanged.
  // An empty url stays empty.
  std::string sign(std::string_view url, int64_t expires) const;
  // "expires=<expires>&sig=<sig>" for an object key.
  std::string query_for(std::string_view object_key, int64_t expires) const;
  // `expires` and `sig` as they came in the query (absent: nullopt).
  Verdict verify(std::string_view object_key, std::optional<std::string_view> expires,
                 std::optional<std::string_view> sig, int64_t now_seconds) const;

  bool enabled() const { return !macs_.empty(); }

 private:
  std::string signature(const HmacSha256& mac, std::string_view object_key, int64_t expires) const;
  std::vector<HmacSha256> macs_;  // one per key, in the keys' order
  std::string files_prefix_;
};

// When a link made now for an API answer expires: at least `ttl` and less than 2 * `ttl` seconds
// from now, and the same for every answer within one `ttl`-long window, so that the browser's
// cached copy of a file stays valid while its link does not change.
int64_t answer_expiry(int64_t now_seconds, int64_t ttl);
int64_t now_seconds();

}  // namespace dither
