// The engine's entry point: dither an 8-bit RGB(A) image to a palette.
//
//   Palette palette = Palette::uniform_levels(2);
//   DitherOptions options;                       // Floyd-Steinberg, sRGB, raster order
//   Result<Image> out = dither_image(image, palette, options);
//
// The output has the input's size and channel count; every output RGB triple is a palette colour
// and alpha is copied unchanged. Same input and options (seed included) give byte-identical
// output, whatever `options.threads` is. Pure: no I/O, no globals that change.
#pragma once

#include <functional>

#include "common/result.h"
#include "engine/image.h"
#include "engine/options.h"
#include "engine/palette.h"

namespace dither::engine {

// For a source still being written by another thread (a decode running beside the dither):
// `wait(n)` returns once the top n rows of the image are final. Error diffusion reads rows as they
// come; the other algorithms wait for the whole image first. The output does not depend on it.
using SourceRows = std::function<void(int rows)>;

Result<Image> dither_image(const Image& image, const Palette& palette, const DitherOptions& options,
                           const SourceRows& wait = {});

// The same, into `out`, whose buffer is reused when it already has the right size: for callers
// that dither many images of one size (a fresh 36 MB buffer costs page faults on every call).
// For error diffusion `out` may be `image` itself (in place: one buffer instead of two).
Status dither_into(const Image& image, const Palette& palette, const DitherOptions& options,
                   Image& out, const SourceRows& wait = {}, const SourceRows& done = {});

// Nearest-neighbour enlargement by an integer factor (1..16), for crisp pixel art after dithering.
Image upscale_nearest(const Image& image, int factor);

}  // namespace dither::engine
