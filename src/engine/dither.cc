#include "engine/dither.h"

#include <algorithm>
#include <thread>

#include "engine/algorithms.h"
#include "engine/quantizer.h"

namespace dither::engine {

namespace detail {

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace detail

Status dither_into(const Image& image, const Palette& palette, const DitherOptions& options,
                   Image& out, const SourceRows& wait, const SourceRows& done) {
  if (Status s = validate(options); !s) return s;
  if (image.channels != 3 && image.channels != 4) {
    return make_error(ErrorKind::kInvalidArgument, "the engine takes RGB or RGBA images");
  }
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != image.pixel_count() * size_t(image.channels)) {
    return make_error(ErrorKind::kInvalidArgument, "image buffer does not match its size");
  }
  if (palette.size() == 0) return make_error(ErrorKind::kInvalidArgument, "palette is empty");
  const bool diffusion = is_error_diffusion(options.algorithm);
  // Error diffusion reads each pixel once, just before writing it (the error travels in its own
  // buffer), so it may work in place; the other algorithms may not.
  if (&out == &image && !diffusion) {
    return make_error(ErrorKind::kInvalidArgument,
                      "out must not be the input (except for error diffusion)");
  }

  const Quantizer q(palette, options.color_space, options.metric);
  if (out.width != image.width || out.height != image.height || out.channels != image.channels ||
      out.pixels.size() != image.pixels.size()) {
    out = Image(image.width, image.height, image.channels);
  }
  if (wait && !diffusion) wait(image.height);
  if (diffusion) {
    // Rows are final as they are written, unless alpha is still to be copied (below).
    const bool rows_final = !image.has_alpha() || &out == &image;
    detail::error_diffusion(image, out, q, options, wait, rows_final ? done : SourceRows{});
  } else if (options.algorithm == Algorithm::kRiemersma) {
    detail::riemersma_dither(image, out, q, options);
  } else if (options.algorithm == Algorithm::kYliluoma) {
    detail::yliluoma_dither(image, out, q, options);
  } else if (options.algorithm == Algorithm::kDotDiffusion) {
    detail::dot_diffusion(image, out, q, options);
  } else {
    detail::ordered_dither(image, out, q, options);
  }
  if (image.has_alpha()) {
    const size_t n = image.pixel_count();
    for (size_t i = 0; i < n; ++i) out.pixels[i * 4 + 3] = image.pixels[i * 4 + 3];
  }
  if (done) done(image.height);
  return {};
}

Result<Image> dither_image(const Image& image, const Palette& palette, const DitherOptions& options,
                           const SourceRows& wait) {
  Image out;
  if (Status s = dither_into(image, palette, options, out, wait); !s) return s.error();
  return out;
}

Image upscale_nearest(const Image& image, int factor) {
  if (factor <= 1) return image;
  Image out(image.width * factor, image.height * factor, image.channels);
  const size_t c = static_cast<size_t>(image.channels);
  for (int y = 0; y < image.height; ++y) {
    uint8_t* dst = out.row(y * factor);
    const uint8_t* src = image.row(y);
    for (int x = 0; x < image.width; ++x) {
      for (int k = 0; k < factor; ++k) {
        std::copy_n(src + size_t(x) * c, c, dst + (size_t(x) * factor + size_t(k)) * c);
      }
    }
    for (int k = 1; k < factor; ++k)
      std::copy_n(out.row(y * factor), out.stride(), out.row(y * factor + k));
  }
  return out;
}

}  // namespace dither::engine
