#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace dither {

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  size_t filled = 0;
  while (filled < n) {
    const ssize_t got = getrandom(out.data() + filled, n - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::fputs("fatal: getrandom failed: no randomness for secrets\n", stderr);
      std::abort();
    }
    filled += static_cast<size_t>(got);
  }
  return out;
}

std::string random_token(size_t n) { return base64url(random_bytes(n)); }

std::string random_hex(size_t n) { return to_hex(random_bytes(n)); }

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  return HmacSha256(key)(data);
}

namespace {

constexpr size_t kShaBlock = 64;
constexpr size_t kShaDigest = 32;

[[noreturn]] void crypto_failed() {
  std::fputs("fatal: libcrypto failed in SHA-256\n", stderr);
  std::abort();
}

// SHA-256 looked up in OpenSSL's providers once for the process (an implicit look-up on every
// call is what made the one-shot HMAC slow).
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (fetched == nullptr) crypto_failed();
    return fetched;  // kept for the life of the process
  }();
  return md;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

MdCtx new_ctx() {
  MdCtx c(EVP_MD_CTX_new());
  if (!c) crypto_failed();
  return c;
}

// A digest context that has absorbed `block` (one SHA-256 block).
MdCtx absorbed(const unsigned char* block) {
  MdCtx c = new_ctx();
  if (EVP_DigestInit_ex(c.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(c.get(), block, kShaBlock) != 1) {
    crypto_failed();
  }
  return c;
}

// Continues a copy of `prefix` with `data` and returns the digest.
void digest_after(const EVP_MD_CTX* prefix, const void* data, size_t size, unsigned char* out) {
  thread_local MdCtx scratch = new_ctx();
  unsigned int length = 0;
  if (EVP_MD_CTX_copy_ex(scratch.get(), prefix) != 1 ||
      EVP_DigestUpdate(scratch.get(), data, size) != 1 ||
      EVP_DigestFinal_ex(scratch.get(), out, &length) != 1 || length != kShaDigest) {
    crypto_failed();
  }
}

}  // namespace

// RFC 2104: H((K ^ opad) || H((K ^ ipad) || m)), K padded (or first hashed) to one block.
struct HmacSha256::State {
  MdCtx inner, outer;  // after (K ^ ipad) and (K ^ opad); only ever copied from
};

HmacSha256::HmacSha256() : HmacSha256(std::string_view()) {}

HmacSha256::HmacSha256(std::string_view key) {
  unsigned char block[kShaBlock] = {};
  if (key.size() > kShaBlock) {
    unsigned int length = 0;
    if (EVP_Digest(key.data(), key.size(), block, &length, sha256_md(), nullptr) != 1) {
      crypto_failed();
    }
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[kShaBlock];
  auto state = std::make_shared<State>();
  for (size_t i = 0; i < kShaBlock; ++i) pad[i] = block[i] ^ 0x36;
  state->inner = absorbed(pad);
  for (size_t i = 0; i < kShaBlock; ++i) pad[i] = block[i] ^ 0x5c;
  state->outer = absorbed(pad);
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
  state_ = std::move(state);
}

std::string HmacSha256::operator()(std::string_view data) const {
  unsigned char inner[kShaDigest];
  std::string out(kShaDigest, '\0');
  digest_after(state_->inner.get(), data.data(), data.size(), inner);
  digest_after(state_->outer.get(), inner, sizeof inner,
               reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}
}  // namespace

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> from_base64url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value_of(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // The leftover bits must be zero, so that each byte string has exactly one encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dither
