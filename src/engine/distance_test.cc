// Colour distances (docs/ENGINE-DISTANCE.md): the conversions against published values, the
// engine against the reference byte for byte with oklab and ciede2000, and what oklab changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/color.h"
#include "engine/dither.h"
#include "engine/quantizer.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

using testing::palette;

// ---- CIEDE2000 ----

// G. Sharma, W. Wu and E. N. Dalal, "The CIEDE2000 Color-Difference Formula: Implementation
// Notes, Supplementary Test Data, and Mathematical Observations", Color Research and
// Application 30(1), 2005, Table 1: L1 a1 b1, L2 a2 b2, Delta E 2000 (all 34 pairs).
constexpr double kSharma[34][7] = {
    {50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425},
    {50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615},
    {50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412},
    {50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669},
    {50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461},
    {50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065},
    {50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492},
    {50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977},
    {50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030},
    {50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000},
    {60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644},
    {63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630},
    {61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731},
    {35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645},
    {22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373},
    {36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146},
    {90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441},
    {90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381},
    {6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377},
    {2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082},
};

TEST(Ciede2000, SharmaWuDalalTestData) {
  for (const auto& row : kSharma) {
    const Lab x{row[0], row[1], row[2]};
    const Lab y{row[3], row[4], row[5]};
    // The table gives 4 decimals.
    EXPECT_NEAR(ciede2000(x, y), row[6], 0.5e-4) << row[0] << " " << row[1] << " " << row[2];
    EXPECT_NEAR(ciede2000(y, x), row[6], 0.5e-4) << "swapped";
  }
  EXPECT_EQ(ciede2000(Lab{40, 10, -20}, Lab{40, 10, -20}), 0.0);
}

// 16-bit linear light of an 8-bit sample (the same in both colour spaces).
int32_t linear_of(uint8_t s) { return to_working_table(ColorSpace::kLinear)[s]; }

Lab cielab_of(Color c) {
  return cielab_from_linear(linear_of(c.r), linear_of(c.g), linear_of(c.b));
}

TEST(Ciede2000, CielabOfTheSrgbPrimaries) {
  const Lab white = cielab_of({255, 255, 255});
  EXPECT_NEAR(white.l, 100.0, 1e-9);
  EXPECT_NEAR(white.a, 0.0, 1e-9);
  EXPECT_NEAR(white.b, 0.0, 1e-9);
  const Lab black = cielab_of({0, 0, 0});
  EXPECT_EQ(black.l, 0.0);
  // CIELAB (D65) of sRGB red, green and blue, as B. Lindbloom's calculator gives them.
  const struct {
    Color c;
    double l, a, b;
  } primaries[] = {{{255, 0, 0}, 53.2408, 80.0925, 67.2032},
                   {{0, 255, 0}, 87.7347, -86.1827, 83.1793},
                   {{0, 0, 255}, 32.2970, 79.1875, -107.8602}};
  for (const auto& p : primaries) {
    const Lab lab = cielab_of(p.c);
    EXPECT_NEAR(lab.l, p.l, 2e-3) << to_hex(p.c);
    EXPECT_NEAR(lab.a, p.a, 2e-3) << to_hex(p.c);
    EXPECT_NEAR(lab.b, p.b, 2e-3) << to_hex(p.c);
  }
}

// ---- Oklab ----

// Ottosson's matrices from "A perceptual color space for image processing" (2020): XYZ (D65)
// to LMS, linear sRGB to LMS, and LMS' to Lab; the engine's integers are rounded from these.
constexpr double kXyzToLms[3][3] = {{0.8189330101, 0.3618667424, -0.1288597137},
                                    {0.0329845436, 0.9293118715, 0.0361456387},
                                    {0.0482003018, 0.2643662691, 0.6338517070}};
constexpr double kSrgbToLms[3][3] = {{0.4122214708, 0.5363325363, 0.0514459929},
                                     {0.2119034982, 0.6806995451, 0.1073969566},
                                     {0.0883024619, 0.2817188376, 0.6299787005}};
constexpr double kLmsToLab[3][3] = {{0.2104542553, 0.7936177850, -0.0040720468},
                                    {1.9779984951, -2.4285922050, 0.4505937099},
                                    {0.0259040371, 0.7827717662, -0.8086757660}};

