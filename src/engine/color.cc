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

namespace {

using Table16 = std::array<uint16_t, 65536>;

// Built once on first use; 128 KiB each.
Table16 make_linear_table(ColorSpace space) {
  Table16 t{};
  for (int w = 0; w <= kWorkingMax; ++w) {
    t[static_cast<size_t>(w)] =
        space == ColorSpace::kLinear
            ? static_cast<uint16_t>(w)
            : static_cast<uint16_t>(std::lround(srgb_to_linear(w / 65535.0) * 65535.0));
  }
  return t;
}

Table16 make_cube_root_table() {
  Table16 t{};
  for (int x = 0; x <= kWorkingMax; ++x) {
    t[static_cast<size_t>(x)] =
        static_cast<uint16_t>(std::lround(std::cbrt(x / 65535.0) * 65535.0));
  }
  return t;
}

// The sRGB primaries and D65 white in XYZ (IEC 61966-2-1, as tabulated by B. Lindbloom).
constexpr double kXyz[3][3] = {{0.4124564, 0.3575761, 0.1804375},
                               {0.2126729, 0.7151522, 0.0721750},
                               {0.0193339, 0.1191920, 0.9503041}};

double xyz_row(int row, double r, double g, double b) {
  const double(&k)[3] = kXyz[row];
  return k[0] * r + k[1] * g + k[2] * b;
}

// CIELAB's f(t): the cube root above (6/29)^3, a line below.
double lab_f(double t) {
  return t > 216.0 / 24389.0 ? std::cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0;
}

constexpr double kPi = 3.14159265358979323846;
double radians(double degrees) { return degrees * (kPi / 180.0); }

// Hue angle in degrees, 0..360; 0 for a neutral (a = b = 0).
double hue_degrees(double b, double a) {
  if (a == 0 && b == 0) return 0;
  const double h = std::atan2(b, a) * (180.0 / kPi);
  return h < 0 ? h + 360.0 : h;
}

double pow7(double x) {
  const double x2 = x * x;
  return x2 * x2 * x2 * x;
}

}  // namespace

const std::array<uint16_t, 65536>& to_linear_table(ColorSpace space) {
  static const Table16 srgb = make_linear_table(ColorSpace::kSrgb);
  static const Table16 linear = make_linear_table(ColorSpace::kLinear);
  return space == ColorSpace::kSrgb ? srgb : linear;
}

const std::array<uint16_t, 65536>& cube_root_table() {
  static const Table16 table = make_cube_root_table();
  return table;
}

Oklab oklab_from_linear(int32_t r, int32_t g, int32_t b) {
  const Table16& cbrt = cube_root_table();
  const int64_t l = cbrt[static_cast<size_t>(oklab_lms(kOklabLms[0], r, g, b))];
  const int64_t m = cbrt[static_cast<size_t>(oklab_lms(kOklabLms[1], r, g, b))];
  const int64_t s = cbrt[static_cast<size_t>(oklab_lms(kOklabLms[2], r, g, b))];
  return {oklab_lab(kOklabLab[0], l, m, s), oklab_lab(kOklabLab[1], l, m, s),
          oklab_lab(kOklabLab[2], l, m, s)};
}

Lab cielab_from_linear(int32_t r, int32_t g, int32_t b) {
  const double lr = r / 65535.0;
  const double lg = g / 65535.0;
  const double lb = b / 65535.0;
  const double fx = lab_f(xyz_row(0, lr, lg, lb) / xyz_row(0, 1.0, 1.0, 1.0));
  const double fy = lab_f(xyz_row(1, lr, lg, lb) / xyz_row(1, 1.0, 1.0, 1.0));
  const double fz = lab_f(xyz_row(2, lr, lg, lb) / xyz_row(2, 1.0, 1.0, 1.0));
  return {116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)};
}

// Sharma, Wu and Dalal's equations (2) to (22), in their order; angles in degrees.
double ciede2000(const Lab& x, const Lab& y) {
  const double c_mean = (std::sqrt(x.a * x.a + x.b * x.b) + std::sqrt(y.a * y.a + y.b * y.b)) / 2;
  const double g = 0.5 * (1 - std::sqrt(pow7(c_mean) / (pow7(c_mean) + pow7(25.0))));
  const double a1 = (1 + g) * x.a;
  const double a2 = (1 + g) * y.a;
  const double c1 = std::sqrt(a1 * a1 + x.b * x.b);
  const double c2 = std::sqrt(a2 * a2 + y.b * y.b);
  const double h1 = hue_degrees(x.b, a1);
  const double h2 = hue_degrees(y.b, a2);

  const double dl = y.l - x.l;
  const double dc = c2 - c1;
  double dh = 0;
  if (c1 * c2 != 0) {
    dh = h2 - h1;
    if (dh > 180) dh -= 360;
    if (dh < -180) dh += 360;
  }
  const double dh_big = 2 * std::sqrt(c1 * c2) * std::sin(radians(dh / 2));

  const double l_mean = (x.l + y.l) / 2;
  const double c_mean2 = (c1 + c2) / 2;
  double h_mean = h1 + h2;
  if (c1 * c2 != 0) {
    if (std::fabs(h1 - h2) <= 180) {
      h_mean = (h1 + h2) / 2;
    } else {
      h_mean = h1 + h2 < 360 ? (h1 + h2 + 360) / 2 : (h1 + h2 - 360) / 2;
    }
  }
  const double t = 1 - 0.17 * std::cos(radians(h_mean - 30)) +
                   0.24 * std::cos(radians(2 * h_mean)) + 0.32 * std::cos(radians(3 * h_mean + 6)) -
                   0.20 * std::cos(radians(4 * h_mean - 63));
  const double d_theta = 30 * std::exp(-((h_mean - 275) / 25) * ((h_mean - 275) / 25));
  const double rc = 2 * std::sqrt(pow7(c_mean2) / (pow7(c_mean2) + pow7(25.0)));
  const double l50 = (l_mean - 50) * (l_mean - 50);
  const double sl = 1 + 0.015 * l50 / std::sqrt(20 + l50);
  const double sc = 1 + 0.045 * c_mean2;
  const double sh = 1 + 0.015 * c_mean2 * t;
  const double rt = -std::sin(radians(2 * d_theta)) * rc;
  const double tl = dl / sl;
  const double tc = dc / sc;
  const double th = dh_big / sh;
  return std::sqrt(tl * tl + tc * tc + th * th + rt * tc * th);
}

}  // namespace dither::engine
