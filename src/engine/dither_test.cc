// Properties every algorithm must have, through the public entry point.
#include "engine/dither.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

using testing::all_in_palette;

std::vector<PaletteSpec> palette_specs() {
  std::vector<PaletteSpec> out;
  for (const char* t : {"levels:2", "levels:4", "levels:7", "grey:3", "bw", "ega", "gameboy",
                        "pico8", "websafe", "#102030,#c0ffee,#ff00ff", "adaptive:6"}) {
    out.push_back(*parse_palette_spec(t));
  }
  return out;
}

// Default options for `a`, with a kernel or matrix for the algorithms that need one (a lopsided
// kernel that reaches 3 columns, a non-square matrix).
DitherOptions options_for(Algorithm a) {
  DitherOptions o;
  o.algorithm = a;
  if (a == Algorithm::kCustomKernel) {
    o.kernel = *parse_custom_kernel("[[0,0,0,0,5,1,0],[1,0,2,3,0,0,1]]");
  }
  if (a == Algorithm::kCustomMatrix) {
    o.matrix = *parse_custom_matrix("[[0,4,2],[5,1,3]]");
  }
  return o;
}

// Released rows give their whole pages back; every other row keeps its bytes (pages that straddle
// the edges stay), in small heap buffers and in large page-aligned ones alike.
TEST(Image, ReleaseRowsKeepsTheOtherRows) {
  for (const int width : {300, 1500}) {
    Image img = testing::synthetic_photo(width, 997, 3);
    const Image copy = img;
    for (const auto& [begin, end] : {std::pair{0, 40}, std::pair{40, 41}, std::pair{500, 997},
                                     std::pair{200, 100}, std::pair{-5, 0}}) {
      release_rows(img, begin, end);
    }
    for (int y = 41; y < 500; ++y) {
      ASSERT_TRUE(std::equal(img.row(y), img.row(y) + img.stride(), copy.row(y))) << y;
    }
    EXPECT_EQ(img.pixels.size(), copy.pixels.size());
  }
}

// Large buffers (a mapping of their own, one kept for reuse) are aligned to 2 MiB and usable to
// their last byte, whether fresh, reused at the same size, or reused cut down from a larger one;
// then freed without trouble (a buffer unmapped at the wrong size would fault or leak).
TEST(Image, LargeBuffersAreWholeWhenFreshOrReused) {
  for (const size_t pixels : {size_t{3000} * 2000, size_t{3000} * 2000, size_t{2000} * 1000,
                              size_t{3000} * 2000, size_t{1500} * 1000}) {
    Image img(static_cast<int>(pixels / 1000), 1000, 3);
    ASSERT_GE(img.pixels.size(), kMappedPixelBytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(img.pixels.data()) % (size_t{2} << 20), 0U);
    std::fill(img.pixels.begin(), img.pixels.end(), uint8_t{0x5A});
    EXPECT_EQ(img.pixels.front(), 0x5A);
    EXPECT_EQ(img.pixels.back(), 0x5A);
  }
}

TEST(Dither, EveryAlgorithmAndPaletteKindOutputsOnlyPaletteColours) {
  const Image photo = testing::synthetic_photo(40, 30);
  for (const auto& info : algorithms()) {
    for (const PaletteSpec& spec : palette_specs()) {
      const Palette p = resolve_palette(spec, photo);
      for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
        DitherOptions o = options_for(info.algorithm);
        o.color_space = space;
        auto out = dither_image(photo, p, o);
        ASSERT_TRUE(out.ok()) << info.name << " " << spec.to_string();
        EXPECT_TRUE(all_in_palette(*out, p)) << info.name << " " << spec.to_string();
      }
    }
  }
}

TEST(Dither, EveryAlgorithmEqualsItsReference) {
  const Image photo = testing::synthetic_photo(45, 33, 4);
  for (const auto& info : algorithms()) {
    for (const char* spec : {"levels:2", "ega", "levels:5"}) {
      const Palette p = resolve_palette(*parse_palette_spec(spec), photo);
      DitherOptions o = options_for(info.algorithm);
      o.threads = 2;
      auto out = dither_image(photo, p, o);
      ASSERT_TRUE(out.ok());
      EXPECT_EQ(out->pixels, reference::dither(photo, p, o).pixels) << info.name << " " << spec;
    }
  }
}

