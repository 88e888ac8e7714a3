#include "auth/link_signer.h"

#include <charconv>
#include <chrono>

#include "common/crypto.h"

namespace dither {

LinkSigner::LinkSigner(const std::vector<std::string>& keys, std::string files_prefix)
    : files_prefix_(std::move(files_prefix)) {
  macs_.reserve(keys.size());
  for (const std::string& key : keys) macs_.emplace_back(key);
}

std::string LinkSigner::signature(const HmacSha256& mac, std::string_view object_key,
                                  int64_t expires) const {
  std::string data(object_key);
  data += '\n';
  data += std::to_string(expires);
  return base64url(mac(data));
}

std::string LinkSigner::query_for(std::string_view object_key, int64_t expires) const {
  return "expires=" + std::to_string(expires) +
         "&sig=" + signature(macs_.front(), object_key, expires);
}

std::string LinkSigner::sign(std::string_view url, int64_t expires) const {
  if (macs_.empty() || files_prefix_.empty() || !url.starts_with(files_prefix_) ||
      url.find('?') != std::string_view::npos) {
    return std::string(url);
  }
  const std::string_view key = url.substr(files_prefix_.size());
  return std::string(url) + "?" + query_for(key, expires);
}

LinkSigner::Verdict LinkSigner::verify(std::string_view object_key,
                                       std::optional<std::string_view> expires,
                                       std::optional<std::string_view> sig, int64_t now) const {
  if (!expires && !sig) return Verdict::kUnsigned;
  if (!expires || !sig || expires->empty() || expires->size() > 12) return Verdict::kInvalid;
  int64_t when = 0;
  const auto [end, ec] = std::from_chars(expires->data(), expires->data() + expires->size(), when);
  if (ec != std::errc{} || end != expires->data() + expires->size() || when <= 0 ||
      (*expires)[0] == '0') {
    return Verdict::kInvalid;
  }
  bool valid = false;
  for (const HmacSha256& mac : macs_) {
    // Every key is tried (no early exit), each comparison in constant time.
    valid = constant_time_equal(signature(mac, object_key, when), *sig) || valid;
  }
  if (!valid) return Verdict::kInvalid;
  if (when <= now) return Verdict::kExpired;
  return Verdict::kValid;
}

int64_t answer_expiry(int64_t now, int64_t ttl) {
  if (ttl <= 0) ttl = 1;
  return (now / ttl) * ttl + 2 * ttl;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace dither
