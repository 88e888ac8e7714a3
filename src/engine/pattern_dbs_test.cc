// Knoll pattern dithering and direct binary search against the reference, plus their properties:
// pattern is positional and periodic, DBS lowers the perceived error to a local minimum, and both
// keep the tone of a grey ramp.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "engine/dither.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

using testing::all_in_palette;
using testing::palette;

// The engine equals the reference on `images` with levels:2, levels:5, ega, a custom list and an
// adaptive palette of each image, in sRGB and linear light, at strength 1 (plain distance) and
// 0.55 (luma-weighted), at 1-3 threads; every pixel is a palette colour.
void expect_engine_equals_reference(Algorithm algorithm, const std::vector<Image>& images) {
  for (const char* spec :
       {"levels:2", "levels:5", "ega", "#102030,#c0ffee,#ff00ff", "adaptive:12"}) {
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (double strength : {1.0, 0.55}) {
        DitherOptions o;
        o.algorithm = algorithm;
        o.color_space = space;
        o.strength = strength;
        o.metric = strength < 1.0 ? Metric::kPerceptual : Metric::kEuclidean;
        for (const Image& img : images) {
          const Palette p = palette(spec, img);
          const Image want = reference::dither(img, p, o);
          for (int threads : {1, 2, 3}) {
            o.threads = threads;
            const Image got = *dither_image(img, p, o);
            ASSERT_EQ(got.pixels, want.pixels)
                << spec << (space == ColorSpace::kSrgb ? " srgb" : " linear") << " strength "
                << strength << " threads " << threads << " " << img.width << "x" << img.height;
            EXPECT_TRUE(all_in_palette(got, p)) << spec;
          }
        }
      }
    }
  }
}

TEST(Pattern, EngineEqualsReference) {
  // Sizes not multiples of 8, a single row and column, RGBA, and tall enough for 3 threads.
  expect_engine_equals_reference(
      Algorithm::kPattern, {testing::synthetic_photo(37, 29, 4), testing::synthetic_photo(70, 9, 3),
                            testing::synthetic_photo(1, 5, 3), testing::synthetic_photo(13, 1, 4),
                            testing::synthetic_photo(11, 31, 3), testing::noise(19, 17, 3, 5)});
}

TEST(Dbs, EngineEqualsReference) {
  // Small: the reference filters a window per tried colour. Column 0 of the RGBA photos has
  // alpha 0 (weight 0 in the error).
  expect_engine_equals_reference(
      Algorithm::kDbs, {testing::synthetic_photo(17, 13, 4), testing::synthetic_photo(24, 6, 3),
                        testing::synthetic_photo(1, 6, 3), testing::synthetic_photo(9, 1, 4),
                        testing::noise(11, 9, 3, 9)});
}

TEST(Pattern, FlatAreasRepeatTheBayerTile) {
  for (const char* spec : {"levels:2", "ega", "#102030,#c0ffee,#ff00ff"}) {
    const Palette p = palette(spec);
    DitherOptions o;
    o.algorithm = Algorithm::kPattern;
    const Image out = *dither_image(testing::flat(40, 24, 90, 140, 200), p, o);
    bool mixed = false;
    for (int y = 0; y < out.height; ++y) {
      for (int x = 0; x < out.width; ++x) {
        const uint8_t* px = out.at(x, y);
        const uint8_t* tile = out.at(x % 8, y % 8);
        ASSERT_TRUE(std::equal(px, px + 3, tile)) << spec << " " << x << "," << y;
        mixed = mixed || !std::equal(px, px + 3, out.at(0, 0));
      }
    }
    EXPECT_TRUE(mixed) << spec << ": a colour between palette entries is mixed";
  }
}

