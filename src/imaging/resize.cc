// resize(): Lanczos-3 resampling through libvips.
#include <algorithm>
#include <cmath>
#include <string>

#include "imaging/codec.h"
#include "imaging/vips_support.h"

namespace dither::imaging {
namespace {

using internal::vips_failure;
using internal::VipsImagePtr;

template <class Op>
Status step(VipsImagePtr& image, Op op) {
  VipsImage* out = nullptr;
  if (op(image.get(), &out)) return vips_failure(ErrorKind::kInternal, "cannot resize the image");
  image.reset(out);
  return Status();
}

int scaled_side(int side, int target, int other) {
  const double exact = static_cast<double>(side) * target / other;
  return static_cast<int>(std::clamp(std::lround(exact), 1L, long{INT32_MAX}));
}

}  // namespace

Result<engine::Image> resize(const engine::Image& img, int width, int height,
                             const Limits& limits) {
  if (width < 0 || height < 0) {
    return make_error(ErrorKind::kInvalidArgument,
                      "resize to " + std::to_string(width) + "x" + std::to_string(height) +
                          ": sides must be >= 0 (0 keeps the aspect ratio)");
  }
  if (img.width <= 0 || img.height <= 0 || (img.channels != 3 && img.channels != 4) ||
      img.pixels.size() != img.pixel_count() * static_cast<size_t>(img.channels)) {
    return make_error(ErrorKind::kInvalidArgument, "resize: not a valid RGB or RGBA image");
  }
  if (width == 0 && height == 0) return img;
  if (width == 0) width = scaled_side(img.width, height, img.height);
  if (height == 0) height = scaled_side(img.height, width, img.width);
  const uint64_t pixels = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  if (pixels > limits.max_pixels) {
    return make_error(ErrorKind::kTooManyPixels,
                      "resize to " + std::to_string(width) + "x" + std::to_string(height) + " (" +
                          std::to_string(pixels) + " pixels): the limit is " +
                          std::to_string(limits.max_pixels) + " pixels");
  }
  if (width == img.width && height == img.height) return img;
  if (Status s = init(); !s) return s.error();

  Result<VipsImagePtr> wrapped = internal::wrap(img);
  if (!wrapped) return wrapped.error();
  VipsImagePtr image = std::move(*wrapped);
  const double hscale = static_cast<double>(width) / img.width;
  const double vscale = static_cast<double>(height) / img.height;
  auto resample = [&](VipsImage* in, VipsImage** out) {
    return vips_resize(in, out, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_LANCZOS3, nullptr);
  };
  Status s;
  if (img.has_alpha()) {
    // Resample premultiplied so fully transparent pixels lend no colour to their neighbours.
    s = step(image,
             [](VipsImage* in, VipsImage** out) { return vips_premultiply(in, out, nullptr); });
    if (s) s = step(image, resample);
    if (s) {
      s = step(image,
               [](VipsImage* in, VipsImage** out) { return vips_unpremultiply(in, out, nullptr); });
    }
    // vips_cast truncates: round first.
    if (s)
      s = step(image, [](VipsImage* in, VipsImage** out) { return vips_rint(in, out, nullptr); });
    if (s) {
      s = step(image, [](VipsImage* in, VipsImage** out) {
        return vips_cast(in, out, VIPS_FORMAT_UCHAR, nullptr);
      });
    }
  } else {
    s = step(image, resample);
  }
  // vips_resize rounds the output size itself; pin it to exactly what was asked for.
  if (s && (vips_image_get_width(image.get()) != width ||
            vips_image_get_height(image.get()) != height)) {
    s = step(image, [&](VipsImage* in, VipsImage** out) {
      return vips_embed(in, out, 0, 0, width, height, "extend", VIPS_EXTEND_COPY, nullptr);
    });
  }
  if (!s) return s.error();
  return internal::to_image(image.get(), ErrorKind::kInternal, "cannot resize the image");
}

}  // namespace dither::imaging
