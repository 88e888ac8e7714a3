// Transparency (docs/TRANSPARENCY.md): every alpha mode against the reference, byte for byte, and
// the rule that a fully transparent pixel passes no error on, so hidden colours never reach
// visible pixels.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "engine/custom.h"
#include "engine/dither.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

using testing::palette;

// A photo with every kind of alpha: transparent blocks in loud magenta or green, scattered
// transparent pixels, a band of partial alpha (a ramp 0..255) at the bottom, opaque elsewhere.
Image rgba_scene(int width, int height, uint32_t seed = 7) {
  Image img = testing::synthetic_photo(width, height, 4, seed);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.at(x, y);
      p[3] = 255;
      if ((x / 6 + y / 5) % 4 == 1) {
        p[3] = 0;
        if ((x / 6) % 2 == 0) {
          p[0] = 255, p[1] = 0, p[2] = 255;
        } else {
          p[0] = 0, p[1] = 255, p[2] = 0;
        }
      } else if (y >= height * 2 / 3) {
        p[3] = static_cast<uint8_t>(x * 255 / std::max(1, width - 1));
      } else if ((x * 7 + y * 3) % 11 == 0) {
        p[3] = 0;
      }
    }
  }
  return img;
}

struct Mode {
  const char* name;
  AlphaMode mode;
};
constexpr Mode kModes[] = {{"keep", AlphaMode::kKeep},
                           {"threshold", AlphaMode::kThreshold},
                           {"dither", AlphaMode::kDither},
                           {"flatten", AlphaMode::kFlatten}};

// Every algorithm that diffuses error (the kernels, a custom one too, Riemersma, dot diffusion).
std::vector<Algorithm> diffusions() {
  std::vector<Algorithm> out;
  for (const auto& info : algorithms()) {
    if (is_error_diffusion(info.algorithm)) out.push_back(info.algorithm);
  }
  out.push_back(Algorithm::kRiemersma);
  out.push_back(Algorithm::kDotDiffusion);
  return out;
}

// Default options for `a`; a custom kernel that reaches three columns and two rows down.
DitherOptions options_for(Algorithm a) {
  DitherOptions o;
  o.algorithm = a;
  if (a == Algorithm::kCustomKernel)
    o.kernel = *parse_custom_kernel("[[0,0,0,0,5,1,0],[1,0,2,3,0,0,1]]");
  return o;
}

// The engine equals the reference for `o` (alpha mode included) on `img`, at 1 to 3 threads.
void expect_equals_reference(const Image& img, const Palette& p, DitherOptions o,
                             const std::string& what) {
  const Image want = reference::dither(img, p, o);
  ASSERT_EQ(want.channels, o.alpha == AlphaMode::kFlatten ? 3 : img.channels) << what;
  for (int threads : {1, 2, 3}) {
    o.threads = threads;
    Result<Image> got = dither_image(img, p, o);
    ASSERT_TRUE(got.ok()) << what;
    ASSERT_EQ(got->channels, want.channels) << what;
    ASSERT_EQ(got->pixels, want.pixels) << what << " threads " << threads;
  }
}

TEST(Alpha, DiffusionsEqualTheReferenceInEveryMode) {
  const Image scene = rgba_scene(41, 31);
  const Image tall = rgba_scene(9, 50, 3);
  for (Algorithm a : diffusions()) {
    for (const char* spec : {"levels:2", "ega", "#102030,#c0ffee,#ff00ff,#808080"}) {
      const Palette p = palette(spec);
      for (const Mode& m : kModes) {
        for (int variant = 0; variant < 3; ++variant) {
          // The list palette once per mode: its brute-force reference is the slow part.
          if (spec[0] == '#' && variant != 0) continue;
          DitherOptions o = options_for(a);
          o.alpha = m.mode;
          o.background = Color{0x33, 0x66, 0x99};
          o.color_space = variant == 1 ? ColorSpace::kSrgb : ColorSpace::kLinear;
          o.serpentine = variant == 2;
          o.strength = variant == 2 ? 0.7 : 1.0;
          const std::string what = std::string(algorithm_name(a)) + " " + spec + " " + m.name +
                                   " variant " + std::to_string(variant);
          expect_equals_reference(variant == 0 ? tall : scene, p, o, what);
        }
      }
    }
  }
}

