#include "engine/dither.h"

#include <algorithm>
#include <array>
#include <mutex>
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

namespace {

// The alpha modes other than kKeep (docs/TRANSPARENCY.md) turn an RGBA image into one whose
// alpha is already the final one (or into an RGB image for kFlatten); the algorithms then only
// ever see kKeep, where a pixel of alpha 0 passes no error on.

void threshold_alpha(Image& img, int first_row, int end_row) {
  for (int y = first_row; y < end_row; ++y) {
    uint8_t* p = img.row(y);
    for (int x = 0; x < img.width; ++x) p[4 * x + 3] = p[4 * x + 3] >= 128 ? 255 : 0;
  }
}

// kDither: the alpha plane as a grey image (R = G = B = alpha) dithered to black and white with
// the same algorithm and parameters, in sRGB mode: working values 257 * alpha, proportional to
// coverage, which is what alpha is. Its red channel is the new alpha (0 or 255), except that
// alpha 0 and 255 stay as they were (rounding could otherwise, very rarely, flip one).
Status dither_alpha(Image& img, const DitherOptions& options) {
  Image grey(img.width, img.height, 3);
  const size_t n = img.pixel_count();
  for (size_t i = 0; i < n; ++i) std::fill_n(&grey.pixels[i * 3], 3, img.pixels[i * 4 + 3]);
  DitherOptions o = options;
  o.alpha = AlphaMode::kKeep;
  o.color_space = ColorSpace::kSrgb;
  o.metric = Metric::kEuclidean;
  Image dithered;
  Image& out = is_error_diffusion(o.algorithm) ? grey : dithered;
  if (Status s = dither_into(grey, Palette::uniform_levels(2), o, out); !s) return s;
  for (size_t i = 0; i < n; ++i) {
    uint8_t& a = img.pixels[i * 4 + 3];
    if (a != 0 && a != 255) a = out.pixels[i * 3];
  }
  return {};
}

// The 8-bit sample whose linear working value is nearest to w: the largest s with
// 2w >= L(s-1) + L(s) (ties up), by binary search over those sums.
class LinearToSample {
 public:
  LinearToSample() {
    const auto& lin = to_working_table(ColorSpace::kLinear);
    for (size_t s = 1; s < 256; ++s) sums_[s - 1] = int32_t{lin[s - 1]} + int32_t{lin[s]};
  }
  uint8_t operator()(int32_t w) const {
    return static_cast<uint8_t>(std::upper_bound(sums_.begin(), sums_.end(), 2 * w) -
                                sums_.begin());
  }

 private:
  std::array<int32_t, 255> sums_{};
};

// Ready for the algorithms: `image` (RGBA, alpha mode not kKeep) in `work`, whose alpha is then
// the final one. `work` may be `image` itself.
Status prepare_alpha(const Image& image, const DitherOptions& options, Image& work) {
  if (&work != &image) work = image;
  if (options.alpha == AlphaMode::kThreshold) {
    threshold_alpha(work, 0, work.height);
    return {};
  }
  return dither_alpha(work, options);
}

// dither_into() for the alpha modes other than kKeep on an RGBA image.
Status dither_alpha_mode(const Image& image, const Palette& palette, const DitherOptions& options,
                         Image& out, const SourceRows& wait, const SourceRows& done) {
  DitherOptions keep = options;
  keep.alpha = AlphaMode::kKeep;
  if (options.alpha == AlphaMode::kThreshold && &out == &image && wait) {
    // In place, following a source still being written: each row's alpha is thresholded once it
    // is final and before the dither reads it (bands may ask from several threads).
    std::mutex mutex;
    int ready = 0;
    const SourceRows ready_rows = [&](int rows) {
      wait(rows);
      const std::lock_guard lock(mutex);
      if (rows > ready) threshold_alpha(out, ready, rows);
      ready = std::max(ready, rows);
    };
    return dither_into(out, palette, keep, out, ready_rows, done);
  }
  if (wait) wait(image.height);
  if (options.alpha == AlphaMode::kFlatten) {
    return dither_into(flatten_alpha(image, options.background), palette, keep, out, {}, done);
  }
  // Error diffusion works in place: prepared in `out`, no third buffer.
  Image copy;
  Image& work = is_error_diffusion(options.algorithm) ? out : copy;
  if (Status s = prepare_alpha(image, options, work); !s) return s;
  return dither_into(work, palette, keep, out, {}, done);
}

}  // namespace

Image flatten_alpha(const Image& image, Color background) {
  if (!image.has_alpha()) return image;
  const auto& lin = to_working_table(ColorSpace::kLinear);
  static const LinearToSample to_sample;
  const std::array<uint8_t, 3> bg{background.r, background.g, background.b};
  Image out(image.width, image.height, 3);
  const size_t n = image.pixel_count();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &image.pixels[i * 4];
    uint8_t* d = &out.pixels[i * 3];
    const int32_t a = p[3];
    for (size_t c = 0; c < 3; ++c) {
      if (a == 255 || p[c] == bg[c]) {
        d[c] = p[c];
      } else {
        // Round half up; both terms are at most 255 * 65535.
        const int32_t mix = (a * lin[p[c]] + (255 - a) * lin[bg[c]] + 127) / 255;
        d[c] = to_sample(mix);
      }
    }
  }
  return out;
}

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
  if (options.algorithm == Algorithm::kDbs && image.pixel_count() > kMaxDbsPixels) {
    return make_error(ErrorKind::kInvalidArgument, "dbs takes images of at most " +
                                                       std::to_string(kMaxDbsPixels) +
                                                       " pixels (2048x2048); this one has " +
                                                       std::to_string(image.pixel_count()) +
                                                       ": resize it first (width, height)");
  }
  const bool diffusion = is_error_diffusion(options.algorithm);
  // Error diffusion reads each pixel once, just before writing it (the error travels in its own
  // buffer), so it may work in place; the other algorithms may not.
  if (&out == &image && !diffusion) {
    return make_error(ErrorKind::kInvalidArgument,
                      "out must not be the input (except for error diffusion)");
  }
  if (image.has_alpha() && options.alpha != AlphaMode::kKeep) {
    return dither_alpha_mode(image, palette, options, out, wait, done);
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
  } else if (options.algorithm == Algorithm::kOstromoukhov ||
             options.algorithm == Algorithm::kZhouFang) {
    detail::variable_diffusion(image, out, q, options);
  } else if (options.algorithm == Algorithm::kPattern) {
    detail::pattern_dither(image, out, q, options);
  } else if (options.algorithm == Algorithm::kDbs) {
    detail::dbs_dither(image, out, q, options);
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
