// The encoders behind encode(), one per output format, each calling its C library directly so
// that no pixel is re-quantised on the way out.
//
// Internal to dither_imaging. Callers have checked the image (non-empty, 3 or 4 channels, buffer
// size matches).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/result.h"
#include "engine/image.h"
#include "imaging/codec.h"
#include "imaging/color_index.h"
#include "imaging/parallel_zlib.h"

namespace dither::imaging::internal {

// libdeflate's compression level for PNG image data, by PngEffort (codec.h).
int png_deflate_level(PngEffort effort);
// Indexed PNG at the smallest bit depth for ix.palette.size(); tRNS when any alpha != 255 (ix
// built with AlphaMode::kOneTransparent: one entry for every fully transparent pixel).
Result<std::vector<uint8_t>> write_png_indexed(int width, int height, const IndexedImage& ix,
                                               int level);
// The same from palette indices packed into `data` (pack_png_rows(), at png_bit_depth() of the
// palette's size), whose compression may have started as its rows were made.
Result<std::vector<uint8_t>> write_png_indexed(int width, int height,
                                               const std::vector<Rgba>& palette, ZlibStream& data);
// The smallest PNG bit depth for that many palette entries (1, 2, 4 or 8); the bytes of one row of
// image data at that depth, with its filter byte; rows [first, end) of `indices` (one byte each,
// `width` a row) packed into `data`, which holds every row.
int png_bit_depth(size_t colours);
size_t png_row_bytes(int width, int bit_depth);
void pack_png_rows(const uint8_t* indices, int width, int bit_depth, int first, int end,
                   uint8_t* data);
// 8-bit RGB or RGBA PNG, as img.channels says.
Result<std::vector<uint8_t>> write_png_truecolor(const engine::Image& img, int level);
// GIF89a with a global colour table; ix built with AlphaMode::kBinary, so the transparent entry,
// if any, is palette[0] with alpha 0.
Result<std::vector<uint8_t>> write_gif(int width, int height, const IndexedImage& ix);
// Lossless WebP, exact RGB under transparent pixels too.
Result<std::vector<uint8_t>> write_webp(const engine::Image& img);

// One frame of an animated GIF: a rectangle of the canvas, as indices into the global table.
struct GifFrame {
  int left = 0;
  int top = 0;
  int width = 0;
  int height = 0;
  std::vector<uint8_t> indices;  // width * height, row-major
  int delay_cs = 0;              // 0 to 65535
  int disposal = 1;              // after its delay the rectangle is 1: kept, 2: made transparent
};
// An animated GIF89a (animation.cc plans the frames): the global colour table `palette` (a
// transparent entry, if any, is palette[0] with alpha 0 and is every frame's transparent index),
// a NETSCAPE2.0 extension saying the animation plays 1 + `repeats` times (0: for ever; no
// extension when negative: it plays once), then `frame_count` frames, each filled in by
// `next_frame` just before it is written (so only one frame is held at a time).
Result<std::vector<uint8_t>> write_gif_animation(
    int width, int height, const std::vector<Rgba>& palette, int repeats, int frame_count,
    const std::function<Status(int index, GifFrame& frame)>& next_frame);

}  // namespace dither::imaging::internal