// The modes are prepared before any algorithm runs: the positional ones equal their reference too.
TEST(Alpha, OtherAlgorithmsEqualTheReferenceInEveryMode) {
  const Image scene = rgba_scene(37, 29);
  for (const auto& info : algorithms()) {
    if (static_cast<int>(info.algorithm) > static_cast<int>(Algorithm::kDotDiffusion)) continue;
    if (is_error_diffusion(info.algorithm) || info.algorithm == Algorithm::kRiemersma ||
        info.algorithm == Algorithm::kDotDiffusion) {
      continue;
    }
    for (const char* spec : {"levels:3", "pico8"}) {
      for (const Mode& m : kModes) {
        DitherOptions o;
        o.algorithm = info.algorithm;
        o.alpha = m.mode;
        expect_equals_reference(scene, palette(spec), o,
                                std::string(info.name) + " " + spec + " " + m.name);
      }
    }
  }
}

// The final alpha: 0 for every pixel that `mode` makes fully transparent.
std::vector<bool> hidden(const Image& in, const Image& out) {
  std::vector<bool> h(in.pixel_count());
  for (size_t i = 0; i < h.size(); ++i) h[i] = out.pixels[i * 4 + 3] == 0;
  return h;
}

// The same image with other colours under every pixel whose final alpha is 0 (and with
// `alphas`, other alphas below 128 there: the threshold mode hides them all).
Image repaint_hidden(const Image& in, const std::vector<bool>& h, uint8_t shift, bool alphas) {
  Image out = in;
  for (size_t i = 0; i < h.size(); ++i) {
    if (!h[i]) continue;
    for (size_t c = 0; c < 3; ++c)
      out.pixels[i * 4 + c] = static_cast<uint8_t>(255 - in.pixels[i * 4 + c] + shift);
    if (alphas) out.pixels[i * 4 + 3] = static_cast<uint8_t>((in.pixels[i * 4 + 3] + shift) % 128);
  }
  return out;
}

// Whatever colour hides under a fully transparent pixel, no visible pixel changes: the error
// diffusions drop a transparent pixel's error. The control: with alpha 1 instead of 0 there, the
// same repainting does change visible pixels, so the comparison would catch a leak.
TEST(Alpha, TransparentPixelsPassNoErrorOn) {
  const Image scene = rgba_scene(45, 33);
  std::vector<Algorithm> all = diffusions();
  all.push_back(Algorithm::kOstromoukhov);  // variable_diffusion.cc follows the rule too
  all.push_back(Algorithm::kZhouFang);
  for (Algorithm a : all) {
    for (const char* spec : {"levels:2", "ega"}) {
      const Palette p = palette(spec);
      for (AlphaMode mode : {AlphaMode::kKeep, AlphaMode::kThreshold, AlphaMode::kDither}) {
        DitherOptions o = options_for(a);
        o.alpha = mode;
        o.threads = 2;
        const Image base = *dither_image(scene, p, o);
        const std::vector<bool> h = hidden(scene, base);
        ASSERT_GT(std::count(h.begin(), h.end(), true), 100);
        for (uint8_t shift : {0, 77}) {
          const Image repainted = repaint_hidden(scene, h, shift, mode == AlphaMode::kThreshold);
          const Image other = *dither_image(repainted, p, o);
          for (size_t i = 0; i < h.size(); ++i) {
            ASSERT_EQ(other.pixels[i * 4 + 3], base.pixels[i * 4 + 3]) << i;
            if (h[i]) continue;
            ASSERT_TRUE(
                std::equal(&base.pixels[i * 4], &base.pixels[i * 4 + 3], &other.pixels[i * 4]))
                << algorithm_name(a) << " " << spec << " mode " << static_cast<int>(mode)
                << " pixel " << i % 45 << "," << i / 45;
          }
        }
        if (mode != AlphaMode::kKeep) continue;
        // Control: nearly transparent instead of transparent, and error flows again.
        Image faint = scene;
        for (size_t i = 0; i < h.size(); ++i) {
          if (h[i]) faint.pixels[i * 4 + 3] = 1;
        }
        const Image a1 = *dither_image(faint, p, o);
        const Image a2 = *dither_image(repaint_hidden(faint, h, 0, false), p, o);
        size_t changed = 0;
        for (size_t i = 0; i < h.size(); ++i) {
          changed +=
              !h[i] && !std::equal(&a1.pixels[i * 4], &a1.pixels[i * 4 + 3], &a2.pixels[i * 4]);
        }
        EXPECT_GT(changed, 0u) << algorithm_name(a) << " " << spec;
      }
    }
  }
}

