// Synthetic test images, generated in the tests (no image files are committed).
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/image.h"
#include "engine/palette.h"

namespace dither::engine::testing {

// A smooth photo-like scene: gradients, a few soft discs, sharp edges and fine texture, from a
// fixed seed. Deterministic.
Image synthetic_photo(int width, int height, int channels = 3, uint32_t seed = 7);
// Every pixel the same colour.
Image flat(int width, int height, uint8_t r, uint8_t g, uint8_t b, int channels = 3);
// Horizontal grey ramp from 0 to 255.
Image grey_ramp(int width, int height);
// Uniform random bytes (alpha too, if channels == 4).
Image noise(int width, int height, int channels, uint32_t seed);

// The palette of a spec such as "ega" or "adaptive:12" (adaptive ones from `image`); the spec
// must be valid.
Palette palette(std::string_view spec, const Image& image = Image());

// Whether every pixel's RGB is a colour of `p`.
bool all_in_palette(const Image& img, const Palette& p);

}  // namespace dither::engine::testing
