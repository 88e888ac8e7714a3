#include "raw_rgb.h"

#include <fstream>

namespace dither::bench {

Result<engine::Image> read_raw_rgb(const std::string& path, int width, int height) {
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535) {
    return make_error(ErrorKind::kInvalidArgument,
                      "bad size " + std::to_string(width) + "x" + std::to_string(height));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorKind::kNotFound, "cannot open " + path);
  engine::Image image(width, height, 3);
  in.read(reinterpret_cast<char*>(image.pixels.data()),
          static_cast<std::streamsize>(image.pixels.size()));
  if (static_cast<size_t>(in.gcount()) != image.pixels.size() ||
      in.peek() != std::ifstream::traits_type::eof()) {
    return make_error(ErrorKind::kInvalidArgument,
                      path + " is not " + std::to_string(width) + "x" + std::to_string(height) +
                          " raw 8-bit RGB (" + std::to_string(image.pixels.size()) + " bytes)");
  }
  return image;
}

Status write_raw_rgb(const std::string& path, const engine::Image& image) {
  if (image.channels != 3) return make_error(ErrorKind::kInvalidArgument, "not an RGB image");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(image.pixels.data()),
            static_cast<std::streamsize>(image.pixels.size()));
  out.close();
  if (!out) return make_error(ErrorKind::kInternal, "cannot write " + path);
  return {};
}

}  // namespace dither::bench
