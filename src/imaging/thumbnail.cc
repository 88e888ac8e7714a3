// thumbnail(): a small lossy preview of a stored image, for the web page's gallery.
#include <webp/encode.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "imaging/codec.h"

namespace dither::imaging {

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
  Result<engine::Image> image = decode(bytes, limits);
  if (!image) return image.error();
  const double scale =
      std::min(1.0, static_cast<double>(box) / std::max(image->width, image->height));
  if (scale < 1.0) {
    const int width = std::clamp(static_cast<int>(std::lround(image->width * scale)), 1, box);
    const int height = std::clamp(static_cast<int>(std::lround(image->height * scale)), 1, box);
    Result<engine::Image> small = resize(*image, width, height, limits);
    if (!small) return small.error();
    image = std::move(small);
  }
  // libwebp directly, on this thread (libvips would encode on its shared worker threads).
  const int stride = image->width * image->channels;
  uint8_t* buffer = nullptr;
  const size_t length =
      image->channels == 4
          ? WebPEncodeRGBA(image->pixels.data(), image->width, image->height, stride, 75, &buffer)
          : WebPEncodeRGB(image->pixels.data(), image->width, image->height, stride, 75, &buffer);
  if (length == 0 || buffer == nullptr) {
    WebPFree(buffer);
    return make_error(ErrorKind::kInternal, "cannot encode the thumbnail");
  }
  std::vector<uint8_t> result(buffer, buffer + length);
  WebPFree(buffer);
  return result;
}

}  // namespace dither::imaging
