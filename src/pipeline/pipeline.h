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

namespace dither::pipeline {

// Where process() spent its time, in seconds of wall time (the command line's --timings and
// the benchmarks' stage charts). When the dither follows the decoder (error diffusion without a
// resize), decode and dither overlap on two threads: `dither` is the dither thread's time minus
// `waited`, the time it waited for decoded rows.
struct StageTimes {
  double decode = 0;  // decoding, colour conversion to sRGB included
  double dither = 0;  // resizing, dithering and indexing the colours of finished rows
  double waited = 0;  // the dither waiting for the decoder's rows
  double encode = 0;  // compressing (after the last row) and writing the file's bytes
};

struct Processed {
  std::vector<uint8_t> bytes;  // encoded in `format`
  imaging::OutputFormat format = imaging::OutputFormat::kPng;
  int width = 0;
  int height = 0;
  int frames = 1;  // an animation's frames (GIF or WebP out of an animated GIF or WebP)
  StageTimes stages;
};

// How hard a PNG of this dither is compressed (imaging::PngEffort): error diffusion looks like
// noise to a compressor, everything else like patterns.
imaging::PngEffort png_effort(const engine::DitherOptions& options);

// Resize, dither and upscale an already decoded image.
Result<engine::Image> process_image(const engine::Image& decoded, const ProcessOptions& options,
                                    const imaging::Limits& limits);

// process_image() for every frame of an animation, with one palette over all frames
// (engine::resolve_palette for frames) and options.temporal; delays and loop are kept.
Result<imaging::Animation> process_frames(imaging::Animation animation,
                                          const ProcessOptions& options,
                                          const imaging::Limits& limits);

// The whole path from encoded input to encoded output. For error diffusion without a resize, the
// decoder runs on a second thread and the dither follows its rows, in place. An animated GIF or
// WebP gives an animation when the output is GIF or WebP (process_frames()), its first frame
// when the output is PNG.
Result<Processed> process(std::span<const uint8_t> input, const ProcessOptions& options,
                          const imaging::Limits& limits);

}  // namespace dither::pipeline
