#include "engine/testing/test_images.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace dither::engine::testing {

Image synthetic_photo(int width, int height, int channels, uint32_t seed) {
  Image img(width, height, channels);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  struct Disc {
    double cx, cy, r, cr, cg, cb;
  };
  Disc discs[5];
  for (auto& d : discs) d = {u(rng), u(rng), 0.1 + 0.25 * u(rng), u(rng), u(rng), u(rng)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double fx = double(x) / std::max(1, width - 1);
      const double fy = double(y) / std::max(1, height - 1);
      double r = 0.2 + 0.6 * fx, g = 0.3 + 0.5 * fy, b = 0.5 + 0.4 * std::sin(6.0 * fx * fy);
      for (const auto& d : discs) {
        const double dist = std::hypot(fx - d.cx, fy - d.cy) / d.r;
        const double a = std::clamp(1.5 - dist, 0.0, 1.0);
        r = r * (1 - a) + d.cr * a;
        g = g * (1 - a) + d.cg * a;
        b = b * (1 - a) + d.cb * a;
      }
      if (x > width * 3 / 4 && y < height / 4) r = g = b = ((x / 3 + y / 3) % 2) ? 0.9 : 0.1;
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(std::lround(std::clamp(r, 0.0, 1.0) * 255));
      p[1] = static_cast<uint8_t>(std::lround(std::clamp(g, 0.0, 1.0) * 255));
      p[2] = static_cast<uint8_t>(std::lround(std::clamp(b, 0.0, 1.0) * 255));
      if (channels == 4) p[3] = static_cast<uint8_t>((x * 255) / std::max(1, width - 1));
    }
  }
  return img;
}

Image flat(int width, int height, uint8_t r, uint8_t g, uint8_t b, int channels) {
  Image img(width, height, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = r;
      p[1] = g;
      p[2] = b;
      if (channels == 4) p[3] = 255;
    }
  }
  return img;
}

Image grey_ramp(int width, int height) {
  Image img(width, height, 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const auto v = static_cast<uint8_t>((x * 255) / std::max(1, width - 1));
      uint8_t* p = img.at(x, y);
      p[0] = p[1] = p[2] = v;
    }
  }
  return img;
}

Image noise(int width, int height, int channels, uint32_t seed) {
  Image img(width, height, channels);
  std::mt19937 rng(seed);
  for (auto& v : img.pixels) v = static_cast<uint8_t>(rng() & 0xff);
  return img;
}

Palette palette(std::string_view spec, const Image& image) {
  return resolve_palette(*parse_palette_spec(spec), image);
}

bool all_in_palette(const Image& img, const Palette& p) {
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    const uint8_t* px = img.pixels.data() + i * static_cast<size_t>(img.channels);
    if (!p.contains(Color{px[0], px[1], px[2]})) return false;
  }
  return true;
}

}  // namespace dither::engine::testing
