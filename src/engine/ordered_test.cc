// Ordered dithering: the threshold maps themselves, and the engine against the reference.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <complex>
#include <numbers>
#include <numeric>
#include <random>
#include <set>

#include "engine/algorithms.h"
#include "engine/blue_noise.h"
#include "engine/dither.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"
#include "engine/threshold_maps.h"

namespace dither::engine {
namespace {

using testing::all_in_palette;

using detail::ThresholdMap;

bool is_permutation(const ThresholdMap& m) {
  if (m.levels != m.width * m.height) return false;
  std::vector<uint16_t> sorted = m.ranks;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] != i) return false;
  }
  return true;
}

TEST(BayerMap, PowersOfTwoArePermutationsMatchingTheBitInterleaveFormula) {
  for (int size = 2; size <= 64; size *= 2) {
    const ThresholdMap m = detail::bayer_map(size);
    ASSERT_EQ(m.width, size);
    EXPECT_TRUE(is_permutation(m)) << size;
    for (int y = 0; y < size; ++y) {
      for (int x = 0; x < size; ++x) {
        int v = 0;
        for (int bit = 1; bit < size; bit <<= 1) {
          v = (v << 2) | ((x ^ y) & bit ? 2 : 0) | (y & bit ? 1 : 0);
        }
        ASSERT_EQ(m.rank(x, y), v) << size << " at " << x << "," << y;
      }
    }
  }
}

TEST(BayerMap, ClassicValues) {
  EXPECT_EQ(detail::bayer_map(2).ranks, (std::vector<uint16_t>{0, 2, 3, 1}));
  EXPECT_EQ(detail::bayer_map(4).ranks,
            (std::vector<uint16_t>{0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5}));
  const ThresholdMap three = detail::bayer_map(3);
  EXPECT_TRUE(is_permutation(three));
  EXPECT_EQ(three.ranks, (std::vector<uint16_t>{0, 7, 3, 6, 5, 2, 4, 1, 8}));
}

TEST(HalftoneMap, EveryNameResolvesAndIsAPermutation) {
  ASSERT_FALSE(halftone_names().empty());
  for (std::string_view name : {"h4x4a", "h6x6a", "h8x8a", "h4x4o", "h6x6o", "h8x8o", "h16x16o",
                                "c5x5b", "c5x5w", "c6x6b", "c6x6w", "c7x7b", "c7x7w", "checks"}) {
    EXPECT_NE(std::find(halftone_names().begin(), halftone_names().end(), name),
              halftone_names().end())
        << name;
  }
  for (std::string_view name : halftone_names()) {
    const auto m = detail::halftone_map(name);
    ASSERT_TRUE(m.has_value()) << name;
    DitherOptions o;
    o.algorithm = Algorithm::kHalftone;
    o.halftone = std::string(name);
    EXPECT_TRUE(validate(o).ok()) << name;
    if (name == "checks") {
      EXPECT_EQ(m->levels, 2);
      EXPECT_EQ(m->ranks, (std::vector<uint16_t>{0, 1, 1, 0}));
    } else {
      EXPECT_TRUE(is_permutation(*m)) << name;
    }
  }
  EXPECT_FALSE(detail::halftone_map("o8x8").has_value());
}

TEST(HalftoneMap, DotsAreWhereTheNamesSay) {
  // Orthogonal: the black dot's core (last ranks) is the 2x2 block at the tile centre.
  const ThresholdMap o8 = *detail::halftone_map("h8x8o");
  std::set<int> last;
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      if (o8.rank(x, y) >= 60) last.insert(y * 8 + x);
    }
  }
  EXPECT_EQ(last, (std::set<int>{27, 28, 35, 36}));
  // Circles: black keeps its centre dark longest, white lights it first.
  EXPECT_EQ(detail::halftone_map("c5x5b")->rank(2, 2), 24);
  EXPECT_EQ(detail::halftone_map("c5x5w")->rank(2, 2), 0);
  EXPECT_EQ(detail::halftone_map("c7x7b")->rank(3, 3), 48);
  // Angled: two dots per tile, so at 1/8 coverage the lit cells are in two separate clusters,
  // one around each white centre (quarter points (3n/4, n/4) and (n/4, 3n/4)).
  const ThresholdMap a8 = *detail::halftone_map("h8x8a");
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      if (a8.rank(x, y) >= 8) continue;
      const bool near_first = std::abs(2 * x + 1 - 12) <= 3 && std::abs(2 * y + 1 - 4) <= 3;
      const bool near_second = std::abs(2 * x + 1 - 4) <= 3 && std::abs(2 * y + 1 - 12) <= 3;
      EXPECT_TRUE(near_first || near_second) << x << "," << y;
    }
  }
}

