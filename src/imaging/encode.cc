// encode(): picks the layout for each output format and hands over to its writer.
#include <string>

#include "imaging/codec.h"
#include "imaging/color_index.h"
#include "imaging/writers.h"

namespace dither::imaging {

Result<std::vector<uint8_t>> encode(const Image& img, OutputFormat format) {
  if (img.width <= 0 || img.height <= 0) {
    return make_error(ErrorKind::kInvalidArgument, "cannot encode an empty image");
  }
  if ((img.channels != 3 && img.channels != 4) ||
      img.pixels.size() != img.pixel_count() * static_cast<size_t>(img.channels)) {
    return make_error(ErrorKind::kInvalidArgument,
                      "cannot encode: not a valid RGB or RGBA image (" + std::to_string(img.width) +
                          "x" + std::to_string(img.height) + "x" + std::to_string(img.channels) +
                          ", " + std::to_string(img.pixels.size()) + " bytes)");
  }
  switch (format) {
    case OutputFormat::kPng: {
      std::optional<internal::IndexedImage> ix =
          internal::index_colors(img, internal::AlphaMode::kExact);
      if (ix) return internal::write_png_indexed(img.width, img.height, *ix);
      return internal::write_png_truecolor(img);
    }
    case OutputFormat::kGif: {
      std::optional<internal::IndexedImage> ix =
          internal::index_colors(img, internal::AlphaMode::kBinary);
      if (!ix) {
        return make_error(ErrorKind::kInvalidArgument,
                          "GIF holds at most 256 colours; use PNG or WebP");
      }
      return internal::write_gif(img.width, img.height, *ix);
    }
    case OutputFormat::kWebp:
      return internal::write_webp(img);
  }
  return make_error(ErrorKind::kInvalidArgument, "unknown output format");
}

}  // namespace dither::imaging
