#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include "engine/dither.h"
#include "engine/testing/test_images.h"

namespace dither {
namespace {

std::vector<uint8_t> png_of(const Image& img) {
  // An exact truecolour PNG of a synthetic photo (it has far more than 256 colours).
  auto bytes = imaging::encode(img, imaging::OutputFormat::kPng);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(ProcessOptions, EveryTableEntryIsAccepted) {
  const std::vector<std::pair<std::string, std::string>> good = {
      {"algorithm", "atkinson"}, {"palette", "ega"},    {"channels", "4"},   {"serpentine", "true"},
      {"linear_light", "1"},     {"perceptual", "yes"}, {"strength", "0.5"}, {"bayer_size", "16"},
      {"halftone", "h6x6a"},     {"seed", "99"},        {"width", "100"},    {"height", "80"},
      {"upscale", "2"},          {"format", "webp"},    {"threads", "0"}};
  ASSERT_EQ(good.size(), option_table().size());
  for (const auto& [name, value] : good) {
    ProcessOptions o;
    EXPECT_TRUE(set_option(o, name, value).ok()) << name;
  }
}

TEST(ProcessOptions, BadValuesNameTheOption) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"algorithm", "blur"}, {"palette", "levels:1"}, {"channels", "0"},       {"channels", "1"},
      {"channels", "257"},   {"channels", "two"},     {"serpentine", "maybe"}, {"strength", "1.5"},
      {"strength", "nan"},   {"bayer_size", "5"},     {"halftone", "x"},       {"seed", "-1"},
      {"width", "-3"},       {"upscale", "17"},       {"format", "bmp"},       {"threads", "1000"},
      {"colour", "red"}};
  for (const auto& [name, value] : bad) {
    ProcessOptions o;
    const Status s = set_option(o, name, value);
    ASSERT_FALSE(s.ok()) << name << "=" << value;
    EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(s.error().message.find(name), std::string::npos) << s.error().message;
  }
}

TEST(ProcessOptions, ChannelsIsLevels) {
  ProcessOptions o;
  ASSERT_TRUE(set_option(o, "palette", "ega").ok());
  ASSERT_TRUE(set_option(o, "channels", "3").ok());
  EXPECT_EQ(o.palette.to_string(), "levels:3");
}

TEST(Pipeline, DecodesDithersAndEncodesExactly) {
  const Image photo = testing::synthetic_photo(120, 90);
  const auto input = png_of(photo);
  ProcessOptions o;
  ASSERT_TRUE(set_option(o, "palette", "gameboy").ok());
  auto r = process(input, o, imaging::Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto back = imaging::decode(r->bytes, imaging::Limits{});
  ASSERT_TRUE(back.ok());
  const Palette p = Palette::from_colors(*named_palette("gameboy"));
  const Image expected = *dither_image(photo, p, o.dither);
  EXPECT_EQ(back->pixels, expected.pixels);
}

TEST(Pipeline, ResizesKeepingAspectAndUpscales) {
  const auto input = png_of(testing::synthetic_photo(200, 100));
  ProcessOptions o;
  ASSERT_TRUE(set_option(o, "width", "50").ok());
  ASSERT_TRUE(set_option(o, "upscale", "3").ok());
  auto r = process(input, o, imaging::Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->width, 150);
  EXPECT_EQ(r->height, 75);
}

TEST(Pipeline, OptionsCannotExceedThePixelLimit) {
  const auto input = png_of(testing::synthetic_photo(100, 100));
  imaging::Limits limits;
  limits.max_pixels = 20000;
  ProcessOptions o;
  ASSERT_TRUE(set_option(o, "upscale", "2").ok());
  auto r = process(input, o, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTooManyPixels);
  o = {};
  ASSERT_TRUE(set_option(o, "width", "1000").ok());
  EXPECT_EQ(process(input, o, limits).error().kind, ErrorKind::kTooManyPixels);
}

// The decoder runs beside error diffusion (rows as they come, over many strips): the result is
// byte for byte what decoding first and dithering after gives, for every kernel family, raster
// and serpentine, RGB and RGBA; other algorithms and resizes take the plain path.
TEST(Pipeline, DitheringBesideTheDecoderChangesNoByte) {
  for (const int channels : {3, 4}) {
    const Image photo = testing::synthetic_photo(300, 517, channels);
    const auto input = png_of(photo);
    for (const char* algorithm : {"floyd-steinberg", "jarvis", "atkinson", "bayer"}) {
      for (const char* serpentine : {"false", "true"}) {
        for (const char* palette : {"levels:2", "ega", "adaptive:8", "levels:7"}) {
          // levels:7 has 343 colours: a truecolour PNG, so the decoded rows cannot be given
          // back as the dither goes (the other palettes' can, for PNG and GIF).
          const bool many = std::string_view(palette) == "levels:7";
          const char* format = many || std::string_view(algorithm) == "jarvis" ? "png" : "gif";
          if (many && std::string_view(algorithm) != "floyd-steinberg") continue;
          ProcessOptions o;
          ASSERT_TRUE(set_option(o, "algorithm", algorithm).ok());
          ASSERT_TRUE(set_option(o, "serpentine", serpentine).ok());
          ASSERT_TRUE(set_option(o, "palette", palette).ok());
          ASSERT_TRUE(set_option(o, "format", format).ok());
          auto r = process(input, o, imaging::Limits{});
          ASSERT_TRUE(r.ok()) << r.error().message;
          auto decoded = imaging::decode(input, imaging::Limits{});
          ASSERT_TRUE(decoded.ok());
          auto plain = process_image(*decoded, o, imaging::Limits{});
          ASSERT_TRUE(plain.ok());
          auto expected = imaging::encode(*plain, o.format, png_effort(o.dither));
          ASSERT_TRUE(expected.ok());
          EXPECT_EQ(r->bytes, *expected)
              << algorithm << " serpentine=" << serpentine << " " << palette << " " << channels;
        }
      }
    }
  }
}

// A file that breaks half-way fails as decode() does, while the dither was already following it.
TEST(Pipeline, ADecodeFailureBesideTheDitherIsTheError) {
  auto input = png_of(testing::synthetic_photo(400, 400));
  input.resize(input.size() * 2 / 3);
  ProcessOptions o;
  auto r = process(input, o, imaging::Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUndecodable) << r.error().message;
  const auto plain = imaging::decode(input, imaging::Limits{});
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(r.error().message, plain.error().message);
}

TEST(Pipeline, RejectsNonImages) {
  const std::string text = "hello, this is not an image";
  auto r = process(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                   ProcessOptions{}, imaging::Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsupported);
}

}  // namespace
}  // namespace dither
