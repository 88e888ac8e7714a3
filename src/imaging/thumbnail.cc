// thumbnail(): a small lossy preview of a stored image, for the web page's gallery.
#include <algorithm>
#include <cmath>
#include <string>

#include "imaging/codec.h"
#include "imaging/vips_support.h"

namespace dither::imaging {

using internal::vips_failure;
using internal::VipsImagePtr;

Result<std::vector<uint8_t>> thumbnail(std::span<const uint8_t> bytes, int box,
                                       const Limits& limits) {
  if (box < 1 || box > kMaxThumbnailBox) {
    return make_error(ErrorKind::kInvalidArgument, "thumbnail box " + std::to_string(box) +
                                                       ": expected 1.." +
                                                       std::to_string(kMaxThumbnailBox));
  }
  // The same strict path as every other read: allowed formats, limits, damaged data refused.
  // (libvips' own thumbnail operation would shrink JPEGs while loading, but it gives a partial
  // picture for a truncated PNG.)
  Result<Image> image = decode(bytes, limits);
  if (!image) return image.error();
  const double scale =
      std::min(1.0, static_cast<double>(box) / std::max(image->width, image->height));
  if (scale < 1.0) {
    const int width = std::clamp(static_cast<int>(std::lround(image->width * scale)), 1, box);
    const int height = std::clamp(static_cast<int>(std::lround(image->height * scale)), 1, box);
    Result<Image> small = resize(*image, width, height, limits);
    if (!small) return small.error();
    image = std::move(small);
  }
  Result<VipsImagePtr> wrapped = internal::wrap(*image);
  if (!wrapped) return wrapped.error();
  void* buffer = nullptr;
  size_t length = 0;
  if (vips_webpsave_buffer(wrapped->get(), &buffer, &length, "Q", 75, nullptr)) {
    return vips_failure(ErrorKind::kInternal, "cannot encode the thumbnail");
  }
  std::vector<uint8_t> result(static_cast<uint8_t*>(buffer),
                              static_cast<uint8_t*>(buffer) + length);
  g_free(buffer);
  return result;
}

}  // namespace dither::imaging