// SourceRows: the engine reads no row before waiting for it. Rows not yet "decoded" hold noise
// and are filled only when waited for; any early read would change the output.
TEST(Dither, ReadsNoRowBeforeWaitingForIt) {
  const Image photo = testing::synthetic_photo(61, 97, 4);
  for (const auto& info : algorithms()) {
    for (int threads : {1, 2, 3}) {
      for (bool serpentine : {false, true}) {
        const Palette p = resolve_palette(*parse_palette_spec("ega"), photo);
        DitherOptions o = options_for(info.algorithm);
        o.threads = threads;
        o.serpentine = serpentine;
        Image arriving = testing::synthetic_photo(61, 97, 4, /*seed=*/99);
        std::mutex m;
        int ready = 0;
        std::vector<int> asked;
        auto wait = [&](int rows) {
          const std::lock_guard lock(m);
          asked.push_back(rows);
          for (; ready < std::min(rows, photo.height); ++ready) {
            std::copy_n(photo.row(ready), photo.stride(), arriving.row(ready));
          }
        };
        auto out = dither_image(arriving, p, o, wait);
        ASSERT_TRUE(out.ok());
        EXPECT_EQ(out->pixels, dither_image(photo, p, o)->pixels)
            << info.name << " threads=" << threads << " serpentine=" << serpentine;
        ASSERT_FALSE(asked.empty());
        EXPECT_EQ(*std::max_element(asked.begin(), asked.end()), photo.height);
      }
    }
  }
}

// Error diffusion in place (out is the input) gives the same bytes; other algorithms refuse it.
TEST(Dither, ErrorDiffusionInPlaceChangesNoByte) {
  const Image photo = testing::synthetic_photo(83, 67, 4);
  for (const auto& info : algorithms()) {
    const Palette p = resolve_palette(*parse_palette_spec("pico8"), photo);
    for (int threads : {1, 2}) {
      for (bool serpentine : {false, true}) {
        DitherOptions o = options_for(info.algorithm);
        o.threads = threads;
        o.serpentine = serpentine;
        Image pixels = photo;
        const Status s = dither_into(pixels, p, o, pixels);
        if (!is_error_diffusion(info.algorithm)) {
          ASSERT_FALSE(s.ok()) << info.name;
          EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
          EXPECT_EQ(pixels.pixels, photo.pixels) << "refused, untouched";
          continue;
        }
        ASSERT_TRUE(s.ok()) << info.name;
        EXPECT_EQ(pixels.pixels, dither_image(photo, p, o)->pixels)
            << info.name << " threads=" << threads << " serpentine=" << serpentine;
      }
    }
  }
}

// SourceRows `done`: rows reported final do not change afterwards, calls only grow, the last is
// the height; error diffusion on one thread reports band by band.
TEST(Dither, RowsReportedDoneAreFinal) {
  const Image photo = testing::synthetic_photo(47, 53, 3);
  for (const auto& info : algorithms()) {
    const Palette p = resolve_palette(*parse_palette_spec("ega"), photo);
    DitherOptions o = options_for(info.algorithm);
    o.threads = 1;
    Image out(photo.width, photo.height, photo.channels);
    std::vector<int> reported;
    std::vector<std::vector<uint8_t>> seen;  // the rows as they were when first reported
    auto done = [&](int rows) {
      ASSERT_TRUE(reported.empty() || rows >= reported.back()) << info.name;
      for (int y = static_cast<int>(seen.size()); y < rows; ++y) {
        seen.emplace_back(out.row(y), out.row(y) + out.stride());
      }
      reported.push_back(rows);
    };
    ASSERT_TRUE(dither_into(photo, p, o, out, {}, done).ok());
    ASSERT_FALSE(reported.empty());
    EXPECT_EQ(reported.back(), photo.height) << info.name;
    if (is_error_diffusion(info.algorithm)) {
      EXPECT_GT(reported.size(), 10u) << info.name;
    }
    for (int y = 0; y < photo.height; ++y) {
      const auto& row = seen[static_cast<size_t>(y)];
      EXPECT_TRUE(std::equal(row.begin(), row.end(), out.row(y))) << info.name << " " << y;
    }
  }
}

TEST(Dither, RepeatRunsAreByteIdentical) {
  const Image photo = testing::synthetic_photo(64, 48);
  for (const auto& info : algorithms()) {
    DitherOptions o = options_for(info.algorithm);
    o.seed = 12345;
    const Palette p = Palette::from_colors(*named_palette("pico8"));
    auto a = dither_image(photo, p, o);
    o.threads = 2;
    auto b = dither_image(photo, p, o);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->pixels, b->pixels) << info.name;
  }
}

