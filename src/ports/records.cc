#include "ports/records.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <random>

#include "common/crypto.h"

namespace dither {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

Result<ImageId> parse_image_id(std::string_view text) {
  constexpr std::array<size_t, 4> kDashes = {8, 13, 18, 23};
  auto bad = [&] {
    std::string shown(text.substr(0, 64));
    return make_error(ErrorKind::kInvalidArgument,
                      "'" + shown + "' is not a uuid (expected 8-4-4-4-12 hex digits)");
  };
  if (text.size() != 36) return bad();
  std::string out(text);
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_here = i == kDashes[0] || i == kDashes[1] || i == kDashes[2] || i == kDashes[3];
    if (dash_here ? text[i] != '-' : !is_hex(text[i])) return bad();
    out[i] = lower(text[i]);
  }
  return ImageId{std::move(out)};
}

ImageId new_image_id() {
  // From the CSPRNG: a uuid reaches an image's data (docs/SECURITY.md).
  const std::string bytes = random_bytes(16);
  uint64_t r[2] = {0, 0};
  for (int i = 0; i < 16; ++i) {
    r[i / 8] = (r[i / 8] << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  }
  const uint64_t hi = (r[0] & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  const uint64_t lo = (r[1] & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return ImageId{buf};
}

bool is_valid_object_key(std::string_view key) {
  if (key.empty() || key.size() > 512 || key.front() == '/' || key.back() == '/') return false;
  if (key.find("..") != std::string_view::npos || key.find("//") != std::string_view::npos) {
    return false;
  }
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

int64_t now_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace dither
