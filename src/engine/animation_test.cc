// Animations: one palette for all frames, the two temporal modes, the flicker figure.
#include "engine/animation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

#include "engine/kernels.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

// `count` frames: `background` under a size x size square of `colour` (alpha 200 on RGBA) that
// moves (dx, dy) pixels a frame from (2, 2); everything else stays still.
std::vector<Image> moving_square(const Image& background, int count, int size, Color colour,
                                 int dx = 5, int dy = 3) {
  std::vector<Image> frames;
  for (int f = 0; f < count; ++f) {
    Image frame = background;
    for (int y = 2 + f * dy; y < std::min(background.height, 2 + f * dy + size); ++y) {
      for (int x = 2 + f * dx; x < std::min(background.width, 2 + f * dx + size); ++x) {
        uint8_t* p = frame.at(x, y);
        p[0] = colour.r;
        p[1] = colour.g;
        p[2] = colour.b;
        if (frame.has_alpha()) p[3] = 200;
      }
    }
    frames.push_back(std::move(frame));
  }
  return frames;
}

// Three 48x32 frames: a photo under an 8x8 red square that moves (alpha 200 on RGBA).
std::vector<Image> small_animation(int channels) {
  return moving_square(testing::synthetic_photo(48, 32, channels), 3, 8, Color{230, 40, 30});
}

// Every byte of `img` inverted: every pixel differs from the original.
Image inverted(Image img) {
  for (uint8_t& v : img.pixels) v = static_cast<uint8_t>(255 - v);
  return img;
}

// Default options for `a`; a kernel or matrix for the algorithms that need one.
DitherOptions options_for(Algorithm a) {
  DitherOptions o;
  o.algorithm = a;
  if (a == Algorithm::kCustomKernel) {
    o.kernel = *parse_custom_kernel("[[0,0,0,0,5,1,0],[1,0,2,3,0,0,1]]");
  }
  if (a == Algorithm::kCustomMatrix) o.matrix = *parse_custom_matrix("[[0,4,2],[5,1,3]]");
  return o;
}

// The output of a pixel depends on its colour and position only.
bool is_positional(Algorithm a) {
  switch (a) {
    case Algorithm::kBayer:
    case Algorithm::kHalftone:
    case Algorithm::kBlueNoise:
    case Algorithm::kRandom:
    case Algorithm::kThreshold:
    case Algorithm::kYliluoma:
    case Algorithm::kPattern:
    case Algorithm::kCustomMatrix:
      return true;
    default:
      return false;
  }
}

std::vector<Image> frames_of(const std::vector<Image>& frames, const Palette& p,
                             const DitherOptions& o, Temporal t) {
  Result<std::vector<Image>> out = dither_frames(frames, p, o, t);
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().message);
  return out.ok() ? std::move(*out) : std::vector<Image>(frames.size());
}

struct AlphaCase {
  const char* name;
  AlphaMode mode;
};
constexpr AlphaCase kAlphaModes[] = {{"keep", AlphaMode::kKeep},
                                     {"threshold", AlphaMode::kThreshold},
                                     {"dither", AlphaMode::kDither},
                                     {"flatten", AlphaMode::kFlatten}};

TEST(Animation, RefusesFramesOfDifferentShapes) {
  const Palette p = Palette::uniform_levels(2);
  const DitherOptions o;
  auto kind_of = [&](const std::vector<Image>& frames) {
    const auto out = dither_frames(frames, p, o, Temporal::kStable);
    return out.ok() ? std::string("ok") : out.error().message;
  };
  EXPECT_EQ(kind_of({}), "an animation needs frames");
  const Image a = testing::synthetic_photo(8, 6, 3);
  EXPECT_NE(kind_of({a, testing::synthetic_photo(8, 7, 3)}).find("frame 1 is 8x7x3"),
            std::string::npos);
  EXPECT_NE(kind_of({a, a, testing::synthetic_photo(8, 6, 4)}).find("frame 2 is 8x6x4"),
            std::string::npos);
  for (const auto& frames : {std::vector<Image>{}, std::vector<Image>{a, Image(8, 6, 4)}}) {
    const auto out = dither_frames(frames, p, o, Temporal::kFresh);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().kind, ErrorKind::kInvalidArgument);
  }
  DitherOptions bad;
  bad.strength = 2.0;  // the options are checked as dither_image() checks them
  for (Temporal t : {Temporal::kStable, Temporal::kFresh}) {
    const auto out = dither_frames({a, a}, p, bad, t);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().kind, ErrorKind::kInvalidArgument);
  }
  EXPECT_EQ(kind_of({a, a}), "ok");
}