TEST(Dither, AlphaIsPreserved) {
  const Image rgba = testing::noise(33, 17, 4, 99);
  for (const auto& info : algorithms()) {
    DitherOptions o = options_for(info.algorithm);
    auto out = dither_image(rgba, Palette::uniform_levels(2), o);
    ASSERT_TRUE(out.ok());
    ASSERT_EQ(out->channels, 4);
    for (size_t i = 0; i < rgba.pixel_count(); ++i) {
      ASSERT_EQ(out->pixels[i * 4 + 3], rgba.pixels[i * 4 + 3]) << info.name;
    }
  }
}

TEST(Dither, RejectsBadOptionsAndBuffers) {
  const Image img = testing::flat(4, 4, 1, 2, 3);
  const Palette p = Palette::uniform_levels(2);
  DitherOptions o;
  o.strength = 1.5;
  EXPECT_EQ(dither_image(img, p, o).error().kind, ErrorKind::kInvalidArgument);
  o = {};
  o.algorithm = Algorithm::kBayer;
  o.bayer_size = 5;
  EXPECT_FALSE(dither_image(img, p, o).ok());
  o.bayer_size = 128;
  EXPECT_FALSE(dither_image(img, p, o).ok());
  o = {};
  o.algorithm = Algorithm::kHalftone;
  o.halftone = "nope";
  EXPECT_FALSE(dither_image(img, p, o).ok());
  o = {};
  o.threads = -1;
  EXPECT_FALSE(dither_image(img, p, o).ok());
  Image broken = img;
  broken.pixels.pop_back();
  EXPECT_FALSE(dither_image(broken, p, DitherOptions{}).ok());
  EXPECT_FALSE(dither_image(Image{}, p, DitherOptions{}).ok());
  Image grey(4, 4, 1);
  EXPECT_FALSE(dither_image(grey, p, DitherOptions{}).ok());
}

TEST(Dither, AlgorithmNamesParse) {
  for (const auto& info : algorithms()) {
    auto a = parse_algorithm(info.name);
    ASSERT_TRUE(a.ok()) << info.name;
    EXPECT_EQ(*a, info.algorithm);
  }
  EXPECT_EQ(*parse_algorithm("FS"), Algorithm::kFloydSteinberg);
  EXPECT_EQ(*parse_algorithm("Jarvis_Judice_Ninke"), Algorithm::kJarvisJudiceNinke);
  EXPECT_EQ(*parse_algorithm("Shiau_Fan"), Algorithm::kShiauFan);
  EXPECT_EQ(*parse_algorithm("SHIAU FAN 2"), Algorithm::kShiauFan2);
  EXPECT_FALSE(parse_algorithm("blur").ok());
}

TEST(Dither, UpscaleRepeatsPixels) {
  const Image img = testing::noise(3, 2, 4, 5);
  const Image big = upscale_nearest(img, 3);
  ASSERT_EQ(big.width, 9);
  ASSERT_EQ(big.height, 6);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 9; ++x) {
      for (int c = 0; c < 4; ++c) ASSERT_EQ(big.at(x, y)[c], img.at(x / 3, y / 3)[c]);
    }
  }
}

}  // namespace
}  // namespace dither::engine

namespace dither::engine {
namespace {

TEST(Dither, IntoReusesTheBufferAndMatchesDitherImage) {
  const Image a = testing::synthetic_photo(40, 30);
  const Image b = testing::noise(40, 30, 3, 3);
  const Palette p = Palette::from_colors(*named_palette("ega"));
  Image out;
  ASSERT_TRUE(dither_into(a, p, DitherOptions{}, out).ok());
  const uint8_t* buffer = out.pixels.data();
  EXPECT_EQ(out.pixels, dither_image(a, p, DitherOptions{})->pixels);
  ASSERT_TRUE(dither_into(b, p, DitherOptions{}, out).ok());
  EXPECT_EQ(out.pixels.data(), buffer) << "same size: the buffer is reused";
  EXPECT_EQ(out.pixels, dither_image(b, p, DitherOptions{})->pixels);
  Image small = testing::noise(5, 4, 4, 1);
  ASSERT_TRUE(dither_into(small, p, DitherOptions{}, out).ok());
  EXPECT_EQ(out.width, 5);
  EXPECT_EQ(out.channels, 4);
  DitherOptions ordered;
  ordered.algorithm = Algorithm::kBayer;
  EXPECT_FALSE(dither_into(small, p, ordered, small).ok()) << "in place: error diffusion only";
}

}  // namespace
}  // namespace dither::engine
