#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include "engine/dither.h"
#include "engine/testing/test_images.h"
#include "pipeline/presets.h"

namespace dither::pipeline {
namespace {

std::vector<uint8_t> png_of(const engine::Image& img) {
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
  const std::vector<std::pair<std::string, std::string>> bad = {{"algorithm", "blur"},
                                                                {"palette", "levels:1"},
                                                                {"channels", "0"},
                                                                {"channels", "1"},
                                                                {"channels", "257"},
                                                                {"channels", "two"},
                                                                {"serpentine", "maybe"},
                                                                {"strength", "1.5"},
                                                                {"strength", "nan"},
                                                                {"bayer_size", "5"},
                                                                {"halftone", "x"},
                                                                {"seed", "-1"},
                                                                {"seed", "9007199254740993"},
                                                                {"width", "-3"},
                                                                {"upscale", "17"},
                                                                {"format", "bmp"},
                                                                {"threads", "1000"},
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

// The canonical form reads back as the same options, and is itself canonical.
TEST(ProcessOptions, CanonicalFormReadsBackTheSame) {
  const std::vector<OptionPairs> requests = {
      {},
      {{"algorithm", "FS"}, {"palette", "EGA"}, {"serpentine", "on"}, {"strength", "0.80"}},
      {{"algorithm", "ordered"}, {"bayer_size", "3"}, {"format", "GIF"}, {"width", "64"}},
      {{"algorithm", "halftone"}, {"halftone", "c7x7b"}, {"upscale", "3"}, {"height", "10"}},
      {{"algorithm", "random"}, {"seed", "9007199254740992"}, {"linear_light", "no"}},
      {{"channels", "5"}, {"perceptual", "1"}, {"strength", "2.5e-05"}},
      {{"palette", "#ff0000,#0f0, 0000ff"}, {"format", "webp"}},
      {{"palette", "adaptive:16"}, {"algorithm", "yliluoma"}}};
  for (const OptionPairs& pairs : requests) {
    Result<ProcessOptions> o = parse_request_options(pairs);
    ASSERT_TRUE(o.ok()) << o.error().message;
    const std::string stored = canonical_json(*o);
    Result<ProcessOptions> back = options_from_json(stored);
    ASSERT_TRUE(back.ok()) << stored << ": " << back.error().message;
    EXPECT_EQ(canonical_json(*back), stored);
    EXPECT_EQ(describe(*back), describe(*o));
  }
  Result<ProcessOptions> o = parse_request_options({{"algorithm", "FS"}, {"strength", "0.80"}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(canonical_json(*o),
            R"({"algorithm":"floyd-steinberg","palette":"levels:2","serpentine":"false",)"
            R"("linear_light":"true","perceptual":"false","strength":"0.8","format":"png"})");
}

TEST(ProcessOptions, RequestsCannotChooseThreadsAndAreValidatedWhole) {
  Result<ProcessOptions> o = parse_request_options({{"threads", "2"}});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().message.find("threads"), std::string::npos);
  ProcessOptions base;
  base.palette = *engine::parse_palette_spec("ega");
  Result<ProcessOptions> over = parse_request_options({{"algorithm", "atkinson"}}, base);
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->palette.to_string(), "ega");  // the base stays where not overridden
  EXPECT_EQ(over->dither.threads, 0);
  EXPECT_FALSE(options_from_json("[1]").ok());
  EXPECT_FALSE(options_from_json(R"({"serpentine": true})").ok());  // stored values are texts
}

// GET /api/options: every option but the command line's, each with its type.
TEST(ProcessOptions, TheApiListsEveryHttpOption) {
  const std::string body = options_api_json();
  for (const OptionInfo& o : option_table()) {
    const bool listed = body.find("\"name\":\"" + std::string(o.name) + "\"") != std::string::npos;
    EXPECT_EQ(listed, o.scope != OptionScope::kCommandLine) << o.name;
  }
  EXPECT_NE(body.find(R"("name":"channels","type":"integer","in":"path")"), std::string::npos);
  EXPECT_NE(body.find(R"("applies_when":{"option":"algorithm","value":"bayer"})"),
            std::string::npos);
  // Every applies_when names an option and one of its choices.
  for (const OptionInfo& o : option_table()) {
    if (o.applies_when.first.empty()) continue;
    const OptionInfo* on = find_option(o.applies_when.first);
    ASSERT_NE(on, nullptr) << o.name;
    EXPECT_TRUE(std::any_of(on->choices.begin(), on->choices.end(), [&](const OptionChoice& c) {
      return c.value == o.applies_when.second;
    })) << o.name;
  }
}

// Every built-in preset reads, and an owner's preset name is checked.
TEST(Presets, BuiltInPresetsAreValidAndNamesAreChecked) {
  ASSERT_GE(builtin_presets().size(), 5u);
  for (const BuiltinPreset& p : builtin_presets()) {
    EXPECT_TRUE(check_preset_name(p.name, false).ok()) << p.name;
    ProcessOptions o = preset_options(p);
    EXPECT_TRUE(engine::validate(o.dither).ok()) << p.name;
  }
  EXPECT_EQ(preset_options(*find_builtin_preset("mac")).palette.to_string(), "bw");
  EXPECT_EQ(find_builtin_preset("nope"), nullptr);
  EXPECT_TRUE(check_preset_name("my-look_2.v1", true).ok());
  for (std::string_view bad : {"", "-x", "Upper", "a b", "a/b", "gameboy"}) {
    EXPECT_FALSE(check_preset_name(bad, true).ok()) << bad;
  }
  EXPECT_FALSE(check_preset_name(std::string(65, 'a'), true).ok());
}

TEST(Pipeline, DecodesDithersAndEncodesExactly) {
  const engine::Image photo = engine::testing::synthetic_photo(120, 90);
  const auto input = png_of(photo);
  ProcessOptions o;
  ASSERT_TRUE(set_option(o, "palette", "gameboy").ok());
  auto r = process(input, o, imaging::Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto back = imaging::decode(r->bytes, imaging::Limits{});
  ASSERT_TRUE(back.ok());
  const engine::Palette p = engine::Palette::from_colors(*engine::named_palette("gameboy"));
  const engine::Image expected = *engine::dither_image(photo, p, o.dither);
  EXPECT_EQ(back->pixels, expected.pixels);
}

TEST(Pipeline, ResizesKeepingAspectAndUpscales) {
  const auto input = png_of(engine::testing::synthetic_photo(200, 100));
  ProcessOptions o;
  ASSERT_TRUE(set_option(o, "width", "50").ok());
  ASSERT_TRUE(set_option(o, "upscale", "3").ok());
  auto r = process(input, o, imaging::Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->width, 150);
  EXPECT_EQ(r->height, 75);
}

TEST(Pipeline, OptionsCannotExceedThePixelLimit) {
  const auto input = png_of(engine::testing::synthetic_photo(100, 100));
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
    const engine::Image photo = engine::testing::synthetic_photo(300, 517, channels);
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
  auto input = png_of(engine::testing::synthetic_photo(400, 400));
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
}  // namespace dither::pipeline