// Mean of |F(u, v)|^2 over low non-zero frequencies (radius <= 4 cycles per tile) of the binary
// pattern `on`, centred on its mean.
double low_frequency_power(const std::vector<bool>& on, int size) {
  const double mean = static_cast<double>(std::count(on.begin(), on.end(), true)) / on.size();
  double sum = 0.0;
  int count = 0;
  for (int v = -4; v <= 4; ++v) {
    for (int u = -4; u <= 4; ++u) {
      if ((u == 0 && v == 0) || u * u + v * v > 16) continue;
      std::complex<double> f = 0.0;
      for (int y = 0; y < size; ++y) {
        for (int x = 0; x < size; ++x) {
          const double a = -2.0 * std::numbers::pi * (u * x + v * y) / size;
          f += (on[static_cast<size_t>(y * size + x)] - mean) * std::polar(1.0, a);
        }
      }
      sum += std::norm(f);
      ++count;
    }
  }
  return sum / count;
}

// Mean toroidal distance from each set cell to the nearest other set cell.
double mean_nearest_distance(const std::vector<bool>& on, int size) {
  std::vector<std::pair<int, int>> pts;
  for (int i = 0; i < size * size; ++i) {
    if (on[static_cast<size_t>(i)]) pts.emplace_back(i % size, i / size);
  }
  double sum = 0.0;
  for (const auto& [x, y] : pts) {
    int best = size * size;
    for (const auto& [x2, y2] : pts) {
      if (x == x2 && y == y2) continue;
      const int dx = std::min(std::abs(x - x2), size - std::abs(x - x2));
      const int dy = std::min(std::abs(y - y2), size - std::abs(y - y2));
      best = std::min(best, dx * dx + dy * dy);
    }
    sum += std::sqrt(best);
  }
  return sum / static_cast<double>(pts.size());
}

TEST(BlueNoise, IsADeterministicPermutationThatIsBlue) {
  const auto start = std::chrono::steady_clock::now();
  const ThresholdMap fresh = detail::void_and_cluster(64, 1.5, detail::kBlueNoiseSeed);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::cout << "void-and-cluster 64x64: " << ms << " ms\n";
  EXPECT_LT(ms, 1000.0);
  const ThresholdMap& m = detail::blue_noise_map();
  EXPECT_EQ(m.width, 64);
  EXPECT_TRUE(is_permutation(m));
  EXPECT_EQ(fresh.ranks, m.ranks);
  EXPECT_NE(detail::void_and_cluster(64, 1.5, 12345).ranks, m.ranks);

  std::mt19937 rng(3);
  std::vector<uint16_t> white(4096);
  std::iota(white.begin(), white.end(), 0);
  std::shuffle(white.begin(), white.end(), rng);
  for (double density : {0.1, 0.5, 0.9}) {
    std::vector<bool> blue_on(4096);
    std::vector<bool> white_on(4096);
    for (size_t i = 0; i < 4096; ++i) {
      blue_on[i] = m.ranks[i] < density * 4096;
      white_on[i] = white[i] < density * 4096;
    }
    const double blue = low_frequency_power(blue_on, 64);
    const double noise = low_frequency_power(white_on, 64);
    std::cout << "density " << density << ": low-frequency power blue " << blue << ", white "
              << noise << " (expected " << 4096 * density * (1 - density) << ")\n";
    EXPECT_LT(blue, 0.05 * 4096 * density * (1 - density));
    EXPECT_GT(noise, 0.3 * 4096 * density * (1 - density));
  }
  // Minority pixels at 10% keep their distance: the mean nearest-neighbour distance is near the
  // principal wavelength 1 / sqrt(0.1) = 3.16 (a hexagonal grid would give 3.4), while white
  // noise gives about half of that.
  std::vector<bool> sparse(4096);
  std::vector<bool> sparse_white(4096);
  for (size_t i = 0; i < 4096; ++i) {
    sparse[i] = m.ranks[i] < 410;
    sparse_white[i] = white[i] < 410;
  }
  const double nn = mean_nearest_distance(sparse, 64);
  const double nn_white = mean_nearest_distance(sparse_white, 64);
  std::cout << "mean nearest distance at 10%: blue " << nn << ", white " << nn_white << "\n";
  EXPECT_GT(nn, 2.4);
  EXPECT_GT(nn, 1.4 * nn_white);
}