// A kernel's error flows right and down only: rows below a fully transparent band dither exactly
// like the same rows cut out on their own, whatever colour the band has.
TEST(Alpha, RowsBelowATransparentBandDitherAsIfAlone) {
  Image img = rgba_scene(40, 12);
  for (int y = 0; y < 12; ++y) {
    for (int x = 0; x < 40; ++x) {
      uint8_t* p = img.at(x, y);
      p[3] = y < 6 ? 0 : 255;
      if (y < 6) p[0] = p[1] = p[2] = static_cast<uint8_t>(x % 2 ? 255 : 0);  // loud stripes
    }
  }
  Image alone(40, 6, 4);
  std::copy_n(img.row(6), alone.pixels.size(), alone.pixels.begin());
  for (Algorithm a : diffusions()) {
    if (!is_error_diffusion(a)) continue;
    for (bool serpentine : {false, true}) {
      DitherOptions o = options_for(a);
      o.serpentine = serpentine;  // row 6 is even: it runs left to right in both
      const Palette p = palette("ega");
      const Image whole = *dither_image(img, p, o);
      const Image cut = *dither_image(alone, p, o);
      EXPECT_TRUE(std::equal(cut.pixels.begin(), cut.pixels.end(), whole.row(6)))
          << algorithm_name(a) << " serpentine " << serpentine;
    }
  }
}

TEST(Alpha, ThresholdIsOneBitAt128) {
  const Image scene = rgba_scene(40, 30);
  DitherOptions o;
  o.alpha = AlphaMode::kThreshold;
  const Image out = *dither_image(scene, palette("levels:2"), o);
  for (size_t i = 0; i < scene.pixel_count(); ++i) {
    ASSERT_EQ(out.pixels[i * 4 + 3], scene.pixels[i * 4 + 3] >= 128 ? 255 : 0) << i;
  }
}

// Dither: alpha becomes 0 or 255 with the coverage kept; the threshold algorithm makes it the
// threshold mode; the colour space does not touch alpha (coverage is linear already).
TEST(Alpha, DitheredAlphaKeepsCoverage) {
  Image img = testing::flat(64, 64, 200, 100, 50, 4);
  for (size_t i = 0; i < img.pixel_count(); ++i) img.pixels[i * 4 + 3] = 64;
  DitherOptions o;
  o.alpha = AlphaMode::kDither;
  const Image out = *dither_image(img, palette("levels:2"), o);
  size_t opaque = 0;
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    const uint8_t a = out.pixels[i * 4 + 3];
    ASSERT_TRUE(a == 0 || a == 255);
    opaque += a == 255;
  }
  EXPECT_NEAR(static_cast<double>(opaque) / img.pixel_count(), 64.0 / 255.0, 0.01);
  DitherOptions srgb = o;
  srgb.color_space = ColorSpace::kSrgb;
  const Image out_srgb = *dither_image(img, palette("levels:2"), srgb);
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    ASSERT_EQ(out_srgb.pixels[i * 4 + 3], out.pixels[i * 4 + 3]);
  }

  // Alpha 0 and 255 stay as they were, whatever the algorithm.
  const Image scene = rgba_scene(40, 30);
  for (const auto& info : algorithms()) {
    if (static_cast<int>(info.algorithm) > static_cast<int>(Algorithm::kDotDiffusion)) continue;
    DitherOptions d;
    d.algorithm = info.algorithm;
    d.alpha = AlphaMode::kDither;
    const Image got = *dither_image(scene, palette("levels:2"), d);
    for (size_t i = 0; i < scene.pixel_count(); ++i) {
      const uint8_t a = scene.pixels[i * 4 + 3];
      if (a == 0 || a == 255) {
        ASSERT_EQ(got.pixels[i * 4 + 3], a) << info.name;
      }
    }
  }
  DitherOptions plain;
  plain.algorithm = Algorithm::kThreshold;
  plain.alpha = AlphaMode::kDither;
  DitherOptions cut = plain;
  cut.alpha = AlphaMode::kThreshold;
  EXPECT_EQ(dither_image(scene, palette("ega"), plain)->pixels,
            dither_image(scene, palette("ega"), cut)->pixels);
}

