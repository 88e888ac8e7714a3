// FNV-1a, 64 bits: a fast, non-cryptographic hash whose value never changes across builds and
// machines (content-derived message ids, file names, HTTP validators). Not for anything an
// attacker may want to collide.
//
//   uint64_t h = fnv1a("type");
//   h = fnv1a(body, h);  // continues over more bytes
#pragma once

#include <cstdint>
#include <string_view>

namespace dither {

inline constexpr uint64_t kFnv1aOffsetBasis = 14695981039346656037ull;

inline uint64_t fnv1a(std::string_view bytes, uint64_t hash = kFnv1aOffsetBasis) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace dither
