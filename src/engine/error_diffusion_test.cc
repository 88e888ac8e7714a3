// Error diffusion: the fast engine against the plain reference, byte for byte, and tone kept.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "engine/dither.h"
#include "engine/isa.h"
#include "engine/isa_config.h"
#include "engine/kernels.h"
#include "engine/srgb_cell.h"
#include "engine/testing/isa_from_environment.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

std::vector<Palette> palettes() {
  return {Palette::uniform_levels(2),
          Palette::uniform_levels(3),
          Palette::uniform_levels(256),
          Palette::from_colors(*named_palette("ega")),
          Palette::from_colors(*named_palette("gameboy")),
          Palette::from_colors({{255, 0, 0}, {0, 0, 255}, {250, 250, 240}}),
          Palette::from_colors(*named_palette("grey4"))};
}

std::vector<Algorithm> diffusion_algorithms() {
  std::vector<Algorithm> out;
  for (const auto& info : algorithms()) {
    // Custom kernels, whose taps come with the options: custom_matrix_test.cc.
    if (is_error_diffusion(info.algorithm) && info.algorithm != Algorithm::kCustomKernel) {
      out.push_back(info.algorithm);
    }
  }
  return out;
}

// ctest runs engine_test twice where the build has two copies of error diffusion's loops
// (src/engine/CMakeLists.txt): testing/isa_from_environment.h.
using testing::testing_build_copy;

TEST(Isa, TheTestsRunTheCopyTheirRunNames) {
  EXPECT_EQ(active_isa(), testing_build_copy() ? Isa::kBuild : best_isa());
#if DITHER_ENGINE_X86_64_V3
  __builtin_cpu_init();
  EXPECT_EQ(best_isa(), __builtin_cpu_supports("x86-64-v3") ? Isa::kX86_64V3 : Isa::kBuild);
#else
  EXPECT_EQ(best_isa(), Isa::kBuild);
#endif
}

TEST(Isa, LimitLowersAndRestores) {
  const Isa before = active_isa();
  detail::limit_isa(Isa::kBuild);
  EXPECT_EQ(active_isa(), Isa::kBuild);
  detail::limit_isa(Isa::kX86_64V3);
  EXPECT_EQ(active_isa(), best_isa());
  detail::limit_isa(before);
  EXPECT_EQ(isa_name(Isa::kBuild), "build");
  EXPECT_EQ(isa_name(Isa::kX86_64V3), "x86-64-v3");
}

TEST(ErrorDiffusion, EngineEqualsReferenceForEveryKernelPaletteAndOption) {
  const Image photo = testing::synthetic_photo(53, 37);
  const Image rgba = testing::synthetic_photo(29, 23, 4);
  for (Algorithm a : diffusion_algorithms()) {
    for (const Palette& p : palettes()) {
      for (int variant = 0; variant < 6; ++variant) {
        DitherOptions o;
        o.algorithm = a;
        o.serpentine = variant & 1;
        o.color_space = (variant & 2) ? ColorSpace::kLinear : ColorSpace::kSrgb;
        o.metric = variant >= 4 ? Metric::kPerceptual : Metric::kEuclidean;
        o.strength = variant == 5 ? 0.6 : 1.0;
        for (int threads : {1, 2, 3}) {
          o.threads = threads;
          for (const Image* img : {&photo, &rgba}) {
            auto out = dither_image(*img, p, o);
            ASSERT_TRUE(out.ok());
            const Image expected = reference::dither(*img, p, o);
            ASSERT_EQ(out->pixels, expected.pixels)
                << algorithm_name(a) << " " << p.describe() << " variant " << variant << " threads "
                << threads << " " << img->channels << " channels";
          }
        }
      }
    }
  }
}