TEST(Pattern, OutputDependsOnlyOnColourAndMatrixCell) {
  // Noise, with the top-left 8x8 tile copied to (16, 8) and (32, 16): same colours, same cells.
  Image img = testing::noise(48, 32, 3, 3);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      std::copy_n(img.at(x, y), 3, img.at(x + 16, y + 8));
      std::copy_n(img.at(x, y), 3, img.at(x + 32, y + 16));
    }
  }
  DitherOptions o;
  o.algorithm = Algorithm::kPattern;
  o.threads = 3;
  const Image out = *dither_image(img, palette("pico8"), o);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      EXPECT_TRUE(std::equal(out.at(x, y), out.at(x, y) + 3, out.at(x + 16, y + 8)));
      EXPECT_TRUE(std::equal(out.at(x, y), out.at(x, y) + 3, out.at(x + 32, y + 16)));
    }
  }
}

TEST(PatternAndDbs, StrengthZeroIsPlainNearestColour) {
  const Image photo = testing::synthetic_photo(30, 20, 3);
  for (Algorithm a : {Algorithm::kPattern, Algorithm::kDbs}) {
    for (const char* spec : {"ega", "levels:3"}) {
      DitherOptions o;
      o.algorithm = a;
      o.strength = 0.0;
      const Image zero = *dither_image(photo, palette(spec), o);
      o.algorithm = Algorithm::kThreshold;
      EXPECT_EQ(zero.pixels, dither_image(photo, palette(spec), o)->pixels) << spec;
    }
  }
}

// DBS's perceived error with plain weights and lambda 0 (strength 1), computed from scratch:
// sum over the whole plane of (h * d)^2, d = output - source in working values >> 2.
int64_t perceived_error(const Image& src, const Image& out, ColorSpace space) {
  const int g[7] = {1, 2, 4, 5, 4, 2, 1};
  const auto& tw = to_working_table(space);
  int64_t total = 0;
  for (int my = -3; my < src.height + 3; ++my) {
    for (int mx = -3; mx < src.width + 3; ++mx) {
      for (int c = 0; c < 3; ++c) {
        int64_t e = 0;
        for (int j = -3; j <= 3; ++j) {
          for (int i = -3; i <= 3; ++i) {
            const int x = mx + i;
            const int y = my + j;
            if (x < 0 || y < 0 || x >= src.width || y >= src.height) continue;
            const int64_t d = (tw[out.at(x, y)[c]] >> 2) - (tw[src.at(x, y)[c]] >> 2);
            e += g[i + 3] * g[j + 3] * d;
          }
        }
        total += e * e;
      }
    }
  }
  return total;
}

TEST(Dbs, LowersThePerceivedErrorOfItsStart) {
  for (const char* spec : {"levels:2", "ega", "adaptive:6"}) {
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      const Image img = testing::synthetic_photo(32, 24, 3);
      const Palette p = palette(spec, img);
      DitherOptions o;
      o.color_space = space;
      o.algorithm = Algorithm::kFloydSteinberg;
      const int64_t start = perceived_error(img, *dither_image(img, p, o), space);
      o.algorithm = Algorithm::kDbs;
      const int64_t end = perceived_error(img, *dither_image(img, p, o), space);
      EXPECT_LT(end, start) << spec;
      EXPECT_LT(end, start / 100 * 85) << spec << ": a clear improvement on Floyd-Steinberg";
    }
  }
}