std::array<double, 3> oklab_double(const double (&to_lms)[3][3], std::array<double, 3> v) {
  std::array<double, 3> root{};
  for (size_t i = 0; i < 3; ++i) {
    root[i] = std::cbrt(to_lms[i][0] * v[0] + to_lms[i][1] * v[1] + to_lms[i][2] * v[2]);
  }
  std::array<double, 3> lab{};
  for (size_t i = 0; i < 3; ++i) {
    lab[i] = kLmsToLab[i][0] * root[0] + kLmsToLab[i][1] * root[1] + kLmsToLab[i][2] * root[2];
  }
  return lab;
}

TEST(Oklab, OttossonsXyzTable) {
  // His post's table of XYZ values and their Oklab, to its 3 decimals.
  const double table[4][6] = {{0.950, 1.000, 1.089, 1.000, 0.000, 0.000},
                              {1.000, 0.000, 0.000, 0.450, 1.236, -0.019},
                              {0.000, 1.000, 0.000, 0.922, -0.671, 0.263},
                              {0.000, 0.000, 1.000, 0.153, -1.415, -0.449}};
  for (const auto& row : table) {
    const auto lab = oklab_double(kXyzToLms, {row[0], row[1], row[2]});
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(lab[i], row[3 + i], 0.0015) << row[0] << row[1];
  }
}

TEST(Oklab, IntegerMatricesAreOttossonsRounded) {
  for (size_t i = 0; i < 3; ++i) {
    int64_t lms_sum = 0;
    int64_t lab_sum = 0;
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_LE(std::abs(kOklabLms[i][j] - std::lround(kSrgbToLms[i][j] * 65536)), 1);
      EXPECT_LE(std::abs(kOklabLab[i][j] - std::lround(kLmsToLab[i][j] * 65536)), 1);
      lms_sum += kOklabLms[i][j];
      lab_sum += kOklabLab[i][j];
    }
    EXPECT_EQ(lms_sum, 65536);
    EXPECT_EQ(lab_sum, i == 0 ? 65536 : 0);
  }
}

// The candidate grid is exact only if these never decrease (quantizer.cc, build_oklab_cells).
TEST(Oklab, TablesAreMonotone) {
  for (const auto* table : {&to_linear_table(ColorSpace::kSrgb),
                            &to_linear_table(ColorSpace::kLinear), &cube_root_table()}) {
    EXPECT_EQ((*table)[0], 0);
    EXPECT_EQ((*table)[65535], 65535);
    for (size_t i = 1; i < table->size(); ++i) ASSERT_LE((*table)[i - 1], (*table)[i]) << i;
  }
  for (int s = 0; s < 256; ++s) {  // a sample's linear value is the same from either space
    EXPECT_EQ(to_linear_table(ColorSpace::kSrgb)[static_cast<size_t>(s * 257)],
              to_working_table(ColorSpace::kLinear)[static_cast<size_t>(s)]);
  }
}

TEST(Oklab, WhiteGreysAndPrimaries) {
  EXPECT_EQ(oklab_from_linear(65535, 65535, 65535), (Oklab{65535, 0, 0}));
  EXPECT_EQ(oklab_from_linear(0, 0, 0), (Oklab{0, 0, 0}));
  for (int s = 1; s < 255; ++s) {
    const Oklab grey =
        oklab_from_linear(linear_of(static_cast<uint8_t>(s)), linear_of(static_cast<uint8_t>(s)),
                          linear_of(static_cast<uint8_t>(s)));
    EXPECT_EQ(grey[1], 0) << s;
    EXPECT_EQ(grey[2], 0) << s;
  }
  // sRGB red in Oklab (CSS Color 4 gives oklab(0.62796 0.22486 0.12585)).
  const Oklab red = oklab_from_linear(65535, 0, 0);
  EXPECT_NEAR(red[0] / 65535.0, 0.62796, 3e-4);
  EXPECT_NEAR(red[1] / 65535.0, 0.22486, 3e-4);
  EXPECT_NEAR(red[2] / 65535.0, 0.12585, 3e-4);
}

