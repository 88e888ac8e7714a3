// Colours, and the "working space" in which the engine measures and diffuses error.
//
// Every algorithm converts input samples to working values: integers 0..65535 per channel. In
// sRGB mode the working value is the sample times 257; in linear-light mode it is the sRGB
// transfer function undone, scaled to 0..65535. Palette colours go through the same conversion,
// so "nearest colour" and "error" always mean the same space. Output samples are always the
// palette's own 8-bit sRGB colours.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace dither::engine {

struct Color {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  friend bool operator==(const Color&, const Color&) = default;
  uint32_t packed() const { return (uint32_t{r} << 16) | (uint32_t{g} << 8) | uint32_t{b}; }
};

std::string to_hex(Color c);  // "#rrggbb"

inline constexpr int kWorkingMax = 65535;

enum class ColorSpace { kSrgb, kLinear };

// sRGB 8-bit sample -> working value, for one colour space. Built once, shared, read-only.
const std::array<uint16_t, 256>& to_working_table(ColorSpace space);

// Exact (double) sRGB <-> linear transfer functions on [0, 1].
double srgb_to_linear(double v);
double linear_to_srgb(double v);

}  // namespace dither::engine