// kFresh is dither_image() frame by frame: six algorithms on levels:2 (RGBA), three each on ega
// and an adaptive palette (RGB), at 1 to 3 threads.
TEST(Animation, FreshIsDitherImageOfEveryFrame) {
  const Algorithm all[] = {Algorithm::kFloydSteinberg, Algorithm::kBayer,
                           Algorithm::kBlueNoise,      Algorithm::kRiemersma,
                           Algorithm::kYliluoma,       Algorithm::kDotDiffusion};
  int run = 0;
  for (const char* spec : {"levels:2", "ega", "adaptive:8"}) {
    const int channels = std::string(spec) == "levels:2" ? 4 : 3;
    const std::vector<Image> frames = small_animation(channels);
    const Palette p = resolve_palette(*parse_palette_spec(spec), frames);
    for (size_t i = 0; i < std::size(all); ++i) {
      if (channels == 3 && i % 2 == (std::string(spec) == "ega" ? 1u : 0u)) continue;
      DitherOptions o = options_for(all[i]);
      o.threads = 1 + run++ % 3;
      const auto fresh = frames_of(frames, p, o, Temporal::kFresh);
      ASSERT_EQ(fresh.size(), frames.size());
      for (size_t f = 0; f < frames.size(); ++f) {
        EXPECT_EQ(fresh[f].pixels, dither_image(frames[f], p, o)->pixels)
            << algorithm_name(all[i]) << " " << spec << " frame " << f;
      }
    }
  }
}

// Positional methods: no flicker even when every frame is dithered on its own, so kStable (which
// copies the unchanged pixels) gives the same bytes as kFresh. Alpha modes too (alpha dithered
// by a positional method is positional).
TEST(Animation, PositionalMethodsDoNotFlickerEvenFresh) {
  size_t run = 0;
  for (const auto& info : algorithms()) {
    if (!is_positional(info.algorithm)) continue;
    const int channels = run % 2 == 0 ? 3 : 4;
    const std::vector<Image> frames = small_animation(channels);
    const char* spec = channels == 3 ? "ega" : "levels:2";
    const Palette p = testing::palette(spec);
    DitherOptions o = options_for(info.algorithm);
    const AlphaCase alpha = kAlphaModes[channels == 3 ? 0 : run / 2 % std::size(kAlphaModes)];
    ++run;
    o.alpha = alpha.mode;
    const auto fresh = frames_of(frames, p, o, Temporal::kFresh);
    EXPECT_EQ(flicker(frames, fresh), 0.0) << info.name << " " << spec << " " << alpha.name;
    const auto stable = frames_of(frames, p, o, Temporal::kStable);
    for (size_t f = 0; f < frames.size(); ++f) {
      EXPECT_EQ(stable[f].pixels, fresh[f].pixels) << info.name << " " << spec << " " << f;
    }
  }
}

// Error diffusion dithered frame by frame: the moving square changes the error everywhere after
// it, so still pixels change too; kStable keeps them.
TEST(Animation, ErrorDiffusionFlickersWhenFresh) {
  const std::vector<Image> frames = small_animation(3);
  const DitherOptions o;  // Floyd-Steinberg
  for (const char* spec : {"levels:2", "ega"}) {
    const Palette p = testing::palette(spec);
    const double fresh = flicker(frames, frames_of(frames, p, o, Temporal::kFresh));
    EXPECT_GT(fresh, 0.05) << spec;
    EXPECT_EQ(flicker(frames, frames_of(frames, p, o, Temporal::kStable)), 0.0) << spec;
    std::cout << "floyd-steinberg " << spec << ": flicker fresh " << fresh << ", stable 0\n";
  }
}

