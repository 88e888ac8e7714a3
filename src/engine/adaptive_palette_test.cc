// Adaptive palettes: determinism, size, exactness on few-colour images, and usefulness.
#include <gtest/gtest.h>

#include <limits>
#include <set>

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

TEST(AdaptivePalette, IsDeterministicAndAtMostCountDistinctColours) {
  const Image img = testing::synthetic_photo(160, 120, 4);
  for (int count : {1, 2, 6, 16, 64, 256}) {
    const std::vector<Color> a = adaptive_palette(img, count);
    EXPECT_EQ(a, adaptive_palette(img, count)) << count;
    EXPECT_LE(a.size(), static_cast<size_t>(count));
    EXPECT_GE(a.size(), static_cast<size_t>(std::min(count, 2)));
    std::set<uint32_t> distinct;
    for (const Color& c : a) distinct.insert(c.packed());
    EXPECT_EQ(distinct.size(), a.size()) << count;
  }
  EXPECT_GE(adaptive_palette(img, 16).size(), 14u);
}

TEST(AdaptivePalette, ReturnsTheColoursOfAnImageWithFewerThanCount) {
  const std::vector<Color> five = {
      {0, 0, 0}, {255, 0, 0}, {12, 200, 40}, {250, 250, 250}, {90, 90, 200}};
  Image img(50, 40, 3);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const Color c = five[static_cast<size_t>((x / 7 + y * 3) % 5)];
      img.at(x, y)[0] = c.r;
      img.at(x, y)[1] = c.g;
      img.at(x, y)[2] = c.b;
    }
  }
  const std::vector<Color> got = adaptive_palette(img, 8);
  std::set<uint32_t> want_set;
  for (const Color& c : five) want_set.insert(c.packed());
  std::set<uint32_t> got_set;
  for (const Color& c : got) got_set.insert(c.packed());
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(got_set, want_set);
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

}  // namespace
}  // namespace dither::engine
