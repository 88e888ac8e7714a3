// Riemersma, Yliluoma and dot diffusion against the reference, plus tone and palette properties.
#include <gtest/gtest.h>

#include "engine/dither.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

using testing::all_in_palette;
using testing::palette;

// The engine equals the reference for `algorithm` on `images` with each palette of `specs`, in
// sRGB and in linear light, at full strength (plain distance) and at 0.55 (luma-weighted), at each
// thread count of `threads`; every pixel is a palette colour.
void expect_engine_equals_reference(Algorithm algorithm, const std::vector<Image>& images,
                                    std::initializer_list<const char*> specs,
                                    std::initializer_list<int> threads) {
  for (const char* spec : specs) {
    const Palette p = palette(spec);
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (double strength : {1.0, 0.55}) {
        DitherOptions o;
        o.algorithm = algorithm;
        o.color_space = space;
        o.strength = strength;
        o.metric = strength < 1.0 ? Metric::kPerceptual : Metric::kEuclidean;
        for (const Image& img : images) {
          const Image want = reference::dither(img, p, o);
          for (int n : threads) {
            o.threads = n;
            const Image got = *dither_image(img, p, o);
            EXPECT_EQ(got.pixels, want.pixels) << spec << " strength " << strength << " threads "
                                               << n << " " << img.width << "x" << img.height;
            EXPECT_TRUE(all_in_palette(got, p)) << spec;
          }
        }
      }
    }
  }
}

TEST(Riemersma, EngineEqualsReference) {
  // Non-square and very wide images: the curve's square is mostly outside them.
  expect_engine_equals_reference(
      Algorithm::kRiemersma,
      {testing::synthetic_photo(37, 29, 4), testing::synthetic_photo(70, 9, 3),
       testing::synthetic_photo(1, 5, 3)},
      {"levels:2", "levels:5", "ega", "gameboy", "#102030,#c0ffee,#ff00ff", "grey:4"}, {2});
}

// A flat mid grey (128) to black and white with `o`: in sRGB the mean stays 128 (within
// `srgb_tolerance`); in linear light the share of white is 128's linear intensity (within
// `linear_tolerance`).
void expect_tone_of_mid_grey(DitherOptions o, double srgb_tolerance, double linear_tolerance) {
  const Image grey = testing::flat(96, 80, 128, 128, 128);
  o.color_space = ColorSpace::kSrgb;
  const Image out = *dither_image(grey, Palette::uniform_levels(2), o);
  double mean = 0.0;
  for (size_t i = 0; i < grey.pixel_count(); ++i) mean += out.pixels[i * 3];
  mean /= static_cast<double>(grey.pixel_count());
  EXPECT_NEAR(mean, 128.0, srgb_tolerance);

  o.color_space = ColorSpace::kLinear;
  const Image lin = *dither_image(grey, Palette::uniform_levels(2), o);
  double lit = 0.0;
  for (size_t i = 0; i < grey.pixel_count(); ++i) lit += lin.pixels[i * 3] == 255;
  lit /= static_cast<double>(grey.pixel_count());
  EXPECT_NEAR(lit, srgb_to_linear(128 / 255.0), linear_tolerance);
}

TEST(Riemersma, KeepsTheToneOfAFlatMidGrey) {
  DitherOptions o;
  o.algorithm = Algorithm::kRiemersma;
  expect_tone_of_mid_grey(o, 1.0, 0.005);
}

TEST(Yliluoma, EngineEqualsReference) {
  const Image rgba = testing::synthetic_photo(23, 17, 4);
  const Image rgb = testing::synthetic_photo(19, 11, 3);
  // websafe has more than 16 colours: the candidate preselection is exercised.
  for (const char* spec : {"levels:2", "levels:5", "ega", "gameboy", "#102030,#c0ffee,#ff00ff",
                           "grey:4", "bw", "websafe"}) {
    const Palette p = palette(spec);
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (int threads : {1, 2}) {
        DitherOptions o;
        o.algorithm = Algorithm::kYliluoma;
        o.color_space = space;
        o.threads = threads;
        o.strength = threads == 1 ? 1.0 : 0.6;
        o.metric = threads == 1 ? Metric::kEuclidean : Metric::kPerceptual;
        const Image& img = threads == 1 ? rgba : rgb;
        const Image got = *dither_image(img, p, o);
        EXPECT_EQ(got.pixels, reference::dither(img, p, o).pixels)
            << spec << " threads " << threads << " " << img.width << "x" << img.height;
        EXPECT_TRUE(all_in_palette(got, p)) << spec;
      }
    }
  }
}

