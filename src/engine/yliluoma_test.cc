// Yliluoma's positional dithering against the reference. The engine searches each mixing plan
// with estimates, pruning and a Gram matrix, and caches plans per thread; the reference devises
// every plan afresh with the definition's doubles. Any difference in a single choice shows: at
// strength 1 an 8x8 block of one colour displays its whole plan.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/dither.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

using testing::palette;

// The synthetic photo with Gaussian noise of `sigma` levels: nearly every pixel a colour of its
// own, so nearly every pixel needs a fresh plan.
Image noisy_photo(int width, int height, int channels, double sigma, uint32_t seed) {
  Image img = testing::synthetic_photo(width, height, channels, seed);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    if (channels == 4 && i % 4 == 3) continue;
    const double v = img.pixels[i] + noise(rng);
    img.pixels[i] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
  }
  return img;
}

// One 8x8 block per colour, `across` blocks a row (unused blocks black).
Image blocks(const std::vector<Color>& colours, int across) {
  const int down = (static_cast<int>(colours.size()) + across - 1) / across;
  Image img(8 * across, 8 * down, 3);
  for (size_t i = 0; i < colours.size(); ++i) {
    const int bx = static_cast<int>(i) % across;
    const int by = static_cast<int>(i) / across;
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        uint8_t* p = img.at(8 * bx + x, 8 * by + y);
        p[0] = colours[i].r;
        p[1] = colours[i].g;
        p[2] = colours[i].b;
      }
    }
  }
  return img;
}

// The engine at 1, 2 and 3 threads equals the reference.
void expect_reference(const Image& img, const Palette& p, DitherOptions o,
                      const std::string& what) {
  o.algorithm = Algorithm::kYliluoma;
  const Image want = reference::dither(img, p, o);
  for (int threads : {1, 2, 3}) {
    o.threads = threads;
    const Image got = *dither_image(img, p, o);
    ASSERT_EQ(got.pixels, want.pixels) << what << " " << p.describe() << " threads " << threads;
  }
}

std::string describe(const DitherOptions& o) {
  return std::string(o.color_space == ColorSpace::kSrgb ? "srgb" : "linear") + " " +
         std::string(metric_name(o.metric)) + " strength " + std::to_string(o.strength);
}

// Colours that stress the search: the palette's own colours (every p of the same colour gives
// the same mix, so the definition's rounding decides), one step off them, midpoints of pairs
// (exact ties between colours), the corners of the cube (outside small palettes' gamut) and
// greys.
std::vector<Color> hard_colours(const Palette& p) {
  std::vector<Color> out;
  const auto& colors = p.colors();
  auto step = [](uint8_t v, int d) { return static_cast<uint8_t>(std::clamp(v + d, 0, 255)); };
  for (size_t i = 0; i < colors.size() && i < 8; ++i) {
    const Color c = colors[i];
    out.push_back(c);
    out.push_back({step(c.r, 1), c.g, step(c.b, -1)});
    const Color d = colors[(i + 1) % colors.size()];
    out.push_back({static_cast<uint8_t>((c.r + d.r) / 2), static_cast<uint8_t>((c.g + d.g) / 2),
                   static_cast<uint8_t>((c.b + d.b) / 2)});
  }
  for (int corner = 0; corner < 8; ++corner) {
    out.push_back({static_cast<uint8_t>(corner & 1 ? 255 : 0),
                   static_cast<uint8_t>(corner & 2 ? 255 : 0),
                   static_cast<uint8_t>(corner & 4 ? 255 : 0)});
  }
  for (int v : {1, 64, 127, 128, 200, 254}) {
    out.push_back({static_cast<uint8_t>(v), static_cast<uint8_t>(v), static_cast<uint8_t>(v)});
  }
  return out;
}

TEST(YliluomaEngine, NoisyPhotoEveryPaletteSpaceMetricAndStrength) {
  const Image rgb = noisy_photo(25, 17, 3, 6.0, 11);
  const Image rgba = noisy_photo(13, 11, 4, 6.0, 12);
  const std::vector<Palette> palettes = {palette("ega"),
                                         palette("pico8"),
                                         palette("bw"),
                                         palette("#102030,#c0ffee,#ff00ff"),
                                         palette("adaptive:12", rgb),
                                         palette("adaptive:40", rgb)};
  for (const Palette& p : palettes) {
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (Metric metric : {Metric::kEuclidean, Metric::kPerceptual}) {
        for (double strength : {1.0, 0.55}) {
          DitherOptions o;
          o.color_space = space;
          o.metric = metric;
          o.strength = strength;
          expect_reference(rgb, p, o, describe(o));
          if (strength == 1.0) expect_reference(rgba, p, o, describe(o) + " rgba");
        }
      }
    }
  }
}

TEST(YliluomaEngine, WholePlansOfHardColours) {
  // Duplicate colours (ties by index), exact midpoints, a dark palette that bright inputs lie
  // far outside of, primaries, and palettes larger than the 16 candidates: one with 20 colours
  // each given twice, so the candidates are cut between equals.
  for (const char* spec :
       {"bw", "#000000,#000000,#ffffff,#ffffff", "#000000,#808080,#ffffff",
        "#101010,#202020,#303030", "#ff0000,#00ff00,#0000ff", "ega", "grey:4", "websafe",
        "#000000,#000000,#ffffff,#ffffff,#808080,#808080,#ff0000,#ff0000,#00ff00,#00ff00,"
        "#0000ff,#0000ff,#ffff00,#ffff00,#00ffff,#00ffff,#ff00ff,#ff00ff,#404040,#404040"}) {
    const Palette p = palette(spec);
    const Image img = blocks(hard_colours(p), 7);
    for (const auto& [space, metric] : {std::pair{ColorSpace::kSrgb, Metric::kEuclidean},
                                        std::pair{ColorSpace::kLinear, Metric::kPerceptual}}) {
      DitherOptions o;
      o.color_space = space;
      o.metric = metric;
      expect_reference(img, p, o, describe(o));
    }
  }
}

TEST(YliluomaEngine, PlansEvictedAndDevisedAgain) {
  // 8000 random colours in 12000 runs of two, so half of them come back far apart: the
  // per-thread cache (16384 plans in sets of four) overflows many sets, evicted plans are devised
  // again, and runs reuse the plan of the pixel before.
  std::mt19937 rng(5);
  std::vector<Color> colours(8000);
  for (Color& c : colours) {
    c = {static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())};
  }
  Image img(200, 120, 3);
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    const Color c = colours[(i / 2 * 7) % colours.size()];
    img.pixels[3 * i] = c.r;
    img.pixels[3 * i + 1] = c.g;
    img.pixels[3 * i + 2] = c.b;
  }
  DitherOptions o;
  o.color_space = ColorSpace::kLinear;
  o.metric = Metric::kPerceptual;
  expect_reference(img, palette("pico8"), o, describe(o));
}

TEST(YliluomaEngine, UniformNoiseWithOtherMetrics) {
  // Under Oklab and Delta E 2000 the plans use the working space with weights (1, 1, 1).
  const Image img = testing::noise(23, 17, 3, 9);
  for (Metric metric : {Metric::kOklab, Metric::kCiede2000}) {
    DitherOptions o;
    o.metric = metric;
    expect_reference(img, palette("pico8"), o, describe(o));
    expect_reference(img, palette("websafe"), o, describe(o));
  }
}

}  // namespace
}  // namespace dither::engine
