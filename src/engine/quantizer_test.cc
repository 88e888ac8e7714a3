// The cell-based nearest-colour search must agree with brute force everywhere.
#include "engine/quantizer.h"

#include <gtest/gtest.h>

#include <random>

#include "engine/testing/reference.h"

namespace dither::engine {
namespace {

std::vector<Palette> list_palettes() {
  std::vector<Palette> out;
  for (const char* name : {"bw", "ega", "pico8", "gameboy", "websafe", "cga4"}) {
    out.push_back(Palette::from_colors(*named_palette(name)));
  }
  std::mt19937 rng(42);
  std::vector<Color> random256;
  for (int i = 0; i < 256; ++i) {
    random256.push_back(Color{static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()),
                              static_cast<uint8_t>(rng())});
  }
  out.push_back(Palette::from_colors(random256));
  out.push_back(Palette::from_colors({{128, 64, 32}}));
  // Equidistant colours, to exercise ties.
  out.push_back(Palette::from_colors({{0, 0, 0}, {2, 0, 0}, {0, 2, 0}, {255, 255, 255}}));
  return out;
}

TEST(Quantizer, CellSearchEqualsBruteForce) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> any(0, kWorkingMax);
  for (const Palette& p : list_palettes()) {
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (Metric metric : {Metric::kEuclidean, Metric::kPerceptual}) {
        const Quantizer q(p, space, metric);
        const reference::RefPalette ref{&p, space, metric};
        for (int i = 0; i < 20000; ++i) {
          std::array<int32_t, 3> w{any(rng), any(rng), any(rng)};
          if (i % 4 == 0) w = {w[0] & 0xf800, w[1] | 0x07ff, w[2]};  // cell borders
          const Color expected = reference::nearest(ref, w, nullptr);
          ASSERT_EQ(q.color(q.nearest(w[0], w[1], w[2])), expected)
              << p.describe() << " at " << w[0] << "," << w[1] << "," << w[2];
        }
      }
    }
  }
}

TEST(Quantizer, TiesGoToTheLowerIndex) {
  const Palette p = Palette::from_colors({{0, 0, 0}, {2, 0, 0}});
  const Quantizer q(p, ColorSpace::kSrgb, Metric::kEuclidean);
  EXPECT_EQ(q.nearest(257, 0, 0), 0);  // exactly between
}

TEST(Quantizer, LevelsMatchTheReference) {
  for (int c : {2, 3, 6, 17, 256}) {
    const Palette p = Palette::uniform_levels(c);
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      const Quantizer q(p, space, Metric::kEuclidean);
      const reference::RefPalette ref{&p, space, Metric::kEuclidean};
      for (int w = 0; w <= kWorkingMax; w += (c == 256 ? 1 : 7)) {
        std::array<int32_t, 3> chosen{};
        const Color expected = reference::nearest(ref, {w, w, w}, &chosen);
        const int level = q.level_of(w);
        ASSERT_EQ(q.level_output(level), expected.r) << "c=" << c << " w=" << w;
        ASSERT_EQ(q.level_working(level), chosen[0]);
      }
    }
  }
}

TEST(Quantizer, WorkingTables) {
  const auto& srgb = to_working_table(ColorSpace::kSrgb);
  const auto& lin = to_working_table(ColorSpace::kLinear);
  EXPECT_EQ(srgb[0], 0);
  EXPECT_EQ(srgb[255], 65535);
  EXPECT_EQ(lin[0], 0);
  EXPECT_EQ(lin[255], 65535);
  EXPECT_NEAR(lin[128], 0.2158605 * 65535, 1.0);  // sRGB 128 is about 21.6% linear light
  for (int i = 1; i < 256; ++i) EXPECT_GT(lin[i], lin[i - 1]);
}

}  // namespace
}  // namespace dither::engine

namespace dither::engine {
namespace {

TEST(Quantizer, CellNearestIsTheNearestColourToTheSampleCellMiddle) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> any(0, kWorkingMax);
  for (const char* name : {"ega", "pico8", "gameboy", "websafe"}) {
    const Palette p = Palette::from_colors(*named_palette(name));
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (Metric metric : {Metric::kEuclidean, Metric::kPerceptual}) {
        const Quantizer q(p, space, metric);
        const reference::RefPalette ref{&p, space, metric};
        for (int i = 0; i < 5000; ++i) {
          const std::array<int32_t, 3> w{any(rng), any(rng), any(rng)};
          // Twice: the first call fills the cell, the second reads it back.
          for (int k = 0; k < 2; ++k) {
            ASSERT_EQ(q.color(q.cell_nearest(w[0], w[1], w[2])),
                      reference::cell_nearest(ref, w, nullptr))
                << name << " at " << w[0] << "," << w[1] << "," << w[2];
          }
        }
      }
    }
  }
}

TEST(Quantizer, SampleCellsSpanFourSamples) {
  for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
    const Quantizer q(Palette::from_colors(*named_palette("bw")), space, Metric::kEuclidean);
    const auto& tw = to_working_table(space);
    for (int s = 0; s < 256; ++s) {
      EXPECT_EQ(static_cast<int>(q.sample_cell_of(tw[static_cast<size_t>(s)])), s / 4);
    }
    EXPECT_EQ(q.sample_cell_of(0), 0u);
    EXPECT_EQ(q.sample_cell_of(kWorkingMax), 63u);
  }
}

}  // namespace
}  // namespace dither::engine