std::vector<Palette> test_palettes() {
  std::vector<Palette> out;
  for (const char* spec :
       {"levels:2", "levels:5", "ega", "gameboy", "#102030,#c0ffee,#ff00ff", "grey:4"}) {
    const Result<PaletteSpec> s = parse_palette_spec(spec);
    EXPECT_TRUE(s.ok()) << spec;
    out.push_back(resolve_palette(*s, Image()));
  }
  return out;
}

std::vector<DitherOptions> ordered_variants() {
  std::vector<DitherOptions> out;
  DitherOptions o;
  o.algorithm = Algorithm::kBayer;
  for (int size : {2, 3, 4, 8, 16, 64}) {
    o.bayer_size = size;
    out.push_back(o);
  }
  o.algorithm = Algorithm::kHalftone;
  for (const char* name : {"h4x4a", "h6x6a", "h8x8o", "c5x5w", "c6x6b", "checks"}) {
    o.halftone = name;
    out.push_back(o);
  }
  for (Algorithm a : {Algorithm::kBlueNoise, Algorithm::kRandom, Algorithm::kThreshold}) {
    o.algorithm = a;
    out.push_back(o);
  }
  return out;
}

// The engine's ordered dither with a prebuilt quantiser (building one per call would dominate the
// test's time), alpha copied as dither_image() does.
Image engine_ordered(const Image& in, const Quantizer& q, const DitherOptions& o) {
  Image out(in.width, in.height, in.channels);
  detail::ordered_dither(in, out, q, o);
  if (in.has_alpha()) {
    for (size_t i = 0; i < in.pixel_count(); ++i) out.pixels[i * 4 + 3] = in.pixels[i * 4 + 3];
  }
  return out;
}

TEST(Ordered, EngineEqualsReferenceForEveryMapPaletteSpaceAndThreadCount) {
  // Odd sizes, partial tiles, an alpha channel, rows that end mid-vector; 3x2 has rows shorter
  // than one SIMD vector.
  const Image rgba = testing::synthetic_photo(37, 29, 4);
  const Image rgb = testing::synthetic_photo(41, 23, 3);
  const Image tiny = testing::synthetic_photo(3, 2, 3);
  for (const Palette& p : test_palettes()) {
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      for (int threads : {1, 2}) {
        const Metric metric = threads == 1 ? Metric::kEuclidean : Metric::kPerceptual;
        const Quantizer q(p, space, metric);
        for (DitherOptions o : ordered_variants()) {
          o.color_space = space;
          o.threads = threads;
          o.strength = threads == 1 ? 1.0 : 0.7;
          o.metric = metric;
          ASSERT_TRUE(validate(o).ok());
          for (const Image* img : {threads == 1 ? &rgba : &rgb, &tiny}) {
            const Image got = engine_ordered(*img, q, o);
            const Image want = reference::dither(*img, p, o);
            ASSERT_EQ(got.pixels, want.pixels)
                << algorithm_name(o.algorithm) << " " << o.bayer_size << " " << o.halftone << " "
                << p.describe() << (space == ColorSpace::kLinear ? " linear" : " srgb")
                << " threads " << threads << " " << img->width << "x" << img->height;
            ASSERT_TRUE(all_in_palette(got, p));
          }
        }
      }
    }
  }
}