TEST(ErrorDiffusion, WavefrontIsByteIdenticalOnTallAndTinyImages) {
  for (auto [w, h] :
       std::vector<std::pair<int, int>>{{1, 1}, {1, 50}, {50, 1}, {2, 9}, {7, 300}, {400, 40}}) {
    const Image img = testing::noise(w, h, 3, static_cast<uint32_t>(w * 1000 + h));
    for (Algorithm a : {Algorithm::kFloydSteinberg, Algorithm::kStevensonArce, Algorithm::kAtkinson,
                        Algorithm::kShiauFan, Algorithm::kShiauFan2}) {
      DitherOptions o;
      o.algorithm = a;
      o.threads = 1;
      const Image one = *dither_image(img, Palette::uniform_levels(2), o);
      EXPECT_EQ(one.pixels, reference::dither(img, Palette::uniform_levels(2), o).pixels);
      for (int t : {2, 4, 7}) {
        o.threads = t;
        EXPECT_EQ(dither_image(img, Palette::uniform_levels(2), o)->pixels, one.pixels)
            << w << "x" << h << " threads " << t;
      }
    }
  }
}

// The vector cell index of the sRGB list-palette path against the scalar formula, for every value
// of each channel the clamp can meet (errors reach past both ends of 0..65535).
TEST(ErrorDiffusion, SrgbCellIndexEqualsTheScalarFormulaForEveryValue) {
  auto cell = [](int v) { return static_cast<size_t>(std::clamp(v, 0, kWorkingMax) + 128) / 1028; };
  for (int v = -140000; v <= 210000; ++v) {
    const int other = (v & 0xffff) ^ 0x5a5a;  // varied companions in the other lanes
    ASSERT_EQ(detail::srgb_cell(detail::SrgbCellInput{v, other, -v, 0}),
              (cell(v) << 12) | (cell(other) << 6) | cell(-v))
        << v;
    ASSERT_EQ(detail::srgb_cell(detail::SrgbCellInput{other, v, v - 70000, 0}),
              (cell(other) << 12) | (cell(v) << 6) | cell(v - 70000))
        << v;
  }
}

// List palettes of the sizes a one-byte cell table holds (1..255; sRGB runs them on a path of
// its own) and the first of the two-byte ones (256), against the reference; linear light (the
// table path) for a third of them. Building each palette's quantiser is most of the time here.
TEST(ErrorDiffusion, EveryListPaletteSizeEqualsReference) {
  const Image photo = testing::synthetic_photo(13, 9);
  uint32_t seed = 12345;
  std::vector<Color> colors;
  for (int n = 1; n <= 256; ++n) {
    seed = seed * 1664525u + 1013904223u;
    colors.push_back({static_cast<uint8_t>(seed >> 24), static_cast<uint8_t>(seed >> 16),
                      static_cast<uint8_t>(seed >> 8)});
    // Every size up to 24 and from 250; between, every seventh (quantiser builds are slow).
    if (n > 24 && n < 250 && n % 7 != 0) continue;
    const Palette p = Palette::from_colors(colors);
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      if (space == ColorSpace::kLinear && n % 3 != 0) continue;
      DitherOptions o;
      o.color_space = space;
      o.threads = n % 3 + 1;
      auto out = dither_image(photo, p, o);
      ASSERT_TRUE(out.ok());
      ASSERT_EQ(out->pixels, reference::dither(photo, p, o).pixels)
          << n << " colours, threads " << o.threads << (space == ColorSpace::kSrgb ? " srgb" : "");
    }
  }
}

// Odd shapes against the reference: one pixel, one row or column, heights that leave a partial
// band of rows, widths shorter than the rows' lag; every kernel, 1 to 5 threads.
TEST(ErrorDiffusion, OddShapesEqualReferenceOnEveryThreadCount) {
  const std::vector<Palette> list = {Palette::from_colors(*named_palette("ega")),
                                     Palette::from_colors(*named_palette("gameboy"))};
  for (auto [w, h] : std::vector<std::pair<int, int>>{
           {1, 1}, {1, 9}, {9, 1}, {3, 7}, {5, 6}, {13, 10}, {70, 11}}) {
    for (int channels : {3, 4}) {
      const Image img = testing::noise(w, h, channels, static_cast<uint32_t>(w * 100 + h));
      for (Algorithm a : diffusion_algorithms()) {
        for (const Palette& p : list) {
          DitherOptions o;
          o.algorithm = a;
          const Image expected = reference::dither(img, p, o);
          for (int t : {1, 2, 3, 5}) {
            o.threads = t;
            auto out = dither_image(img, p, o);
            ASSERT_TRUE(out.ok());
            ASSERT_EQ(out->pixels, expected.pixels)
                << algorithm_name(a) << " " << p.describe() << " " << w << "x" << h << "x"
                << channels << " threads " << t;
          }
        }
      }
    }
  }
}