// Flatten composites in linear light: white at alpha 128 over black is linear
// (128 * 65535 + 127) div 255 = 32896, whose nearest sRGB sample is 188 (sRGB averaging would
// give 128). Opaque pixels keep their colour, transparent ones become the background.
TEST(Alpha, FlattenCompositesInLinearLight) {
  Image img(3, 1, 4);
  const uint8_t px[] = {255, 255, 255, 128, 10, 20, 30, 255, 10, 20, 30, 0};
  std::copy(std::begin(px), std::end(px), img.pixels.begin());
  const Image flat = flatten_alpha(img, Color{0, 0, 0});
  ASSERT_EQ(flat.channels, 3);
  EXPECT_EQ(std::vector<uint8_t>(flat.pixels.begin(), flat.pixels.end()),
            (std::vector<uint8_t>{188, 188, 188, 10, 20, 30, 0, 0, 0}));
  const Image over_red = flatten_alpha(img, Color{255, 0, 0});
  EXPECT_EQ(over_red.pixels[0], 255);  // white over red: red stays 255
  EXPECT_EQ(over_red.pixels[6], 255);
  EXPECT_EQ(over_red.pixels[7], 0);

  // Through dither_image: RGB out; levels:256 and no dithering leave the flattened colours.
  DitherOptions o;
  o.algorithm = Algorithm::kThreshold;
  o.alpha = AlphaMode::kFlatten;
  o.background = Color{0, 0, 0};
  const Image out = *dither_image(img, palette("levels:256"), o);
  ASSERT_EQ(out.channels, 3);
  EXPECT_EQ(out.pixels, flat.pixels);

  const Image rgb = testing::synthetic_photo(20, 10);
  EXPECT_EQ(flatten_alpha(rgb, Color{1, 2, 3}).pixels, rgb.pixels);
}

// An RGB image has no alpha to treat: every mode gives the bytes of keep.
TEST(Alpha, ModesLeaveRgbImagesAlone) {
  const Image rgb = testing::synthetic_photo(30, 20);
  DitherOptions keep;
  const Image want = *dither_image(rgb, palette("ega"), keep);
  for (const Mode& m : kModes) {
    DitherOptions o;
    o.alpha = m.mode;
    const Image got = *dither_image(rgb, palette("ega"), o);
    EXPECT_EQ(got.channels, 3);
    EXPECT_EQ(got.pixels, want.pixels) << m.name;
  }
}

// In place and following a source still being written (the pipeline's way), every mode gives
// the plain call's bytes and reads no row before waiting for it; rows reported done are final.
TEST(Alpha, InPlaceAndStreamingGiveTheSameBytes) {
  const Image scene = rgba_scene(43, 61);
  for (Algorithm a : {Algorithm::kFloydSteinberg, Algorithm::kStucki, Algorithm::kAtkinson}) {
    for (const Mode& m : kModes) {
      for (int threads : {1, 2, 3}) {
        DitherOptions o;
        o.algorithm = a;
        o.alpha = m.mode;
        o.threads = threads;
        const Palette p = palette("ega");
        const Image want = *dither_image(scene, p, o);
        Image pixels = rgba_scene(43, 61, /*seed=*/99);  // noise until "decoded"
        std::mutex mutex;
        int ready = 0;
        const SourceRows wait = [&](int rows) {
          const std::lock_guard lock(mutex);
          for (; ready < std::min(rows, scene.height); ++ready) {
            std::copy_n(scene.row(ready), scene.stride(), pixels.row(ready));
          }
        };
        std::vector<std::vector<uint8_t>> seen;
        const SourceRows done = [&](int rows) {
          for (int y = static_cast<int>(seen.size()); y < rows; ++y) {
            seen.emplace_back(pixels.row(y), pixels.row(y) + pixels.stride());
          }
        };
        const std::string what =
            std::string(algorithm_name(a)) + " " + m.name + " threads " + std::to_string(threads);
        ASSERT_TRUE(dither_into(pixels, p, o, pixels, wait, done).ok()) << what;
        EXPECT_EQ(pixels.pixels, want.pixels) << what;
        ASSERT_EQ(seen.size(), static_cast<size_t>(scene.height)) << what;
        for (int y = 0; y < scene.height; ++y) {
          ASSERT_TRUE(std::equal(seen[static_cast<size_t>(y)].begin(),
                                 seen[static_cast<size_t>(y)].end(), pixels.row(y)))
              << what << " row " << y;
        }
      }
    }
  }
}

}  // namespace
}  // namespace dither::engine
