// Adaptive palettes: size, determinism, exactness on few-colour images, clusters, small and
// oblong images, and the refinement for error diffusion.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "engine/dither.h"
#include "engine/palette.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

// Mean squared sRGB distance from each pixel to its nearest palette colour.
double mean_error(const Image& img, const std::vector<Color>& pal) {
  double sum = 0.0;
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    const uint8_t* p = img.pixels.data() + i * static_cast<size_t>(img.channels);
    int best = std::numeric_limits<int>::max();
    for (const Color& c : pal) {
      const int dr = p[0] - c.r;
      const int dg = p[1] - c.g;
      const int db = p[2] - c.b;
      best = std::min(best, dr * dr + dg * dg + db * db);
    }
    sum += best;
  }
  return sum / static_cast<double>(img.pixel_count());
}

std::set<uint32_t> distinct_colours(const Image& img) {
  std::set<uint32_t> out;
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    const uint8_t* p = img.pixels.data() + i * static_cast<size_t>(img.channels);
    out.insert(Color{p[0], p[1], p[2]}.packed());
  }
  return out;
}

std::set<uint32_t> packed(const std::vector<Color>& colours) {
  std::set<uint32_t> out;
  for (const Color& c : colours) out.insert(c.packed());
  return out;
}

void set_pixel(Image& img, int x, int y, Color c) {
  img.at(x, y)[0] = c.r;
  img.at(x, y)[1] = c.g;
  img.at(x, y)[2] = c.b;
}

TEST(AdaptivePalette, HasExactlyCountDistinctColoursAndIsDeterministic) {
  const Image img = testing::synthetic_photo(160, 120, 4);
  ASSERT_GT(distinct_colours(img).size(), 256u);
  for (ColorSpace space : {ColorSpace::kLinear, ColorSpace::kSrgb}) {
    for (int count : {1, 2, 6, 16, 64, 256}) {
      const std::vector<Color> a = adaptive_palette(img, count, space);
      EXPECT_EQ(a, adaptive_palette(img, count, space)) << count;
      EXPECT_EQ(a.size(), static_cast<size_t>(count));
      EXPECT_EQ(packed(a).size(), a.size()) << count;
    }
  }
  // The default space is linear light, the dithering default.
  EXPECT_EQ(adaptive_palette(img, 16), adaptive_palette(img, 16, ColorSpace::kLinear));
}

TEST(AdaptivePalette, ReturnsTheColoursOfAnImageWithFewerThanCount) {
  const std::vector<Color> five = {
      {0, 0, 0}, {255, 0, 0}, {12, 200, 40}, {250, 250, 250}, {90, 90, 200}};
  Image img(50, 40, 3);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      set_pixel(img, x, y, five[static_cast<size_t>((x / 7 + y * 3) % 5)]);
    }
  }
  for (ColorSpace space : {ColorSpace::kLinear, ColorSpace::kSrgb}) {
    const std::vector<Color> got = adaptive_palette(img, 8, space);
    EXPECT_EQ(got.size(), 5u);
    EXPECT_EQ(packed(got), packed(five));
    EXPECT_EQ(adaptive_palette(img, 5, space).size(), 5u);
    EXPECT_EQ(adaptive_palette(img, 4, space).size(), 4u);
  }
}

// 200 close colours fall into few coarse bins; the palette still gets `count` of them.
TEST(AdaptivePalette, FindsCountColoursAmongManyCloseOnes) {
  Image img(200, 10, 3);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      set_pixel(img, x, y, Color{static_cast<uint8_t>(20 + x), 100, static_cast<uint8_t>(90 + y)});
    }
  }
  ASSERT_EQ(distinct_colours(img).size(), 2000u);
  for (int count : {64, 150, 256}) {
    const std::vector<Color> got = adaptive_palette(img, count);
    EXPECT_EQ(got.size(), static_cast<size_t>(count));
    EXPECT_EQ(packed(got).size(), got.size());
  }
}

// Five clusters of noisy pixels: five colours, one near each centre.
TEST(AdaptivePalette, PutsAColourNearEachClusterCentre) {
  const std::vector<Color> centres = {
      {30, 40, 200}, {220, 60, 50}, {40, 180, 70}, {240, 230, 120}, {120, 120, 120}};
  Image img(120, 100, 3);
  const Image noise = testing::noise(120, 100, 3, 11);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const Color c = centres[static_cast<size_t>((x / 24 + y / 20) % 5)];
      const uint8_t* n = noise.at(x, y);
      set_pixel(img, x, y,
                Color{static_cast<uint8_t>(c.r + n[0] % 13 - 6),
                      static_cast<uint8_t>(c.g + n[1] % 13 - 6),
                      static_cast<uint8_t>(c.b + n[2] % 13 - 6)});
    }
  }
  for (ColorSpace space : {ColorSpace::kLinear, ColorSpace::kSrgb}) {
    const std::vector<Color> got = adaptive_palette(img, 5, space);
    ASSERT_EQ(got.size(), 5u);
    for (const Color& want : centres) {
      int best = 1 << 30;
      for (const Color& c : got) {
        best = std::min(best, std::max({std::abs(c.r - want.r), std::abs(c.g - want.g),
                                        std::abs(c.b - want.b)}));
      }
      EXPECT_LE(best, 8) << to_hex(want);
    }
  }
}