double mean_of(const Image& img, int channel) {
  double sum = 0;
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    sum += img.pixels[i * static_cast<size_t>(img.channels) + static_cast<size_t>(channel)];
  }
  return sum / static_cast<double>(img.pixel_count());
}

TEST(ErrorDiffusion, KeepsTheMeanToneOfFlatFields) {
  for (Algorithm a : diffusion_algorithms()) {
    for (uint8_t level : {uint8_t{20}, uint8_t{100}, uint8_t{128}, uint8_t{200}}) {
      // Atkinson drops 1/4 of the error by design: light and dark areas clip to solid, which is
      // its look. Only mid-grey keeps its tone.
      if (a == Algorithm::kAtkinson && level != 128) continue;
      const Image flat = testing::flat(256, 256, level, level, level);
      DitherOptions o;
      o.algorithm = a;
      o.color_space = ColorSpace::kSrgb;
      auto out = dither_image(flat, Palette::uniform_levels(2), o);
      ASSERT_TRUE(out.ok());
      EXPECT_NEAR(mean_of(*out, 0), level, 1.5) << algorithm_name(a) << " level " << int(level);
    }
  }
}

TEST(ErrorDiffusion, LinearLightKeepsTheMeanLinearIntensity) {
  const Image flat = testing::flat(128, 128, 128, 128, 128);
  DitherOptions o;
  o.color_space = ColorSpace::kLinear;
  auto out = dither_image(flat, Palette::uniform_levels(2), o);
  ASSERT_TRUE(out.ok());
  // sRGB 128 is 21.6% linear light: about that fraction of pixels must be white, not 50%.
  EXPECT_NEAR(mean_of(*out, 0) / 255.0, srgb_to_linear(128 / 255.0), 0.01);
}

// Hand-computed: FS in sRGB on one row of grey 128, levels:2 (see docs/ENGINE.md for the
// arithmetic).
// Floyd-Steinberg in sRGB to levels:2 of a flat grey `value`, width x height: exactly `expected`.
void expect_golden(int width, int height, uint8_t value, const std::vector<uint8_t>& expected) {
  const Image img = testing::flat(width, height, value, value, value);
  DitherOptions o;
  o.color_space = ColorSpace::kSrgb;
  auto out = dither_image(img, Palette::uniform_levels(2), o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<uint8_t>(out->pixels.begin(), out->pixels.end()), expected);
}

TEST(ErrorDiffusion, SmallGoldenRow) {
  expect_golden(4, 1, 128, {255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0});
}

// Hand-computed 2x2: grey 192, FS, levels:2.
TEST(ErrorDiffusion, SmallGoldenSquareMatchesHandArithmetic) {
  // (0,0): v=49344 -> 255, e=-16191. right += (-16191*1792)>>12 = -7084, (0,1) += -5060,
  // (1,1) += -1012.  (1,0): v=42260 -> 255, e=-23275: (0,1) += (-23275*768)>>12 = -4365,
  // (1,1) += (-23275*1280)>>12 = -7274.  (0,1): v=49344-5060-4365=39919 -> 255, e=-25616,
  // (1,1) += (-25616*1792)>>12 = -11207.  (1,1): v=49344-1012-7274-11207=29851 -> 0.
  expect_golden(2, 2, 192, {255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0});
}

}  // namespace
}  // namespace dither::engine