// kStable, every algorithm: no still pixel ever changes, every output is in the palette, the
// first frame is dither_image()'s, and 1 to 3 threads give the same bytes.
TEST(Animation, StableNeverFlickersAndIsTheSameAtAnyThreadCount) {
  size_t run = 0;
  for (const auto& info : algorithms()) {
    const int channels = run++ % 2 == 0 ? 3 : 4;
    const std::vector<Image> frames = small_animation(channels);
    const char* spec = channels == 3 ? "ega" : "levels:2";
    const Palette p = testing::palette(spec);
    DitherOptions o = options_for(info.algorithm);
    const auto stable = frames_of(frames, p, o, Temporal::kStable);
    EXPECT_EQ(flicker(frames, stable), 0.0) << info.name << " " << spec;
    EXPECT_EQ(stable.front().pixels, dither_image(frames.front(), p, o)->pixels) << info.name;
    for (const Image& f : stable) EXPECT_TRUE(testing::all_in_palette(f, p)) << info.name;
    if (channels == 3) continue;  // threads: on the cheaper palette
    for (int threads : {2, 3}) {
      o.threads = threads;
      const auto more = frames_of(frames, p, o, Temporal::kStable);
      for (size_t f = 0; f < frames.size(); ++f) {
        EXPECT_EQ(more[f].pixels, stable[f].pixels) << info.name << " threads " << threads;
      }
    }
  }
}

// The alpha modes under kStable: no flicker (the square changes alpha too), alpha as the mode
// says.
TEST(Animation, StableNeverFlickersWithAnyAlphaMode) {
  const std::vector<Image> frames = small_animation(4);
  const Palette p = testing::palette("levels:2");
  for (Algorithm a : {Algorithm::kFloydSteinberg, Algorithm::kCustomKernel, Algorithm::kRiemersma,
                      Algorithm::kOstromoukhov}) {
    for (const AlphaCase& alpha : kAlphaModes) {
      DitherOptions o = options_for(a);
      o.alpha = alpha.mode;
      o.serpentine = true;
      const auto stable = frames_of(frames, p, o, Temporal::kStable);
      EXPECT_EQ(flicker(frames, stable), 0.0) << algorithm_name(a) << " " << alpha.name;
      ASSERT_EQ(stable[1].channels, alpha.mode == AlphaMode::kFlatten ? 3 : 4);
      if (alpha.mode == AlphaMode::kKeep || alpha.mode == AlphaMode::kFlatten) continue;
      for (const Image& f : stable) {
        for (size_t i = 0; i < f.pixel_count(); ++i) {
          const uint8_t v = f.pixels[i * 4 + 3];
          ASSERT_TRUE(v == 0 || v == 255) << algorithm_name(a) << " " << alpha.name;
        }
      }
    }
  }
}

// Frame 2 is frame 1 inverted: every pixel changed, so kStable dithers it exactly as
// dither_image() does. This checks the pinned diffusion's arithmetic against the engine's for
// every kernel, palette kind, space, scan, strength, metric and alpha mode.
void expect_dither_image_where_all_changed(int channels, const char* spec, DitherOptions o,
                                           const std::string& what) {
  std::vector<Image> frames = small_animation(channels);
  frames.resize(2);
  frames.push_back(inverted(frames[1]));
  const Palette p = resolve_palette(*parse_palette_spec(spec), frames);
  const auto stable = frames_of(frames, p, o, Temporal::kStable);
  EXPECT_EQ(stable[2].pixels, dither_image(frames[2], p, o)->pixels) << what << " " << spec;
}

TEST(Animation, StableIsDitherImageWhereEveryPixelChanged) {
  const char* specs[] = {"levels:2", "levels:5", "ega", "adaptive:8"};
  size_t run = 0;
  for (const auto& info : algorithms()) {
    if (!is_error_diffusion(info.algorithm) && info.algorithm != Algorithm::kRiemersma) continue;
    DitherOptions o = options_for(info.algorithm);
    const bool odd = run % 2 == 1;
    o.serpentine = odd;
    o.color_space = odd ? ColorSpace::kSrgb : ColorSpace::kLinear;
    o.strength = odd ? 0.7 : 1.0;
    o.metric = odd ? Metric::kPerceptual : Metric::kEuclidean;
    expect_dither_image_where_all_changed(run / 2 % 2 == 0 ? 3 : 4, specs[run % std::size(specs)],
                                          o, std::string(info.name));
    ++run;
  }
  for (Algorithm a : {Algorithm::kFloydSteinberg, Algorithm::kCustomKernel}) {
    for (const AlphaCase& alpha : kAlphaModes) {
      DitherOptions o = options_for(a);
      o.alpha = alpha.mode;
      o.serpentine = a == Algorithm::kCustomKernel;
      expect_dither_image_where_all_changed(4, o.serpentine ? "ega" : "levels:2", o, alpha.name);
    }
  }
}