TEST(Yliluoma, LevelsPalettesGetBayerEight) {
  const Image img = testing::synthetic_photo(40, 30, 3);
  DitherOptions o;
  o.algorithm = Algorithm::kYliluoma;
  const Image got = *dither_image(img, Palette::uniform_levels(3), o);
  o.algorithm = Algorithm::kBayer;
  o.bayer_size = 8;
  EXPECT_EQ(got.pixels, dither_image(img, Palette::uniform_levels(3), o)->pixels);
}

TEST(Yliluoma, MixesTowardsTheInputColour) {
  // A mid grey between black and white: about half of each, in the working space's sense.
  const Image grey = testing::flat(16, 16, 128, 128, 128);
  DitherOptions o;
  o.color_space = ColorSpace::kSrgb;  // this test is about sRGB tone
  o.algorithm = Algorithm::kYliluoma;
  const Image out = *dither_image(grey, palette("bw"), o);
  int white = 0;
  for (size_t i = 0; i < grey.pixel_count(); ++i) white += out.pixels[i * 3] == 255;
  EXPECT_NEAR(white, 128, 4);
  // Strength 0: every pixel takes the plan's median, a single colour.
  o.strength = 0.0;
  const Image flat = *dither_image(grey, palette("ega"), o);
  for (size_t i = 1; i < grey.pixel_count(); ++i) {
    ASSERT_EQ(flat.pixels[i * 3], flat.pixels[0]);
    ASSERT_EQ(flat.pixels[i * 3 + 1], flat.pixels[1]);
    ASSERT_EQ(flat.pixels[i * 3 + 2], flat.pixels[2]);
  }
}

TEST(DotDiffusion, EngineEqualsReference) {
  // Sizes not multiples of 8, a single row and column, and an image tall enough for 3 threads.
  expect_engine_equals_reference(
      Algorithm::kDotDiffusion,
      {testing::synthetic_photo(37, 29, 4), testing::synthetic_photo(70, 9, 3),
       testing::synthetic_photo(1, 5, 3), testing::synthetic_photo(13, 1, 4),
       testing::synthetic_photo(21, 203, 3)},
      {"levels:2", "levels:5", "ega", "gameboy", "#102030,#c0ffee,#ff00ff", "grey:4", "websafe"},
      {1, 2, 3});
}

TEST(DotDiffusion, AlphaIsCopied) {
  const Image img = testing::synthetic_photo(19, 23, 4);
  DitherOptions o;
  o.algorithm = Algorithm::kDotDiffusion;
  const Image got = *dither_image(img, palette("pico8"), o);
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    ASSERT_EQ(got.pixels[i * 4 + 3], img.pixels[i * 4 + 3]);
  }
}

TEST(DotDiffusion, KeepsTheToneOfAFlatGrey) {
  // Error reaches only higher classes and barons keep theirs, so tone is kept closely, not exactly.
  DitherOptions o;
  o.algorithm = Algorithm::kDotDiffusion;
  expect_tone_of_mid_grey(o, 4.0, 0.02);

  // Strength 0 passes no error: plain nearest colour, as `threshold`.
  const Image photo = testing::synthetic_photo(30, 20, 3);
  o.strength = 0.0;
  const Image zero = *dither_image(photo, palette("ega"), o);
  o.algorithm = Algorithm::kThreshold;
  EXPECT_EQ(zero.pixels, dither_image(photo, palette("ega"), o)->pixels);
}

TEST(DotDiffusion, NamesParse) {
  EXPECT_EQ(*parse_algorithm("dot-diffusion"), Algorithm::kDotDiffusion);
  EXPECT_EQ(*parse_algorithm("Dot_Diffusion"), Algorithm::kDotDiffusion);
  EXPECT_EQ(*parse_algorithm("knuth"), Algorithm::kDotDiffusion);
  EXPECT_FALSE(is_error_diffusion(Algorithm::kDotDiffusion));
}

}  // namespace
}  // namespace dither::engine
