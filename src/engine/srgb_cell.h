// Internal: the sample cell index of error diffusion's sRGB list-palette path
// (error_diffusion_impl.h), apart so that a test can check it against the scalar formula for
// every input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/color.h"

#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

namespace dither::engine::detail {

// R, G, B and an unused lane, as error diffusion carries them.
using SrgbCellInput = int32_t __attribute__((vector_size(16)));

// Quantizer::CellTableOf::nearest()'s cell index in sRGB mode, (w + 128) / 1028 per channel
// (shifted 12, 6 and 0) for w = v clamped to 0..kWorkingMax: a dozen instructions, where
// extracting each lane, clamping and dividing it as a scalar took about thirty, and a shorter
// serial chain from a pixel's value to its error. Exact for every v: the saturating pack is the
// clamp; w + 128 saturates at 65535, in the same cell (63) as 65663 would; and x / 1028 equals
// (x - x / 256) / 1024 for every 16-bit x. Lane 3 must be zero (or below 900): its cell would
// land in bits 16 and 17 of the index.
[[gnu::always_inline]] inline size_t srgb_cell(SrgbCellInput v) {
#if defined(__SSE4_1__)
  const __m128i w = _mm_packus_epi32(reinterpret_cast<__m128i>(v), reinterpret_cast<__m128i>(v));
  const __m128i x = _mm_adds_epu16(w, _mm_set1_epi16(128));
  const __m128i c = _mm_srli_epi16(_mm_sub_epi16(x, _mm_srli_epi16(x, 8)), 10);
  // Words r, g, b, 0 as one 64-bit integer, r | g << 16 | b << 32; one multiply places copies of
  // the cells at r << 44, g << 38 and b << 32 (bits 32..49, which no other copy reaches).
  const auto cells = static_cast<uint64_t>(_mm_cvtsi128_si64(c));
  constexpr uint64_t kPlace = (uint64_t{1} << 44) + (uint64_t{1} << 22) + 1;
  return static_cast<size_t>((cells * kPlace) >> 32) & 0x3ffff;
#else
  auto cell = [](int w) { return static_cast<size_t>(std::clamp(w, 0, kWorkingMax) + 128) / 1028; };
  return (cell(v[0]) << 12) | (cell(v[1]) << 6) | cell(v[2]);
#endif
}

}  // namespace dither::engine::detail
