#include "engine/color.h"

#include <cmath>
#include <cstdio>

namespace dither::engine {

std::string to_hex(Color c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

double srgb_to_linear(double v) {
  return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}

double linear_to_srgb(double v) {
  return v <= 0.0031308 ? v * 12.92 : 1.055 * std::pow(v, 1.0 / 2.4) - 0.055;
}

namespace {

std::array<uint16_t, 256> make_table(ColorSpace space) {
  std::array<uint16_t, 256> t{};
  for (int i = 0; i < 256; ++i) {
    if (space == ColorSpace::kSrgb) {
      t[i] = static_cast<uint16_t>(i * 257);
    } else {
      t[i] = static_cast<uint16_t>(std::lround(srgb_to_linear(i / 255.0) * kWorkingMax));
    }
  }
  return t;
}

}  // namespace

const std::array<uint16_t, 256>& to_working_table(ColorSpace space) {
  static const std::array<uint16_t, 256> srgb = make_table(ColorSpace::kSrgb);
  static const std::array<uint16_t, 256> linear = make_table(ColorSpace::kLinear);
  return space == ColorSpace::kSrgb ? srgb : linear;
}

}  // namespace dither::engine