// kStable for the kernel diffusions from its definition: docs/ENGINE.md's error diffusion (the
// reference's colour choice, a whole-image error buffer), where a pixel whose source equals the
// previous frame's takes the previous output's colour and diffuses its own error, value less
// that colour. RGB, or RGBA with alpha kept (alpha 0 passes no error).
Image pinned_reference(const Image& frame, const Image& prev_frame, const Image& prev_out,
                       const Palette& p, const DitherOptions& o) {
  const Kernel k = o.algorithm == Algorithm::kCustomKernel ? custom_kernel_taps(*o.kernel)
                                                           : *kernel_for(o.algorithm);
  const auto factors = fixed_point_weights(k, o.strength);
  const reference::RefPalette ref{&p, o.color_space, o.metric};
  Image out = frame;
  const int pad = 3;
  const int bw = frame.width + 2 * pad;
  std::vector<std::array<int32_t, 3>> err(static_cast<size_t>(bw * (frame.height + 4)));
  auto cell = [&](int x, int y) -> std::array<int32_t, 3>& {
    return err[static_cast<size_t>(y * bw + x + pad)];
  };
  const size_t n = static_cast<size_t>(frame.channels);
  for (int y = 0; y < frame.height; ++y) {
    const bool reverse = o.serpentine && y % 2 == 1;
    for (int i = 0; i < frame.width; ++i) {
      const int x = reverse ? frame.width - 1 - i : i;
      const uint8_t* s = frame.at(x, y);
      std::array<int32_t, 3> v{};
      for (size_t c = 0; c < 3; ++c) {
        v[c] = std::clamp(reference::to_working(s[c], o.color_space) + cell(x, y)[c], 0, 65535);
      }
      std::array<int32_t, 3> chosen{};
      if (std::equal(s, s + n, prev_frame.at(x, y))) {
        const uint8_t* q = prev_out.at(x, y);
        reference::put(out, x, y, Color{q[0], q[1], q[2]});
        for (size_t c = 0; c < 3; ++c) chosen[c] = reference::to_working(q[c], o.color_space);
      } else {
        reference::put(out, x, y, reference::cell_nearest(ref, v, &chosen));
      }
      if (n == 4 && s[3] == 0) continue;
      for (int t = 0; t < k.tap_count; ++t) {
        const KernelTap& tap = k.taps[static_cast<size_t>(t)];
        for (size_t c = 0; c < 3; ++c) {
          cell(x + (reverse ? -tap.dx : tap.dx), y + tap.dy)[c] +=
              ((v[c] - chosen[c]) * factors[static_cast<size_t>(t)]) >> kWeightShift;
        }
      }
    }
  }
  return out;
}

TEST(Animation, StableErrorDiffusionFollowsItsDefinition) {
  const char* specs[] = {"levels:2", "levels:4", "ega", "adaptive:8"};
  size_t run = 0;
  for (Algorithm a : {Algorithm::kFloydSteinberg, Algorithm::kJarvisJudiceNinke,
                      Algorithm::kStevensonArce, Algorithm::kShiauFan2, Algorithm::kCustomKernel}) {
    for (bool serpentine : {false, true}) {
      const int channels = serpentine ? 4 : 3;
      const char* spec = specs[run++ % std::size(specs)];
      const std::vector<Image> frames = small_animation(channels);
      const Palette p = resolve_palette(*parse_palette_spec(spec), frames);
      DitherOptions o = options_for(a);
      o.serpentine = serpentine;
      o.color_space = serpentine ? ColorSpace::kSrgb : ColorSpace::kLinear;
      const auto stable = frames_of(frames, p, o, Temporal::kStable);
      for (size_t f = 1; f < frames.size(); ++f) {
        EXPECT_EQ(stable[f].pixels,
                  pinned_reference(frames[f], frames[f - 1], stable[f - 1], p, o).pixels)
            << algorithm_name(a) << " " << spec << " serpentine " << serpentine << " " << f;
      }
    }
  }
}