// The integer conversion stays within 0.0035 of the exact formula, by Ottosson's linear-sRGB
// matrix and through XYZ by his XYZ matrix (sRGB to XYZ by the IEC 61966-2-1 matrix).
TEST(Oklab, IntegersFollowTheExactFormula) {
  const double srgb_to_xyz[3][3] = {{0.4124564, 0.3575761, 0.1804375},
                                    {0.2126729, 0.7151522, 0.0721750},
                                    {0.0193339, 0.1191920, 0.9503041}};
  double worst = 0;
  double worst_xyz = 0;
  for (int r = 0; r < 256; r += 3) {
    for (int g = 0; g < 256; g += 5) {
      for (int b = 0; b < 256; b += 7) {
        const std::array<int32_t, 3> lin{linear_of(static_cast<uint8_t>(r)),
                                         linear_of(static_cast<uint8_t>(g)),
                                         linear_of(static_cast<uint8_t>(b))};
        const Oklab got = oklab_from_linear(lin[0], lin[1], lin[2]);
        const std::array<double, 3> v{lin[0] / 65535.0, lin[1] / 65535.0, lin[2] / 65535.0};
        std::array<double, 3> xyz{};
        for (size_t i = 0; i < 3; ++i) {
          xyz[i] = srgb_to_xyz[i][0] * v[0] + srgb_to_xyz[i][1] * v[1] + srgb_to_xyz[i][2] * v[2];
        }
        const auto exact = oklab_double(kSrgbToLms, v);
        const auto via_xyz = oklab_double(kXyzToLms, xyz);
        for (size_t i = 0; i < 3; ++i) {
          worst = std::max(worst, std::fabs(got[i] / 65535.0 - exact[i]));
          worst_xyz = std::max(worst_xyz, std::fabs(got[i] / 65535.0 - via_xyz[i]));
        }
      }
    }
  }
  EXPECT_LT(worst, 0.0035);
  EXPECT_LT(worst_xyz, 0.0040);
}

// ---- The engine against the reference ----

std::vector<Palette> test_palettes(const Image& photo) {
  return {palette("ega"), palette("cga4"), Palette::from_colors(adaptive_palette(photo, 12)),
          palette("levels:2"),
          // Equidistant colours, to exercise ties.
          Palette::from_colors({{0, 0, 0}, {2, 0, 0}, {0, 2, 0}, {255, 255, 255}})};
}

TEST(Distance, NearestEqualsTheReferenceEverywhere) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> any(0, kWorkingMax);
  const Image photo = testing::synthetic_photo(40, 30);
  std::vector<Palette> palettes = test_palettes(photo);
  palettes.push_back(palette("pico8"));
  palettes.push_back(palette("websafe"));
  std::vector<Color> random200;
  for (int i = 0; i < 200; ++i) {
    random200.push_back(Color{static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()),
                              static_cast<uint8_t>(rng())});
  }
  palettes.push_back(Palette::from_colors(random200));
  for (const Palette& p : palettes) {
    if (p.is_levels()) continue;
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (Metric metric : {Metric::kOklab, Metric::kCiede2000}) {
        const Quantizer q(p, space, metric);
        const reference::RefPalette ref{&p, space, metric};
        // The reference converts every colour afresh for every point: keep it small.
        const int points =
            std::max(300, (metric == Metric::kOklab ? 60000 : 4000) / static_cast<int>(p.size()));
        for (int i = 0; i < points; ++i) {
          std::array<int32_t, 3> w{any(rng), any(rng), any(rng)};
          if (i % 4 == 0) w = {w[0] & 0xf800, w[1] | 0x07ff, w[2] >> 6};  // cell borders, darks
          const Color expected = reference::nearest(ref, w, nullptr);
          ASSERT_EQ(q.color(q.nearest(w[0], w[1], w[2])), expected)
              << p.describe() << " " << metric_name(metric) << " at " << w[0] << "," << w[1] << ","
              << w[2];
        }
      }
    }
  }
}

