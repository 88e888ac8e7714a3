#include "pipeline/pipeline.h"

#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "engine/animation.h"
#include "engine/dither.h"

namespace dither::pipeline {

namespace {

Status check_pixels(uint64_t width, uint64_t height, const imaging::Limits& limits,
                    std::string_view what) {
  if (width * height > limits.max_pixels) {
    return make_error(ErrorKind::kTooManyPixels,
                      std::string(what) + " would be " + std::to_string(width) + "x" +
                          std::to_string(height) + " pixels, over the " +
                          std::to_string(limits.max_pixels) + "-pixel limit");
  }
  return {};
}

// The size after resizing: a missing dimension keeps the aspect ratio.
std::pair<int, int> target_size(const engine::Image& img, int width, int height) {
  if (width == 0 && height == 0) return {img.width, img.height};
  if (width == 0) {
    width =
        std::max(1, static_cast<int>((int64_t{img.width} * height + img.height / 2) / img.height));
  }
  if (height == 0) {
    height =
        std::max(1, static_cast<int>((int64_t{img.height} * width + img.width / 2) / img.width));
  }
  return {width, height};
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

namespace {

// The pixel limits for the size after resizing and after upscaling.
Status check_sizes(int w, int h, const ProcessOptions& options, const imaging::Limits& limits) {
  if (Status s = check_pixels(uint64_t(w), uint64_t(h), limits, "the resized image"); !s) {
    return s;
  }
  const uint64_t up = static_cast<uint64_t>(options.upscale);
  return check_pixels(uint64_t(w) * up, uint64_t(h) * up, limits, "the upscaled image");
}

// The engine's options for this output. GIF holds only 1-bit alpha, so there keep is threshold:
// every pixel that ends transparent then passes no error on, as in the threshold mode.
engine::DitherOptions engine_options(const ProcessOptions& options) {
  engine::DitherOptions d = options.dither;
  if (options.format == imaging::OutputFormat::kGif && d.alpha == engine::AlphaMode::kKeep) {
    d.alpha = engine::AlphaMode::kThreshold;
  }
  return d;
}

// alpha=flatten on an image with alpha: flattened before the palette is chosen (an adaptive
// palette then sees the colours that show) and before the dither, which then has no alpha.
bool flattens(const ProcessOptions& options, const engine::Image& image) {
  return options.dither.alpha == engine::AlphaMode::kFlatten && image.has_alpha();
}

Result<engine::Image> upscaled(engine::Image dithered, const ProcessOptions& options) {
  if (options.upscale > 1) return engine::upscale_nearest(dithered, options.upscale);
  return dithered;
}

}  // namespace

imaging::PngEffort png_effort(const engine::DitherOptions& options) {
  return engine::is_error_diffusion(options.algorithm) ? imaging::PngEffort::kNoisy
                                                       : imaging::PngEffort::kPatterned;
}

namespace {

// Resized (when asked) and flattened (alpha=flatten): what the palette and the dither see. `kept`
// holds the pixels when they are new; otherwise the result points at `decoded`.
Result<const engine::Image*> prepare(const engine::Image& decoded, const ProcessOptions& options,
                                     const imaging::Limits& limits, engine::Image& kept) {
  const auto [w, h] = target_size(decoded, options.width, options.height);
  if (Status s = check_sizes(w, h, options, limits); !s) return s.error();
  const engine::Image* source = &decoded;
  if (w != decoded.width || h != decoded.height) {
    auto r = imaging::resize(decoded, w, h, limits);
    if (!r) return r.error();
    kept = std::move(*r);
    source = &kept;
  }
  if (flattens(options, *source)) {
    kept = engine::flatten_alpha(*source, options.dither.background);
    source = &kept;
  }
  return source;
}

}  // namespace

Result<engine::Image> process_image(const engine::Image& decoded, const ProcessOptions& options,
                                    const imaging::Limits& limits) {
  engine::Image kept;
  Result<const engine::Image*> source = prepare(decoded, options, limits, kept);
  if (!source) return source.error();
  const engine::Palette palette =
      engine::resolve_palette(options.palette, **source, options.dither.color_space);
  auto dithered = engine::dither_image(**source, palette, engine_options(options));
  if (!dithered) return dithered.error();
  return upscaled(std::move(*dithered), options);
}

Result<imaging::Animation> process_frames(imaging::Animation animation,
                                          const ProcessOptions& options,
                                          const imaging::Limits& limits) {
  std::vector<engine::Image>& frames = animation.frames;
  for (engine::Image& frame : frames) {
    engine::Image kept;
    Result<const engine::Image*> source = prepare(frame, options, limits, kept);
    if (!source) return source.error();
    if (*source == &kept) frame = std::move(kept);
  }
  if (!frames.empty()) {
    // Resizing and upscaling must not take the animation past its own pixel limit either.
    const uint64_t up = static_cast<uint64_t>(options.upscale);
    const uint64_t total =
        uint64_t(frames[0].width) * uint64_t(frames[0].height) * up * up * frames.size();
    if (total > limits.max_animation_pixels) {
      return make_error(ErrorKind::kTooManyPixels,
                        "the result would have " + std::to_string(total) + " pixels over " +
                            std::to_string(frames.size()) + " frames, over the " +
                            std::to_string(limits.max_animation_pixels) + "-pixel limit");
    }
  }
  const engine::Palette palette =
      engine::resolve_palette(options.palette, frames, options.dither.color_space);
  auto dithered = engine::dither_frames(frames, palette, engine_options(options), options.temporal);
  if (!dithered) return dithered.error();
  frames = std::move(*dithered);
  for (engine::Image& frame : frames) {
    Result<engine::Image> up = upscaled(std::move(frame), options);
    if (!up) return up.error();
    frame = std::move(*up);
  }
  return animation;
}

namespace {

// An animated GIF or WebP to GIF or WebP: every frame, one palette, delays and loop kept.
Result<Processed> process_animation(std::span<const uint8_t> input, const ProcessOptions& options,
                                    const imaging::Limits& limits) {
  using Clock = std::chrono::steady_clock;
  StageTimes stages;
  Clock::time_point start = Clock::now();
  Result<imaging::Animation> decoded = imaging::decode_animation(input, limits);
  if (!decoded) return decoded.error();
  stages.decode = seconds_since(start);
  start = Clock::now();
  Result<imaging::Animation> dithered = process_frames(std::move(*decoded), options, limits);
  if (!dithered) return dithered.error();
  stages.dither = seconds_since(start);
  start = Clock::now();
  Result<std::vector<uint8_t>> bytes = imaging::encode_animation(*dithered, options.format);
  if (!bytes) return bytes.error();
  stages.encode = seconds_since(start);
  Processed out;
  out.bytes = std::move(*bytes);
  out.format = options.format;
  out.width = dithered->frames.front().width;
  out.height = dithered->frames.front().height;
  out.frames = static_cast<int>(dithered->frames.size());
  out.stages = stages;
  return out;
}

}  // namespace

Result<Processed> process(std::span<const uint8_t> input, const ProcessOptions& options,
                          const imaging::Limits& limits) {
  if (Status s = engine::validate(options.dither); !s) return s.error();
  Result<std::unique_ptr<imaging::DecodeJob>> opened = imaging::DecodeJob::open(input, limits);
  if (!opened) return opened.error();
  std::unique_ptr<imaging::DecodeJob> job = std::move(*opened);
  if (job->info().frames > 1 && options.format != imaging::OutputFormat::kPng) {
    job.reset();
    return process_animation(input, options, limits);
  }
  imaging::DecodeJob& decode = *job;
  Result<engine::Image> image = make_error(ErrorKind::kInternal, "not processed");
  std::optional<Result<std::vector<uint8_t>>> bytes;  // when encoded row by row
  StageTimes stages;
  using Clock = std::chrono::steady_clock;
  if (engine::is_error_diffusion(options.dither.algorithm) && options.width == 0 &&
      options.height == 0 && !flattens(options, decode.image())) {
    // Error diffusion follows the decoder: the decoder runs on a second thread and the dither reads
    // each band of rows once it is final, writing its result over them (in place: one image
    // buffer, not two); without an upscale, each band's colours are indexed for the encoder as
    // soon as it is written. Decoding is the slowest of the three, so the dither needs one thread
    // (threads never change the output).
    engine::Image& pixels = decode.image();
    if (Status s = check_sizes(pixels.width, pixels.height, options, limits); !s) return s.error();
    engine::DitherOptions dither = engine_options(options);
    dither.threads = 1;
    std::optional<imaging::RowEncoder> encoder;
    if (options.upscale <= 1) encoder.emplace(pixels, options.format, png_effort(options.dither));
    Status decoded, dithered;
    {
      std::jthread decoder([&] {
        const Clock::time_point start = Clock::now();
        decoded = decode.run();
        stages.decode = seconds_since(start);
      });
      // Whatever happens below (an error, an exception), the decoder is let finish before the
      // jthread above joins it.
      struct Unblock {
        imaging::DecodeJob& job;
        int height;
        ~Unblock() { job.consumed(height); }
      } unblock{decode, pixels.height};
      const Clock::time_point start = Clock::now();
      const auto wait = [&decode, &stages](int rows) {
        const Clock::time_point waiting = Clock::now();
        decode.wait_rows(rows);
        stages.waited += seconds_since(waiting);
      };
      // An adaptive palette is computed from the whole image; so is alpha=dither's alpha plane
      // (waited for here, before the decoder is held back below).
      if (options.palette.kind == engine::PaletteSpec::Kind::kAdaptive ||
          (pixels.has_alpha() && dither.alpha == engine::AlphaMode::kDither)) {
        wait(pixels.height);
      }
      const engine::Palette palette =
          engine::resolve_palette(options.palette, pixels, dither.color_space);
      // Once the encoder has indexed a band, its pixels are not read again when the result is
      // sure to be indexed (at most 256 colours: every pixel is a palette colour, opaque or, with
      // 1-bit alpha, fully transparent: one entry more), so
      // their memory goes back as the dither moves down: the decoded image is never resident
      // whole (17.9 MP: 54 MB less at the peak).
      // The decoder is held to kWindow rows ahead of the dither, or it would fill the image
      // faster than the dither empties it (a progressive JPEG's rows all come at its end).
      const bool one_bit_alpha = dither.alpha == engine::AlphaMode::kThreshold ||
                                 dither.alpha == engine::AlphaMode::kDither;
      const bool release = encoder && options.format != imaging::OutputFormat::kWebp &&
                           (!pixels.has_alpha() || one_bit_alpha) &&
                           palette.size() + (pixels.has_alpha() ? 1 : 0) <= 256;
      constexpr int kWindow = 128;
      if (release) decode.keep_within(kWindow);
      int released = 0;
      const auto done = [&encoder, &pixels, &decode, release, &released](int rows) {
        if (!encoder) return;
        encoder->add_rows(pixels, rows);
        // In steps of 32 rows or more: the pages that straddle two steps stay (a few hundred KB).
        if (release && (rows - released >= 32 || rows == pixels.height)) {
          engine::release_rows(pixels, released, rows);
          released = rows;
          decode.consumed(rows);
        }
      };
      dithered = engine::dither_into(pixels, palette, dither, pixels, wait, done);
      stages.dither = seconds_since(start) - stages.waited;
    }
    if (!decoded) return decoded.error();
    if (!dithered) return dithered.error();
    if (encoder) {
      const Clock::time_point start = Clock::now();
      bytes = encoder->finish(pixels);
      stages.encode = seconds_since(start);
      image = std::move(pixels);
    } else {
      image = upscaled(std::move(pixels), options);
    }
  } else {
    Clock::time_point start = Clock::now();
    if (Status s = decode.run(); !s) return s.error();
    stages.decode = seconds_since(start);
    start = Clock::now();
    image = process_image(decode.image(), options, limits);
    stages.dither = seconds_since(start);
  }
  job.reset();  // the decoded pixels are not needed to encode: a lower peak of memory
  if (!image) return image.error();
  if (!bytes) {
    const imaging::PngEffort effort = png_effort(options.dither);
    const Clock::time_point start = Clock::now();
    bytes = imaging::encode(*image, options.format, effort);
    stages.encode = seconds_since(start);
  }
  if (!*bytes) return bytes->error();
  Processed out;
  out.bytes = std::move(**bytes);
  out.format = options.format;
  out.width = image->width;
  out.height = image->height;
  out.stages = stages;
  return out;
}

}  // namespace dither::pipeline