TEST(Dbs, EndsInALocalMinimumOnATinyImage) {
  // No pixel can take another palette colour, nor swap colours with a neighbour, and lower the
  // error: the search stopped after a pass with no change, not at the pass bound.
  const Image img = testing::synthetic_photo(12, 10, 3);
  for (const char* spec : {"levels:2", "cga4"}) {
    const Palette p = palette(spec);
    DitherOptions o;
    o.algorithm = Algorithm::kDbs;
    o.color_space = ColorSpace::kSrgb;
    Image out = *dither_image(img, p, o);
    const int64_t best = perceived_error(img, out, o.color_space);
    std::vector<Color> choices = p.colors();
    if (p.is_levels()) {
      for (uint32_t rgb = 0; rgb < 8; ++rgb) {
        choices.push_back(Color{uint8_t(rgb & 4 ? 255 : 0), uint8_t(rgb & 2 ? 255 : 0),
                                uint8_t(rgb & 1 ? 255 : 0)});
      }
    }
    auto set = [&](int x, int y, Color c) {
      out.at(x, y)[0] = c.r;
      out.at(x, y)[1] = c.g;
      out.at(x, y)[2] = c.b;
    };
    auto get = [&](int x, int y) {
      return Color{out.at(x, y)[0], out.at(x, y)[1], out.at(x, y)[2]};
    };
    for (int y = 0; y < img.height; ++y) {
      for (int x = 0; x < img.width; ++x) {
        const Color kept = get(x, y);
        for (const Color c : choices) {
          set(x, y, c);
          ASSERT_GE(perceived_error(img, out, o.color_space), best) << spec << " " << x << "," << y;
        }
        set(x, y, kept);
        for (int ny = y - 1; ny <= y + 1; ++ny) {
          for (int nx = x - 1; nx <= x + 1; ++nx) {
            if (nx < 0 || ny < 0 || nx >= img.width || ny >= img.height) continue;
            const Color other = get(nx, ny);
            set(x, y, other);
            set(nx, ny, kept);
            ASSERT_GE(perceived_error(img, out, o.color_space), best)
                << spec << " swap " << x << "," << y;
            set(x, y, kept);
            set(nx, ny, other);
          }
        }
      }
    }
  }
}

// Mean light of each 32-column band of a dithered grey ramp against the ramp's own: in linear
// light, the fraction of white pixels against the linear intensity of the input.
void expect_ramp_tone(Algorithm a, ColorSpace space, double tolerance) {
  const Image ramp = testing::grey_ramp(256, 48);
  DitherOptions o;
  o.algorithm = a;
  o.color_space = space;
  const Image out = *dither_image(ramp, Palette::uniform_levels(2), o);
  auto light = [&](uint8_t s) {
    return space == ColorSpace::kLinear ? srgb_to_linear(s / 255.0) : s / 255.0;
  };
  for (int band = 0; band < 8; ++band) {
    double want = 0.0;
    double got = 0.0;
    for (int y = 0; y < ramp.height; ++y) {
      for (int x = band * 32; x < band * 32 + 32; ++x) {
        want += light(ramp.at(x, y)[0]);
        got += out.at(x, y)[0] / 255.0;
      }
    }
    EXPECT_NEAR(got / (32.0 * ramp.height), want / (32.0 * ramp.height), tolerance)
        << algorithm_name(a) << " band " << band;
  }
}

TEST(PatternAndDbs, KeepTheToneOfAGreyRamp) {
  for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
    expect_ramp_tone(Algorithm::kPattern, space, 0.02);
    expect_ramp_tone(Algorithm::kDbs, space, 0.02);
  }
}

TEST(Dbs, RefusesImagesOverItsPixelBound) {
  DitherOptions o;
  o.algorithm = Algorithm::kDbs;
  const Palette p = resolve_palette(*parse_palette_spec("levels:2"), Image());
  // One row of the bound's width is quick; one pixel more is refused before any work.
  EXPECT_TRUE(dither_image(Image(2048, 1, 3), p, o).ok());
  const auto too_big = dither_image(Image(2049, 2048, 3), p, o);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message.find("at most 4194304 pixels"), std::string::npos)
      << too_big.error().message;
  EXPECT_TRUE(dither_image(Image(2049, 2048, 3), p, DitherOptions{}).ok());
}

TEST(PatternAndDbs, NamesParse) {
  EXPECT_EQ(*parse_algorithm("pattern"), Algorithm::kPattern);
  EXPECT_EQ(*parse_algorithm("Knoll"), Algorithm::kPattern);
  EXPECT_EQ(*parse_algorithm("dbs"), Algorithm::kDbs);
  EXPECT_EQ(*parse_algorithm("direct-binary-search"), Algorithm::kDbs);
  EXPECT_FALSE(is_error_diffusion(Algorithm::kPattern));
  EXPECT_FALSE(is_error_diffusion(Algorithm::kDbs));
}

}  // namespace
}  // namespace dither::engine
