// The engine's entry point: dither an 8-bit RGB(A) image to a palette.
//
//   Palette palette = Palette::uniform_levels(2);
//   DitherOptions options;                       // Floyd-Steinberg, sRGB, raster order
//   Result<Image> out = dither_image(image, palette, options);
//
// The output has the input's size and channel count; every output RGB triple is a palette colour
// and alpha is what `options.alpha` says (copied unchanged by default; with AlphaMode::kFlatten
// the output is RGB). Same input and options (seed included) give byte-identical output,
// whatever `options.threads` is. Pure: no I/O, no globals that change.
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

// Direct binary search takes at most this many pixels (2048x2048): about 5 s with 8 colours and
// half a minute with 256 on one core, and 28 bytes a pixel. Larger images are refused (resize
// first); the other algorithms have no bound of their own.
inline constexpr size_t kMaxDbsPixels = size_t{2048} * 2048;

// AlphaMode::kFlatten's first step: an RGBA image composited over `background` in linear light,
// as an RGB image (docs/TRANSPARENCY.md has the exact arithmetic); an RGB image is returned
// unchanged. For callers that need the flattened pixels first (an adaptive palette).
Image flatten_alpha(const Image& image, Color background);

// Nearest-neighbour enlargement by an integer factor (1..16), for crisp pixel art after dithering.
Image upscale_nearest(const Image& image, int factor);

}  // namespace dither::engine
