// Ostromoukhov and Zhou-Fang: the engine against the reference, the published tables, tone,
// the transparency rule and the options they ignore.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "engine/dither.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"
#include "engine/variable_coefficients.h"

namespace dither::engine {
namespace {

using testing::all_in_palette;
using testing::palette;

using detail::kOstromoukhovTable;
using detail::kZhouFangKeys;
using detail::kZhouFangModulation;

constexpr std::array<Algorithm, 2> kBoth = {Algorithm::kOstromoukhov, Algorithm::kZhouFang};

// `spec` resolved against `image` (adaptive palettes come from it).
TEST(VariableDiffusion, EngineEqualsReference) {
  // Odd sizes, a single column and row, alpha (synthetic_photo's column 0 is transparent; noise
  // has random alpha, zeros included), and an image tall enough for three threads.
  const std::vector<Image> images = {
      testing::synthetic_photo(37, 29, 4), testing::synthetic_photo(70, 9, 3),
      testing::synthetic_photo(1, 5, 3),   testing::synthetic_photo(13, 1, 4),
      testing::noise(24, 21, 4, 5),        testing::synthetic_photo(21, 64, 3, 3)};
  const Image& source = images[0];
  for (Algorithm algorithm : kBoth) {
    for (const std::string spec :
         {"levels:2", "levels:5", "ega", "adaptive:7", "#102030,#c0ffee,#ff00ff", "grey:4"}) {
      const Palette p = palette(spec, source);
      for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
        for (double strength : {1.0, 0.55}) {
          DitherOptions o;
          o.algorithm = algorithm;
          o.color_space = space;
          o.strength = strength;
          o.metric = strength < 1.0 ? Metric::kPerceptual : Metric::kEuclidean;
          o.seed = strength < 1.0 ? 99 : 1;
          for (const Image& img : images) {
            const Image want = reference::dither(img, p, o);
            for (int threads : {1, 2, 3}) {
              o.threads = threads;
              const Image got = *dither_image(img, p, o);
              EXPECT_EQ(got.pixels, want.pixels)
                  << algorithm_name(algorithm) << " " << spec << " strength " << strength
                  << " threads " << threads << " " << img.width << "x" << img.height;
              EXPECT_TRUE(all_in_palette(got, p)) << algorithm_name(algorithm) << " " << spec;
            }
          }
        }
      }
    }
  }
}

TEST(VariableDiffusion, OstromoukhovTableIsThePublishedOne) {
  // Rows of var_coefs_tab in the author's varcoeffED.c (right, down-left, down, sum).
  auto row = [](size_t i) {
    const auto& c = kOstromoukhovTable[i];
    return std::array<int, 4>{c.right, c.down_left, c.down, c.sum};
  };
  EXPECT_EQ(row(0), (std::array<int, 4>{13, 0, 5, 18}));
  EXPECT_EQ(row(1), (std::array<int, 4>{13, 0, 5, 18}));
  EXPECT_EQ(row(2), (std::array<int, 4>{21, 0, 10, 31}));
  EXPECT_EQ(row(5), (std::array<int, 4>{47, 3, 28, 78}));
  EXPECT_EQ(row(11), (std::array<int, 4>{501, 224, 211, 936}));
  EXPECT_EQ(row(23), (std::array<int, 4>{459, 304, 161, 924}));
  EXPECT_EQ(row(64), (std::array<int, 4>{1, 1, 0, 2}));
  EXPECT_EQ(row(73), (std::array<int, 4>{172, 181, 37, 390}));
  EXPECT_EQ(row(108), (std::array<int, 4>{305, 176, 119, 600}));
  EXPECT_EQ(row(127), (std::array<int, 4>{4, 1, 1, 6}));
  for (size_t i = 0; i < kOstromoukhovTable.size(); ++i) {
    const auto& c = kOstromoukhovTable[i];
    EXPECT_EQ(c.right + c.down_left + c.down, c.sum) << "row " << i;
  }
}

TEST(VariableDiffusion, ZhouFangTablesAreThePublishedOnes) {
  ASSERT_EQ(kZhouFangKeys.front().level, 0);
  ASSERT_EQ(kZhouFangKeys.back().level, 127);
  for (size_t k = 0; k < kZhouFangKeys.size(); ++k) {
    const auto& c = kZhouFangKeys[k].c;
    EXPECT_EQ(c.right + c.down_left + c.down, c.sum) << "key " << kZhouFangKeys[k].level;
    if (k > 0) {
      EXPECT_LT(kZhouFangKeys[k - 1].level, kZhouFangKeys[k].level);
    }
  }
  // Levels interpolated in the authors' program, as it prints them (six decimals): keys and
  // levels between them.
  struct Printed {
    int level;
    std::array<double, 3> w;
  };
  for (const Printed& p : std::initializer_list<Printed>{
           {0, {0.722222, 0.000000, 0.277778}},
           {2, {0.682418, 0.000915, 0.316668}},
           {7, {0.579712, 0.113951, 0.306337}},
           {41, {0.452280, 0.286019, 0.261702}},
           {50, {0.410459, 0.424631, 0.164909}},
           {69, {0.377029, 0.498599, 0.124372}},
           {100, {0.348426, 0.362997, 0.288578}},
           {127, {0.352694, 0.360664, 0.286643}},
       }) {
    const std::array<double, 3> w = detail::zhou_fang_weights(p.level);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(w[i], p.w[i], 2e-6) << p.level << " " << i;
  }
  // Threshold-modulation strength, percent.
  EXPECT_EQ(kZhouFangModulation[0], 0);
  EXPECT_EQ(kZhouFangModulation[2], 1);
  EXPECT_EQ(kZhouFangModulation[44], 34);
  EXPECT_EQ(kZhouFangModulation[64], 50);
  EXPECT_EQ(kZhouFangModulation[80], 100);
  EXPECT_EQ(kZhouFangModulation[95], 17);
  EXPECT_EQ(kZhouFangModulation[107], 70);
  EXPECT_EQ(kZhouFangModulation[127], 100);
}

// docs/ENGINE.md's hand-checked example: a row of grey 128 (level 127: 4, 1, 1 / 6) in sRGB.
TEST(VariableDiffusion, HandCheckedRow) {
  const Image grey = testing::flat(4, 1, 128, 128, 128);
  DitherOptions o;
  o.algorithm = Algorithm::kOstromoukhov;
  o.color_space = ColorSpace::kSrgb;
  const Image out = *dither_image(grey, Palette::uniform_levels(2), o);
  const std::vector<uint8_t> reds = {out.pixels[0], out.pixels[3], out.pixels[6], out.pixels[9]};
  EXPECT_EQ(reds, (std::vector<uint8_t>{255, 0, 255, 0}));
}

// Flat greys to black and white in linear light: the share of white pixels is the grey's linear
// intensity. With all of the error passed on, only the last row's and the edges' error is lost.
TEST(VariableDiffusion, KeepsTheToneOfFlatGreys) {
  for (Algorithm algorithm : kBoth) {
    for (int g : {3, 20, 64, 100, 128, 160, 200, 240, 252}) {
      const Image grey = testing::flat(256, 192, static_cast<uint8_t>(g), static_cast<uint8_t>(g),
                                       static_cast<uint8_t>(g));
      DitherOptions o;
      o.algorithm = algorithm;
      const Image out = *dither_image(grey, Palette::uniform_levels(2), o);
      double lit = 0.0;
      for (size_t i = 0; i < grey.pixel_count(); ++i) lit += out.pixels[i * 3] == 255;
      lit /= static_cast<double>(grey.pixel_count());
      EXPECT_NEAR(lit, srgb_to_linear(g / 255.0), 0.002) << algorithm_name(algorithm) << " " << g;
    }
  }
}

// A grey ramp in linear light: every band of 32 columns keeps its mean intensity.
TEST(VariableDiffusion, KeepsTheToneOfAGreyRamp) {
  const Image ramp = testing::grey_ramp(256, 128);
  for (Algorithm algorithm : kBoth) {
    DitherOptions o;
    o.algorithm = algorithm;
    const Image out = *dither_image(ramp, Palette::uniform_levels(2), o);
    for (int x0 = 0; x0 < ramp.width; x0 += 32) {
      double want = 0.0;
      double got = 0.0;
      for (int y = 0; y < ramp.height; ++y) {
        for (int x = x0; x < x0 + 32; ++x) {
          want += srgb_to_linear(ramp.at(x, y)[0] / 255.0);
          got += out.at(x, y)[0] == 255;
        }
      }
      const double n = 32.0 * ramp.height;
      EXPECT_NEAR(got / n, want / n, 0.01) << algorithm_name(algorithm) << " columns " << x0;
    }
  }
}

// A transparent pixel passes on no error: whatever its colour, the visible pixels come out the
// same. (When the same pixels are opaque, their colour does change the others: the check bites.)
TEST(VariableDiffusion, TransparentPixelsPassNoError) {
  Image dark = testing::synthetic_photo(40, 30, 4, 11);
  for (size_t i = 0; i < dark.pixel_count(); ++i) dark.pixels[i * 4 + 3] = 255;
  auto hidden = [](int x, int y) { return x == 9 || (x >= 20 && x < 26 && y >= 10 && y < 14); };
  for (int y = 0; y < dark.height; ++y) {
    for (int x = 0; x < dark.width; ++x) {
      if (!hidden(x, y)) continue;
      uint8_t* p = dark.at(x, y);
      p[0] = p[1] = p[2] = 0;
      p[3] = 0;
    }
  }
  Image light = dark;
  for (int y = 0; y < dark.height; ++y) {
    for (int x = 0; x < dark.width; ++x) {
      if (hidden(x, y)) light.at(x, y)[0] = light.at(x, y)[1] = light.at(x, y)[2] = 255;
    }
  }
  auto visible_differ = [&](const Image& a, const Image& b) {
    for (int y = 0; y < a.height; ++y) {
      for (int x = 0; x < a.width; ++x) {
        if (hidden(x, y)) continue;
        for (int c = 0; c < 3; ++c) {
          if (a.at(x, y)[c] != b.at(x, y)[c]) return true;
        }
      }
    }
    return false;
  };
  for (Algorithm algorithm : kBoth) {
    for (const char* spec : {"levels:2", "ega"}) {
      DitherOptions o;
      o.algorithm = algorithm;
      const Palette p = palette(spec);
      EXPECT_FALSE(visible_differ(*dither_image(dark, p, o), *dither_image(light, p, o)))
          << algorithm_name(algorithm) << " " << spec;
      Image dark_opaque = dark;
      Image light_opaque = light;
      for (size_t i = 0; i < dark.pixel_count(); ++i) {
        dark_opaque.pixels[i * 4 + 3] = light_opaque.pixels[i * 4 + 3] = 255;
      }
      EXPECT_TRUE(
          visible_differ(*dither_image(dark_opaque, p, o), *dither_image(light_opaque, p, o)))
          << algorithm_name(algorithm) << " " << spec;
    }
  }
}

TEST(VariableDiffusion, SerpentineThreadsAndSeed) {
  const Image photo = testing::synthetic_photo(50, 40, 3);
  const Palette p = palette("pico8");
  for (Algorithm algorithm : kBoth) {
    DitherOptions o;
    o.algorithm = algorithm;
    const Image base = *dither_image(photo, p, o);
    // Always serpentine, one thread.
    o.serpentine = true;
    o.threads = 0;
    EXPECT_EQ(dither_image(photo, p, o)->pixels, base.pixels) << algorithm_name(algorithm);
    // Only Zhou-Fang's modulation uses the seed.
    o.seed = 2;
    const Image reseeded = *dither_image(photo, p, o);
    if (algorithm == Algorithm::kZhouFang) {
      EXPECT_NE(reseeded.pixels, base.pixels);
    } else {
      EXPECT_EQ(reseeded.pixels, base.pixels);
    }
  }
}

TEST(VariableDiffusion, StrengthZeroIsPlainNearestColour) {
  const Image photo = testing::synthetic_photo(30, 20, 3);
  for (Algorithm algorithm : kBoth) {
    for (const char* spec : {"ega", "levels:3"}) {
      DitherOptions o;
      o.algorithm = algorithm;
      o.strength = 0.0;
      const Image zero = *dither_image(photo, palette(spec), o);
      o.algorithm = Algorithm::kThreshold;
      EXPECT_EQ(zero.pixels, dither_image(photo, palette(spec), o)->pixels)
          << algorithm_name(algorithm) << " " << spec;
    }
  }
}

TEST(VariableDiffusion, NamesParse) {
  EXPECT_EQ(*parse_algorithm("ostromoukhov"), Algorithm::kOstromoukhov);
  EXPECT_EQ(*parse_algorithm("zhou-fang"), Algorithm::kZhouFang);
  EXPECT_FALSE(is_error_diffusion(Algorithm::kOstromoukhov));
  EXPECT_FALSE(is_error_diffusion(Algorithm::kZhouFang));
}

}  // namespace
}  // namespace dither::engine
