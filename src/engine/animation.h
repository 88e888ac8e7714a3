// Dithering an animation: every frame with one palette, and without flicker where the source
// does not move.
//
//   std::vector<Image> frames = ...;                    // all one size and channel count
//   Palette p = resolve_palette(spec, frames, ColorSpace::kLinear);   // one for the animation
//   Result<std::vector<Image>> out = dither_frames(frames, p, options, Temporal::kStable);
//   double f = flicker(frames, *out);                   // 0 with kStable
//
// Positional methods (ordered, halftone, blue noise, random, threshold, custom matrices, pattern,
// Yliluoma: the output of a pixel depends on its colour and position only) never change a pixel
// whose source did not change, even with kFresh. Error diffusion (and Riemersma, dot diffusion,
// Ostromoukhov, Zhou-Fang, DBS) does: a change anywhere moves the error through the rest of the
// frame. Temporal::kStable keeps such a pixel as the previous frame showed it; Temporal::kFresh
// dithers every frame on its own. docs/ANIMATION.md has the definitions and the trade-off.
#pragma once

#include <vector>

#include "common/result.h"
#include "engine/dither.h"
#include "engine/image.h"
#include "engine/options.h"
#include "engine/palette.h"

namespace dither::engine {

enum class Temporal {
  // A pixel whose source (RGBA) equals the previous frame's keeps its previous output. The kernel
  // error diffusions (named kernels, custom-kernel) diffuse the error that keeping it makes, so
  // the changed pixels after it make up for it (single-threaded); every other algorithm dithers
  // the frame as dither_image() does and copies the kept pixels over it.
  kStable,
  kFresh,  // every frame dithered on its own, as dither_image() would
};

// The frames dithered with `palette`, in order. Frames must be non-empty, of one size and channel
// count (kInvalidArgument otherwise; options and sizes are checked as dither_image() checks them).
// The first frame is exactly dither_image()'s result; with kFresh every frame is, and with kStable
// so is any frame in which every pixel changed. Deterministic, whatever options.threads says.
// Besides the result, only the previous frame's source and output are read.
Result<std::vector<Image>> dither_frames(const std::vector<Image>& frames, const Palette& palette,
                                         const DitherOptions& options, Temporal temporal);

// The flicker figure: among the pixels whose source (RGBA) is the same in two consecutive frames,
// the share whose output (all its channels) differs, over all consecutive pairs (0 when there is
// no such pixel). `source` and `output` have the same number of frames of one width and height
// (an output may have other channels than its source: RGB after alpha flatten); otherwise
// std::invalid_argument is thrown.
double flicker(const std::vector<Image>& source, const std::vector<Image>& output);

// resolve_palette() for an animation: an adaptive palette is computed over all frames together
// (one palette for the animation) from one image of at most 2^20 pixels: whole frames stacked
// when they fit, else every k-th row of each frame (frame i from row i mod k, so a still scene is
// sampled on different rows), every j-th column only when one row per frame is too many.
// Alpha is not read. Deterministic. One frame: exactly resolve_palette(spec, frame, space).
// Every other kind is the same as for one image.
Palette resolve_palette(const PaletteSpec& spec, const std::vector<Image>& frames,
                        ColorSpace space = ColorSpace::kLinear);

}  // namespace dither::engine
