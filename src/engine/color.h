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

// ---- Colour distances other than working-space RGB (docs/ENGINE-DISTANCE.md) ----
//
// Both start from *linear light in 16 bits*: a working value w becomes
// lround(srgb_to_linear(w / 65535) * 65535) in sRGB mode and stays w in linear mode (an 8-bit
// sample gets the same value either way, as in to_working_table(kLinear)).
//
//   const auto& lin = to_linear_table(space);
//   Oklab p = oklab_from_linear(lin[r], lin[g], lin[b]);          // integers, exact rule
//   double d = ciede2000(cielab_from_linear(lin[r], lin[g], lin[b]), other);

// Working value -> 16-bit linear light, for one colour space (65536 entries).
const std::array<uint16_t, 65536>& to_linear_table(ColorSpace space);

// Oklab (Bjorn Ottosson, 2020) in integers: L, a and b times 65535, so white is (65535, 0, 0).
// Computed with the integer matrices below and a cube-root table, so that every implementation
// of the documented steps gets the same integers.
using Oklab = std::array<int32_t, 3>;
// Ottosson's linear-sRGB -> LMS matrix (M1 combined with the sRGB primaries) and LMS' -> Lab
// matrix (M2), each coefficient rounded to a multiple of 2^-16; the largest coefficient of a row
// absorbs the rounding so that rows sum exactly to 1 (LMS; Lab's L) or 0 (a, b): greys then have
// l = m = s and a = b = 0 exactly.
inline constexpr int32_t kOklabLms[3][3] = {
    {27015, 35149, 3372}, {13887, 44611, 7038}, {5787, 18463, 41286}};
inline constexpr int32_t kOklabLab[3][3] = {
    {13792, 52011, -267}, {129630, -159160, 29530}, {1698, 51300, -52998}};
// round(cbrt(x / 65535) * 65535) for x in 0..65535.
const std::array<uint16_t, 65536>& cube_root_table();
// One row of kOklabLms applied to 16-bit linear values: (sum k_i v_i + 2^15) >> 16, in 0..65535.
inline int32_t oklab_lms(const int32_t (&row)[3], int64_t r, int64_t g, int64_t b) {
  return static_cast<int32_t>((row[0] * r + row[1] * g + row[2] * b + 32768) >> 16);
}
// One row of kOklabLab applied to cube roots (arithmetic shift: floor).
inline int32_t oklab_lab(const int32_t (&row)[3], int64_t l, int64_t m, int64_t s) {
  return static_cast<int32_t>((row[0] * l + row[1] * m + row[2] * s + 32768) >> 16);
}
Oklab oklab_from_linear(int32_t r, int32_t g, int32_t b);

// CIELAB under D65 from 16-bit linear sRGB, in doubles (the sRGB matrix to XYZ, white = the
// matrix's own white so that greys have a = b = 0).
struct Lab {
  double l = 0;
  double a = 0;
  double b = 0;
};
Lab cielab_from_linear(int32_t r, int32_t g, int32_t b);
// CIE Delta E 2000 (kL = kC = kH = 1), as formulated by Sharma, Wu and Dalal, "The CIEDE2000
// Color-Difference Formula: Implementation Notes, Supplementary Test Data, and Mathematical
// Observations", Color Research and Application 30(1), 2005.
double ciede2000(const Lab& x, const Lab& y);

}  // namespace dither::engine
