// Synthetic test images, generated in the tests (no image files are committed).
#pragma once

#include <cstdint>

#include "engine/image.h"

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

}  // namespace dither::engine::testing
