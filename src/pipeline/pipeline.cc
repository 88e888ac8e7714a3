#include "pipeline/pipeline.h"

#include <memory>
#include <thread>

#include "engine/dither.h"

namespace dither {

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
std::pair<int, int> target_size(const Image& img, int width, int height) {
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

}  // namespace

Result<Image> process_image(const Image& decoded, const ProcessOptions& options,
                            const imaging::Limits& limits, const SourceRows& wait) {
  const auto [w, h] = target_size(decoded, options.width, options.height);
  if (Status s = check_pixels(uint64_t(w), uint64_t(h), limits, "the resized image"); !s) {
    return s.error();
  }
  const uint64_t up = static_cast<uint64_t>(options.upscale);
  if (Status s = check_pixels(uint64_t(w) * up, uint64_t(h) * up, limits, "the upscaled image");
      !s) {
    return s.error();
  }
  const Image* source = &decoded;
  Image resized;
  const bool resizes = w != decoded.width || h != decoded.height;
  // Only the dither can read rows while they arrive: resizing and adaptive palettes need them all.
  if (wait && (resizes || options.palette.kind == PaletteSpec::Kind::kAdaptive)) {
    wait(decoded.height);
  }
  if (resizes) {
    auto r = imaging::resize(decoded, w, h, limits);
    if (!r) return r.error();
    resized = std::move(*r);
    source = &resized;
  }
  const Palette palette = resolve_palette(options.palette, *source);
  auto dithered = dither_image(*source, palette, options.dither, resizes ? SourceRows{} : wait);
  if (!dithered) return dithered.error();
  if (options.upscale > 1) return upscale_nearest(*dithered, options.upscale);
  return dithered;
}

Result<Processed> process(std::span<const uint8_t> input, const ProcessOptions& options,
                          const imaging::Limits& limits) {
  if (Status s = validate(options.dither); !s) return s.error();
  Result<std::unique_ptr<imaging::DecodeJob>> job = imaging::DecodeJob::open(input, limits);
  if (!job) return job.error();
  imaging::DecodeJob& decode = **job;
  Result<Image> image = make_error(ErrorKind::kInternal, "not processed");
  if (is_error_diffusion(options.dither.algorithm) && options.width == 0 && options.height == 0) {
    // Error diffusion reads the rows as the decoder writes them, on two cores: decoding is the
    // slower of the two, so the dither needs one thread (threads never change the output).
    ProcessOptions streamed = options;
    streamed.dither.threads = 1;
    Status decoded;
    {
      std::jthread decoder([&] { decoded = decode.run(); });
      image = process_image(decode.image(), streamed, limits,
                            [&decode](int rows) { decode.wait_rows(rows); });
    }
    if (!decoded) return decoded.error();
  } else {
    if (Status s = decode.run(); !s) return s.error();
    image = process_image(decode.image(), options, limits);
  }
  if (!image) return image.error();
  auto bytes = imaging::encode(*image, options.format);
  if (!bytes) return bytes.error();
  Processed out;
  out.bytes = std::move(*bytes);
  out.format = options.format;
  out.width = image->width;
  out.height = image->height;
  return out;
}

}  // namespace dither