// Hand-made 2x2 frames. Source: frame 1 changes pixel 3; frame 2 changes pixel 3's alpha only.
// Output: frame 1 changes pixel 1 (still: counts), frame 2 pixel 3 (not still) and pixel 0 (still,
// counts). Still pixels: 3 + 3 = 6; changed among them: 2.
TEST(Animation, FlickerCountsChangedOutputsAmongStillPixels) {
  auto image = [](std::initializer_list<uint8_t> bytes) {
    Image img(2, 2, 4);
    std::copy(bytes.begin(), bytes.end(), img.pixels.begin());
    return img;
  };
  const std::vector<Image> source = {
      image({1, 2, 3, 255, 1, 2, 3, 255, 1, 2, 3, 255, 1, 2, 3, 255}),
      image({1, 2, 3, 255, 1, 2, 3, 255, 1, 2, 3, 255, 9, 9, 9, 255}),
      image({1, 2, 3, 255, 1, 2, 3, 255, 1, 2, 3, 255, 9, 9, 9, 254})};
  const std::vector<Image> output = {
      image({0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255}),
      image({0, 0, 0, 255, 0, 0, 1, 255, 0, 0, 0, 255, 0, 0, 0, 255}),
      image({0, 0, 0, 254, 0, 0, 1, 255, 0, 0, 0, 255, 7, 7, 7, 254})};
  EXPECT_DOUBLE_EQ(flicker(source, output), 2.0 / 6.0);
  EXPECT_DOUBLE_EQ(flicker({source[0], source[1]}, {output[0], output[1]}), 1.0 / 3.0);
  EXPECT_EQ(flicker({source[0]}, {output[0]}), 0.0);
  EXPECT_EQ(flicker({}, {}), 0.0);
  EXPECT_EQ(flicker({source[0], inverted(source[0])}, {output[0], output[2]}), 0.0);  // none still
  // RGB output of RGBA source (alpha flattened): compared on what the output has.
  Image rgb0(2, 2, 3), rgb1(2, 2, 3);
  std::fill(rgb0.pixels.begin(), rgb0.pixels.end(), uint8_t{5});
  rgb1.pixels = rgb0.pixels;
  rgb1.pixels[0] = 6;
  EXPECT_DOUBLE_EQ(flicker({source[0], source[1]}, {rgb0, rgb1}), 1.0 / 3.0);
  // Refused: other frame counts, sizes or channel counts.
  EXPECT_THROW(flicker(source, {output[0], output[1]}), std::invalid_argument);
  EXPECT_THROW(flicker({source[0], source[1]}, {output[0], Image(2, 3, 4)}), std::invalid_argument);
  EXPECT_THROW(flicker({source[0], Image(2, 2, 3)}, {output[0], output[1]}), std::invalid_argument);
  EXPECT_THROW(flicker({source[0], source[1]}, {Image(3, 2, 4), Image(3, 2, 4)}),
               std::invalid_argument);
}

bool has_reddish(const Palette& p) {
  return std::any_of(p.colors().begin(), p.colors().end(),
                     [](Color c) { return c.r > 150 && c.g < 90 && c.b < 90; });
}

