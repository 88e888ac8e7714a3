// Plain reference implementations of every algorithm: the oracle for the engine's fast paths.
//
// Written for obviousness, not speed: whole-image error buffers, brute-force nearest colour over
// the palette, one pixel at a time, one thread. They follow the arithmetic documented in
// docs/ENGINE.md exactly, so the engine must produce byte-identical output for every algorithm,
// palette, option and thread count. Only the tests call it; its library, dither_engine_reference,
// is built only with the tests, and bench/engine_benchmark then links it too (for the synthetic
// photo of test_images.h, not for these functions).
#pragma once

#include <array>
#include <cstdint>

#include "engine/color.h"
#include "engine/image.h"
#include "engine/options.h"
#include "engine/palette.h"

namespace dither::engine::reference {

// The palette in working space, searched by brute force.
struct RefPalette {
  const Palette* palette;
  ColorSpace space;
  Metric metric;
};

// Nearest palette colour to a working-space point: the output colour and its working value.
// Levels palettes, whatever the metric: per channel, the prototype's formula in sRGB (round half
// up of w * (c - 1) / 65535), the nearest level (ties low) in linear light. List palettes: the
// smallest distance by the metric (weighted squared RGB, squared Oklab or Delta E 2000, each
// converted here from its definition in docs/ENGINE-DISTANCE.md), ties to the lowest index.
Color nearest(const RefPalette& p, const std::array<int32_t, 3>& w, std::array<int32_t, 3>* chosen);

// Error diffusion's choice for list palettes (docs/ENGINE.md): the nearest colour to the middle
// of the point's sample cell (nearest 8-bit sample per channel, four samples a cell). For levels
// palettes, the same as nearest().
Color cell_nearest(const RefPalette& p, const std::array<int32_t, 3>& w,
                   std::array<int32_t, 3>* chosen);

// Writes colour c to pixel (x, y) of out (RGB; alpha untouched).
void put(Image& out, int x, int y, Color c);

// Working value of an 8-bit sample.
int32_t to_working(uint8_t sample, ColorSpace space);

// Mean over a list palette's colours of the Chebyshev distance (working values) to the nearest
// other colour (0 for one colour): ordered dithering's and Zhou-Fang's amplitude for lists.
double list_spread(const RefPalette& p);

// The rank 0..63 of (x, y) in the 8x8 Bayer matrix, by the bit-interleave formula.
int bayer8_rank(int x, int y);

// Whole dither, any algorithm and alpha mode (the families below see an image whose alpha is the
// final one; in the error diffusions a pixel of alpha 0 passes no error on).
Image dither(const Image& in, const Palette& palette, const DitherOptions& options);

// Per family (called by dither()).
Image error_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o);
Image ordered(const Image& in, const RefPalette& p, const DitherOptions& o);
Image riemersma(const Image& in, const RefPalette& p, const DitherOptions& o);
Image yliluoma(const Image& in, const RefPalette& p, const DitherOptions& o);
Image dot_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o);
Image variable_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o);
Image pattern(const Image& in, const RefPalette& p, const DitherOptions& o);
Image dbs(const Image& in, const RefPalette& p, const DitherOptions& o);

}  // namespace dither::engine::reference