TEST(Distance, EngineEqualsReferenceForEveryAlgorithm) {
  const Image photo = testing::synthetic_photo(31, 23);
  const Image rgba = testing::synthetic_photo(17, 13, 4);
  const Algorithm algorithms[] = {Algorithm::kFloydSteinberg, Algorithm::kAtkinson,
                                  Algorithm::kBayer,          Algorithm::kBlueNoise,
                                  Algorithm::kRiemersma,      Algorithm::kYliluoma,
                                  Algorithm::kDotDiffusion};
  for (const Palette& p : test_palettes(photo)) {
    for (Metric metric : {Metric::kOklab, Metric::kCiede2000}) {
      for (Algorithm a : algorithms) {
        for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
          DitherOptions o;
          o.algorithm = a;
          o.metric = metric;
          o.color_space = space;
          o.serpentine = space == ColorSpace::kSrgb;
          for (const Image* img : {&photo, &rgba}) {
            const Image want = reference::dither(*img, p, o);
            for (int threads : {1, 2, 3}) {
              o.threads = threads;
              const Image got = *dither_image(*img, p, o);
              ASSERT_EQ(got.pixels, want.pixels)
                  << algorithm_name(a) << " " << p.describe() << " " << metric_name(metric)
                  << (space == ColorSpace::kSrgb ? " srgb" : " linear") << " threads " << threads
                  << " " << img->channels << " channels";
            }
          }
        }
      }
    }
  }
}

// ---- What the distances change ----

// Navy and purple in linear light on EGA: plain RGB distance takes dark grey (85,85,85) for
// both, Oklab the blue (0,0,170) and the magenta (170,0,170) the eye sees; Delta E 2000 agrees.
TEST(Distance, OklabKeepsTheHueThatRgbLoses) {
  const Palette ega = palette("ega");
  const auto& tw = to_working_table(ColorSpace::kLinear);
  const struct {
    Color input, rgb, perceptual;
  } cases[] = {{{0, 0, 128}, {85, 85, 85}, {0, 0, 170}},
               {{128, 0, 128}, {85, 85, 85}, {170, 0, 170}}};
  for (const auto& c : cases) {
    const int r = tw[c.input.r], g = tw[c.input.g], b = tw[c.input.b];
    const Quantizer rgb(ega, ColorSpace::kLinear, Metric::kEuclidean);
    const Quantizer oklab(ega, ColorSpace::kLinear, Metric::kOklab);
    const Quantizer de(ega, ColorSpace::kLinear, Metric::kCiede2000);
    EXPECT_EQ(rgb.color(rgb.nearest(r, g, b)), c.rgb) << to_hex(c.input);
    EXPECT_EQ(oklab.color(oklab.nearest(r, g, b)), c.perceptual) << to_hex(c.input);
    EXPECT_EQ(de.color(de.nearest(r, g, b)), c.perceptual) << to_hex(c.input);
    // And by an independent measure the Oklab choice is the closer one.
    EXPECT_LT(ciede2000(cielab_of(c.input), cielab_of(c.perceptual)),
              ciede2000(cielab_of(c.input), cielab_of(c.rgb)));
  }
}

// A flat navy area dithered to EGA: with rgb the grey dots mix in, with oklab it stays blue and
// black (error diffusion through the sample-cell table).
TEST(Distance, ErrorDiffusionWithOklabStaysInTheHue) {
  const Image navy = testing::flat(32, 32, 0, 0, 128);
  DitherOptions o;
  o.metric = Metric::kOklab;
  const Image out = *dither_image(navy, palette("ega"), o);
  for (size_t i = 0; i < out.pixel_count(); ++i) {
    const Color c{out.pixels[3 * i], out.pixels[3 * i + 1], out.pixels[3 * i + 2]};
    const bool blue_or_black = c == Color{0, 0, 0} || c == Color{0, 0, 170};
    ASSERT_TRUE(blue_or_black) << to_hex(c) << " at " << i;
  }
}

TEST(Distance, NamesAndAliases) {
  for (const MetricInfo& m : metrics()) {
    EXPECT_EQ(*parse_metric(m.name), m.metric);
    EXPECT_EQ(metric_name(m.metric), m.name);
  }
  EXPECT_EQ(*parse_metric("Perceptual"), Metric::kPerceptual);
  EXPECT_EQ(*parse_metric("OKLAB"), Metric::kOklab);
  EXPECT_FALSE(parse_metric("cie76").ok());
  EXPECT_EQ(metric_name(Metric::kCiede2000), "ciede2000");
}

}  // namespace
}  // namespace dither::engine