// A colour seen only in a late frame gets into the palette; at most N colours; deterministic.
TEST(Animation, AdaptivePaletteCoversEveryFrame) {
  const Image grey = testing::flat(48, 32, 128, 128, 128);
  std::vector<Image> frames = {grey, grey, grey};
  frames.push_back(moving_square(grey, 1, 12, Color{220, 20, 30}, 0, 0).front());
  const PaletteSpec spec = *parse_palette_spec("adaptive:4");
  const Palette p = resolve_palette(spec, frames, ColorSpace::kLinear);
  EXPECT_TRUE(has_reddish(p)) << p.describe();
  EXPECT_FALSE(has_reddish(resolve_palette(spec, frames[0])));
  EXPECT_LE(p.size(), 4u);
  EXPECT_EQ(resolve_palette(spec, frames).colors(), p.colors());

  // More pixels than the sample holds (6 x 480 x 400): the sampled rows still see a square that
  // only the last frame has (two colours: the palette is exactly the colours sampled).
  std::vector<Image> big(6, testing::flat(480, 400, 128, 128, 128));
  big.back() = moving_square(big.back(), 1, 40, Color{220, 20, 30}, 0, 0).front();
  const Palette q = resolve_palette(spec, big, ColorSpace::kSrgb);
  EXPECT_EQ(q.colors(), (std::vector<Color>{Color{220, 20, 30}, Color{128, 128, 128}}));
  // A photo: the late colour still gets its own entry.
  std::vector<Image> photo(3, testing::synthetic_photo(96, 64, 3));
  photo.back() = moving_square(photo.back(), 1, 24, Color{220, 20, 30}, 0, 0).front();
  const PaletteSpec spec8 = *parse_palette_spec("adaptive:8");
  EXPECT_TRUE(has_reddish(resolve_palette(spec8, photo)))
      << resolve_palette(spec8, photo).describe();
  EXPECT_FALSE(has_reddish(resolve_palette(spec8, photo[0])));
}

// One frame: the single-image palette. RGBA frames: alpha is not read (same palette as their
// RGB). Other kinds: the single-image palette.
TEST(Animation, PaletteOfOneFrameAndOfOtherKinds) {
  const std::vector<Image> rgba = small_animation(4);
  std::vector<Image> rgb;
  for (const Image& f : rgba) {
    Image c(f.width, f.height, 3);
    for (size_t i = 0; i < f.pixel_count(); ++i) std::copy_n(&f.pixels[i * 4], 3, &c.pixels[i * 3]);
    rgb.push_back(std::move(c));
  }
  const PaletteSpec adaptive = *parse_palette_spec("adaptive:8");
  EXPECT_EQ(resolve_palette(adaptive, std::vector<Image>{rgba[2]}).colors(),
            resolve_palette(adaptive, rgba[2]).colors());
  EXPECT_EQ(resolve_palette(adaptive, rgba).colors(), resolve_palette(adaptive, rgb).colors());
  EXPECT_NE(resolve_palette(adaptive, rgb).colors(), resolve_palette(adaptive, rgb[0]).colors());
  for (const char* text : {"levels:3", "grey:4", "ega", "#102030,#c0ffee"}) {
    const PaletteSpec spec = *parse_palette_spec(text);
    const Palette p = resolve_palette(spec, rgba);
    const Palette one = resolve_palette(spec, rgba[0]);
    EXPECT_EQ(p.levels(), one.levels()) << text;
    EXPECT_EQ(p.colors(), one.colors()) << text;
  }
}

// ---- The flicker table of docs/ANIMATION.md -----------------------------------------------------

// Linear light of an 8-bit sample, 0..255.
double linear(uint8_t s) {
  static const auto table = [] {
    std::array<double, 256> t{};
    for (size_t i = 0; i < 256; ++i) t[i] = 255.0 * srgb_to_linear(static_cast<double>(i) / 255.0);
    return t;
  }();
  return table[s];
}

// The dbs eye filter (1 2 4 5 4 2 1)/19 along rows and columns, of the linear RGB values.
std::vector<double> eye_blur(const Image& img) {
  static constexpr double kTaps[] = {1, 2, 4, 5, 4, 2, 1};
  const int w = img.width, h = img.height;
  const size_t ch = static_cast<size_t>(img.channels);
  std::vector<double> rows(static_cast<size_t>(w * h) * 3), out(rows.size());
  auto at = [&](int x, int y) { return static_cast<size_t>(y * w + x) * 3; };
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (size_t c = 0; c < 3; ++c) {
        double s = 0, n = 0;
        for (int d = -3; d <= 3; ++d) {
          if (x + d < 0 || x + d >= w) continue;
          s += kTaps[d + 3] * linear(img.pixels[static_cast<size_t>(y * w + x + d) * ch + c]);
          n += kTaps[d + 3];
        }
        rows[at(x, y) + c] = s / n;
      }
    }
  }
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (size_t c = 0; c < 3; ++c) {
        double s = 0, n = 0;
        for (int d = -3; d <= 3; ++d) {
          if (y + d < 0 || y + d >= h) continue;
          s += kTaps[d + 3] * rows[at(x, y + d) + c];
          n += kTaps[d + 3];
        }
        out[at(x, y) + c] = s / n;
      }
    }
  }
  return out;
}