TEST(Ordered, ThreadCountNeverChangesTheBytes) {
  const Image img = testing::synthetic_photo(203, 157, 3);
  for (const char* spec : {"levels:2", "levels:3", "levels:6", "pico8"}) {
    const Palette p = resolve_palette(*parse_palette_spec(spec), img);
    for (Algorithm a :
         {Algorithm::kBayer, Algorithm::kHalftone, Algorithm::kBlueNoise, Algorithm::kRandom}) {
      DitherOptions o;
      o.algorithm = a;
      const Image one = *dither_image(img, p, o);
      for (int threads : {2, 3, 7}) {
        o.threads = threads;
        EXPECT_EQ(dither_image(img, p, o)->pixels, one.pixels)
            << algorithm_name(o.algorithm) << " " << spec << " threads " << threads;
      }
    }
  }
}

TEST(Ordered, RandomDependsOnTheSeedOnly) {
  const Image img = testing::synthetic_photo(64, 48, 3);
  const Palette p = Palette::uniform_levels(2);
  DitherOptions o;
  o.algorithm = Algorithm::kRandom;
  o.seed = 42;
  const Image a = *dither_image(img, p, o);
  o.threads = 2;
  EXPECT_EQ(dither_image(img, p, o)->pixels, a.pixels);
  o.seed = 43;
  EXPECT_NE(dither_image(img, p, o)->pixels, a.pixels);
}

TEST(Ordered, ThresholdIsNearestColour) {
  const Image img = testing::synthetic_photo(50, 40, 3);
  for (const Palette& p : test_palettes()) {
    for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
      DitherOptions o;
      o.algorithm = Algorithm::kThreshold;
      o.color_space = space;
      const Image got = *dither_image(img, p, o);
      const reference::RefPalette rp{&p, space, o.metric};
      for (int y = 0; y < img.height; ++y) {
        for (int x = 0; x < img.width; ++x) {
          const uint8_t* s = img.at(x, y);
          const Color want = reference::nearest(
              rp,
              {reference::to_working(s[0], space), reference::to_working(s[1], space),
               reference::to_working(s[2], space)},
              nullptr);
          ASSERT_EQ((Color{got.at(x, y)[0], got.at(x, y)[1], got.at(x, y)[2]}), want);
        }
      }
    }
  }
}

TEST(Ordered, ZeroStrengthIsThreshold) {
  const Image img = testing::synthetic_photo(50, 40, 3);
  for (const Palette& p : test_palettes()) {
    DitherOptions o;
    o.algorithm = Algorithm::kThreshold;
    const Image plain = *dither_image(img, p, o);
    o.algorithm = Algorithm::kBlueNoise;
    o.strength = 0.0;
    EXPECT_EQ(dither_image(img, p, o)->pixels, plain.pixels) << p.describe();
  }
}

TEST(Ordered, BayerKeepsTheToneOfFlatGreys) {
  // Classic ordered dithering: over one 8x8 tile a grey v lights round-ish(v / 255 * 64) cells.
  for (int v : {0, 1, 37, 100, 128, 200, 254, 255}) {
    const Image img = testing::flat(8, 8, static_cast<uint8_t>(v), static_cast<uint8_t>(v),
                                    static_cast<uint8_t>(v));
    DitherOptions o;
    o.color_space = ColorSpace::kSrgb;  // this test is about sRGB tone
    o.algorithm = Algorithm::kBayer;
    const Image out = *dither_image(img, Palette::uniform_levels(2), o);
    int lit = 0;
    for (size_t i = 0; i < 64; ++i) lit += out.pixels[i * 3] == 255;
    EXPECT_NEAR(lit, v / 255.0 * 64, 0.5 + 1e-9) << v;
  }
}

TEST(Ordered, LinearLevelsKeepTheLinearToneOfFlatGreys) {
  for (int v : {30, 90, 160, 230}) {
    const Image img = testing::flat(64, 64, static_cast<uint8_t>(v), static_cast<uint8_t>(v),
                                    static_cast<uint8_t>(v));
    DitherOptions o;
    o.algorithm = Algorithm::kBlueNoise;
    o.color_space = ColorSpace::kLinear;
    const Image out = *dither_image(img, Palette::uniform_levels(3), o);
    double mean = 0.0;
    for (size_t i = 0; i < img.pixel_count(); ++i)
      mean += srgb_to_linear(out.pixels[i * 3] / 255.0);
    mean /= static_cast<double>(img.pixel_count());
    EXPECT_NEAR(mean, srgb_to_linear(v / 255.0), 0.002) << v;
  }
}

}  // namespace
}  // namespace dither::engine