TEST(AdaptivePalette, HandlesTinyAndOblongImages) {
  const Image one = testing::flat(1, 1, 9, 8, 7);
  EXPECT_EQ(adaptive_palette(one, 16), (std::vector<Color>{{9, 8, 7}}));
  Image four(2, 2, 3);
  set_pixel(four, 0, 0, {0, 0, 0});
  set_pixel(four, 1, 0, {255, 0, 0});
  set_pixel(four, 0, 1, {0, 255, 0});
  set_pixel(four, 1, 1, {0, 0, 255});
  EXPECT_EQ(adaptive_palette(four, 2).size(), 2u);
  EXPECT_EQ(adaptive_palette(four, 1).size(), 1u);
  EXPECT_TRUE(adaptive_palette(Image(0, 0, 3), 8).empty());
  // Larger than the refinement's sample, one pixel wide or high: shrunk along the long side only.
  const Image tall = testing::synthetic_photo(1, 300000);
  const Image wide = testing::synthetic_photo(300000, 1);
  for (const Image* img : {&tall, &wide}) {
    const std::vector<Color> got = adaptive_palette(*img, 8);
    EXPECT_EQ(got.size(), std::min<size_t>(8, distinct_colours(*img).size()));
  }
}

TEST(AdaptivePalette, ReadsOnlyTheColourOfRgbaPixels) {
  Image rgba = testing::synthetic_photo(64, 48, 4);
  Image rgb(64, 48, 3);
  for (size_t i = 0; i < rgb.pixel_count(); ++i) {
    for (size_t c = 0; c < 3; ++c) rgb.pixels[i * 3 + c] = rgba.pixels[i * 4 + c];
  }
  EXPECT_EQ(adaptive_palette(rgba, 12), adaptive_palette(rgb, 12));
}

TEST(AdaptivePalette, FitsTheImageBetterThanAUniformPalette) {
  const Image img = testing::synthetic_photo(160, 120, 3);
  std::vector<Color> uniform;  // levels:2, the 8 corners of the cube
  for (int i = 0; i < 8; ++i) {
    uniform.push_back(Color{static_cast<uint8_t>(i & 4 ? 255 : 0),
                            static_cast<uint8_t>(i & 2 ? 255 : 0),
                            static_cast<uint8_t>(i & 1 ? 255 : 0)});
  }
  const double adaptive = mean_error(img, adaptive_palette(img, 8));
  EXPECT_LT(adaptive, 0.25 * mean_error(img, uniform));
  // More colours, smaller error.
  EXPECT_LT(mean_error(img, adaptive_palette(img, 32)), adaptive);
}

// The refinement's point: mixes of the colours must reach the image's extremes. Clustering alone
// gives a ramp's two halves' means (about 64 and 192); a dithered ramp needs black and white.
TEST(AdaptivePalette, GivesDitheringTheRampsEnds) {
  const Image ramp = testing::grey_ramp(256, 32);
  for (ColorSpace space : {ColorSpace::kLinear, ColorSpace::kSrgb}) {
    const std::vector<Color> two = adaptive_palette(ramp, 2, space);
    ASSERT_EQ(two.size(), 2u);
    EXPECT_LE(two[0].g, 32);
    EXPECT_GE(two[1].g, 223);
  }
}

// Blurred squared error (3x3 box, linear light) between an image and its dithered version.
double blurred_error(const Image& a, const Image& b) {
  const auto& lin = to_working_table(ColorSpace::kLinear);
  double sum = 0.0;
  for (int y = 1; y + 1 < a.height; ++y) {
    for (int x = 1; x + 1 < a.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        double d = 0.0;
        for (int v = -1; v <= 1; ++v) {
          for (int u = -1; u <= 1; ++u) {
            d += static_cast<double>(lin[a.at(x + u, y + v)[c]]) - lin[b.at(x + u, y + v)[c]];
          }
        }
        sum += d * d;
      }
    }
  }
  return sum;
}

// Dithered (the defaults: Floyd-Steinberg, linear light) with its 8 adaptive colours, a photo
// looks much more like itself than with the 8 corners of the cube.
TEST(AdaptivePalette, DitheredLooksCloserThanWithTheCubesCorners) {
  const Image img = testing::synthetic_photo(160, 120, 3);
  const Palette adaptive = Palette::from_colors(adaptive_palette(img, 8));
  const Result<Image> ours = dither_image(img, adaptive, DitherOptions{});
  const Result<Image> corners = dither_image(img, Palette::uniform_levels(2), DitherOptions{});
  ASSERT_TRUE(ours && corners);
  EXPECT_LT(blurred_error(img, *ours), 0.5 * blurred_error(img, *corners));
}

TEST(AdaptivePalette, ResolvedAndDitheredTheSameAtAnyThreadCount) {
  const Image img = testing::synthetic_photo(96, 80, 3);
  const Result<PaletteSpec> spec = parse_palette_spec("adaptive:24");
  ASSERT_TRUE(spec);
  Image first;
  for (int threads = 1; threads <= 3; ++threads) {
    const Palette palette = resolve_palette(*spec, img);
    EXPECT_EQ(palette.size(), 24u);
    DitherOptions options;
    options.threads = threads;
    const Result<Image> out = dither_image(img, palette, options);
    ASSERT_TRUE(out);
    if (threads == 1) first = *out;
    EXPECT_EQ(out->pixels, first.pixels) << threads;
  }
}

}  // namespace
}  // namespace dither::engine