// Whether each pixel of frame f (from 1) is within 4 pixels of one that changed from frame f - 1:
// where a stable mode's seams would show.
std::vector<std::vector<bool>> near_motion(const std::vector<Image>& frames) {
  std::vector<std::vector<bool>> out(frames.size());
  for (size_t f = 1; f < frames.size(); ++f) {
    const Image& a = frames[f];
    const Image& b = frames[f - 1];
    out[f].assign(a.pixel_count(), false);
    for (int y = 0; y < a.height; ++y) {
      for (int x = 0; x < a.width; ++x) {
        if (std::equal(a.at(x, y), a.at(x, y) + a.channels, b.at(x, y))) continue;
        for (int v = std::max(0, y - 4); v <= std::min(a.height - 1, y + 4); ++v) {
          for (int u = std::max(0, x - 4); u <= std::min(a.width - 1, x + 4); ++u) {
            out[f][static_cast<size_t>(v * a.width + u)] = true;
          }
        }
      }
    }
  }
  return out;
}

// Root mean square of the eye-filtered difference (linear light, 0..255) between output and
// source over frames 1.., on the pixels near motion.
double blur_error(const std::vector<Image>& source, const std::vector<Image>& out,
                  const std::vector<std::vector<bool>>& near) {
  double sum = 0;
  size_t n = 0;
  for (size_t f = 1; f < source.size(); ++f) {
    const auto s = eye_blur(source[f]);
    const auto o = eye_blur(out[f]);
    for (size_t i = 0; i < source[f].pixel_count(); ++i) {
      if (!near[f][i]) continue;
      for (size_t c = 0; c < 3; ++c)
        sum += (o[i * 3 + c] - s[i * 3 + c]) * (o[i * 3 + c] - s[i * 3 + c]);
      n += 3;
    }
  }
  return std::sqrt(sum / static_cast<double>(n));
}

// The simpler stable mode, for comparison: every frame fresh, still pixels copied from the
// previous output.
std::vector<Image> copied_stable(const std::vector<Image>& frames, std::vector<Image> fresh) {
  for (size_t f = 1; f < frames.size(); ++f) {
    for (size_t i = 0; i < frames[f].pixel_count(); ++i) {
      const size_t c = static_cast<size_t>(frames[f].channels);
      if (std::equal(&frames[f].pixels[i * c], &frames[f].pixels[i * c] + c,
                     &frames[f - 1].pixels[i * c])) {
        std::copy_n(&fresh[f - 1].pixels[i * c], c, &fresh[f].pixels[i * c]);
      }
    }
  }
  return fresh;
}

// Prints the table of docs/ANIMATION.md: a 96x64 photo under a 16x16 orange square moving
// (5, 3) a frame, 5 frames, levels:2, linear light. Asserts only the exact properties.
TEST(Animation, FlickerTable) {
  const std::vector<Image> frames =
      moving_square(testing::synthetic_photo(96, 64, 3), 5, 16, Color{240, 140, 40});
  const auto near = near_motion(frames);
  const Palette p = testing::palette("levels:2");
  std::cout << "| algorithm | flicker fresh | flicker stable | blur error fresh | "
               "blur error stable | blur error copied |\n|---|---|---|---|---|---|\n";
  for (const auto& info : algorithms()) {
    const DitherOptions o = options_for(info.algorithm);
    const auto fresh = frames_of(frames, p, o, Temporal::kFresh);
    const auto stable = frames_of(frames, p, o, Temporal::kStable);
    const double f = flicker(frames, fresh);
    EXPECT_EQ(flicker(frames, stable), 0.0) << info.name;
    if (is_positional(info.algorithm)) {
      EXPECT_EQ(f, 0.0) << info.name;
    }
    char line[200];
    std::snprintf(line, sizeof line, "| %s | %.3f | %.3f | %.2f | %.2f | %.2f |\n",
                  std::string(info.name).c_str(), f, flicker(frames, stable),
                  blur_error(frames, fresh, near), blur_error(frames, stable, near),
                  blur_error(frames, copied_stable(frames, fresh), near));
    std::cout << line;
  }
}

}  // namespace
}  // namespace dither::engine
