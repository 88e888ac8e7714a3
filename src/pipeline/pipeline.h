// Bytes in, bytes out: decode, resize, dither, upscale, encode.
//
// The one function the command-line tool and the dithering service both call. Limits are
// checked before any pixel is decoded (header) and again for the size after resize and upscale,
// so no option can make the engine allocate past them.
//
//   ProcessOptions o;                       // FS, levels:2, PNG
//   Result<Processed> r = process(bytes, o, imaging::Limits{});
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "engine/image.h"
#include "imaging/codec.h"
#include "pipeline/process_options.h"

namespace dither {

struct Processed {
  std::vector<uint8_t> bytes;  // encoded in `format`
  imaging::OutputFormat format = imaging::OutputFormat::kPng;
  int width = 0;
  int height = 0;
};

// Resize, dither and upscale an already decoded image.
Result<Image> process_image(const Image& decoded, const ProcessOptions& options,
                            const imaging::Limits& limits);

// The whole path from encoded input to encoded output. For error diffusion without a resize, the
// decoder runs on a second thread and the dither follows its rows, in place.
Result<Processed> process(std::span<const uint8_t> input, const ProcessOptions& options,
                          const imaging::Limits& limits);

}  // namespace dither
