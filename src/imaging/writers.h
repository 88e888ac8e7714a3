// The encoders behind encode(), one per output format, each calling its C library directly so
// that no pixel is re-quantised on the way out.
//
// Internal to dither_imaging. Callers have checked the image (non-empty, 3 or 4 channels, buffer
// size matches).
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "engine/image.h"
#include "imaging/codec.h"
#include "imaging/color_index.h"

namespace dither::imaging::internal {

// libdeflate's compression level for PNG image data, by PngEffort (codec.h).
int png_deflate_level(PngEffort effort);
// Indexed PNG at the smallest bit depth for ix.palette.size(); tRNS when any alpha != 255 (ix
// built with AlphaMode::kOneTransparent: one entry for every fully transparent pixel).
Result<std::vector<uint8_t>> write_png_indexed(int width, int height, const IndexedImage& ix,
                                               int level);
// 8-bit RGB or RGBA PNG, as img.channels says.
Result<std::vector<uint8_t>> write_png_truecolor(const engine::Image& img, int level);
// GIF89a with a global colour table; ix built with AlphaMode::kBinary, so the transparent entry,
// if any, is palette[0] with alpha 0.
Result<std::vector<uint8_t>> write_gif(int width, int height, const IndexedImage& ix);
// Lossless WebP, exact RGB under transparent pixels too.
Result<std::vector<uint8_t>> write_webp(const engine::Image& img);

}  // namespace dither::imaging::internal
