#include "engine/palette.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/dither.h"
#include "engine/testing/test_images.h"

namespace dither::engine {
namespace {

TEST(Palette, LevelValuesFollowThePrototypeFormula) {
  for (int c = 2; c <= 256; ++c) {
    for (int i = 0; i < c; ++i) {
      EXPECT_EQ(level_value(i, c), static_cast<int>(std::floor(i * 255.0 / (c - 1) + 0.5)));
    }
  }
  EXPECT_EQ(level_value(1, 3), 128);
  EXPECT_EQ(Palette::uniform_levels(2).size(), 8u);
  EXPECT_EQ(Palette::uniform_levels(256).size(), 256u * 256u * 256u);
}

// The prototype: v in [0,1] -> round(v * (c - 1)) / (c - 1), then back to 8 bits.
TEST(Palette, ChannelsFormulaWithoutDitheringIsThePrototypes) {
  Image ramp(256, 1, 3);
  for (int s = 0; s < 256; ++s) {
    ramp.at(s, 0)[0] = static_cast<uint8_t>(s);
    ramp.at(s, 0)[1] = static_cast<uint8_t>(255 - s);
    ramp.at(s, 0)[2] = static_cast<uint8_t>((s * 7) % 256);
  }
  DitherOptions o;
  o.color_space = ColorSpace::kSrgb;  // this test is about sRGB tone
  o.algorithm = Algorithm::kThreshold;
  for (int c : {2, 3, 4, 5, 7, 16, 100, 255, 256}) {
    auto out = dither_image(ramp, Palette::uniform_levels(c), o);
    ASSERT_TRUE(out.ok());
    for (int x = 0; x < 256; ++x) {
      for (int ch = 0; ch < 3; ++ch) {
        const double v = ramp.at(x, 0)[ch] / 255.0;
        const double q = std::round(v * (c - 1)) / (c - 1);
        EXPECT_EQ(out->at(x, 0)[ch], static_cast<int>(std::round(q * 255)))
            << "c=" << c << " sample=" << int(ramp.at(x, 0)[ch]);
      }
    }
  }
}

TEST(Palette, ParsesEveryKind) {
  auto levels = parse_palette_spec("levels:4");
  ASSERT_TRUE(levels.ok());
  EXPECT_EQ(levels->kind, PaletteSpec::Kind::kLevels);
  EXPECT_EQ(levels->count, 4);
  auto grey = parse_palette_spec("Gray:3");
  ASSERT_TRUE(grey.ok());
  EXPECT_EQ(grey->kind, PaletteSpec::Kind::kGrey);
  auto adaptive = parse_palette_spec("adaptive:16");
  ASSERT_TRUE(adaptive.ok());
  EXPECT_EQ(adaptive->kind, PaletteSpec::Kind::kAdaptive);
  auto named = parse_palette_spec("PICO8");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->kind, PaletteSpec::Kind::kNamed);
  auto custom = parse_palette_spec("#ff0000, 00ff00,#00f");
  ASSERT_TRUE(custom.ok());
  ASSERT_EQ(custom->colors.size(), 3u);
  EXPECT_EQ(custom->colors[2], (Color{0, 0, 255}));
  auto prefixed = parse_palette_spec("custom:123456");
  ASSERT_TRUE(prefixed.ok());
  EXPECT_EQ(prefixed->colors[0], (Color{0x12, 0x34, 0x56}));
  // Canonical text round-trips.
  for (const char* t : {"levels:4", "grey:3", "adaptive:16", "pico8", "#ff0000,#00ff00"}) {
    auto spec = parse_palette_spec(t);
    ASSERT_TRUE(spec.ok()) << t;
    auto again = parse_palette_spec(spec->to_string());
    ASSERT_TRUE(again.ok()) << spec->to_string();
    EXPECT_EQ(again->to_string(), spec->to_string());
  }
}

TEST(Palette, RejectsBadSpecsWithAClearMessage) {
  for (const char* t : {"", "levels:1", "levels:257", "levels:abc", "levels:", "grey:0",
                        "adaptive:1", "nonsense", "#12345", "#gggggg", "custom:", "#ff0000,,"}) {
    auto spec = parse_palette_spec(t);
    ASSERT_FALSE(spec.ok()) << t;
    EXPECT_EQ(spec.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_FALSE(spec.error().message.empty());
  }
  std::string many;
  for (int i = 0; i < 257; ++i) many += (i ? "," : "") + std::string("#000000");
  EXPECT_FALSE(parse_palette_spec(many).ok());
  EXPECT_NE(parse_palette_spec("nonsense").error().message.find("gameboy"), std::string::npos);
}

TEST(Palette, NamedPalettes) {
  EXPECT_EQ(named_palette("bw")->size(), 2u);
  EXPECT_EQ(named_palette("ega")->size(), 16u);
  EXPECT_EQ(named_palette("cga")->size(), 16u);
  EXPECT_EQ(named_palette("cga4")->size(), 4u);
  EXPECT_EQ(named_palette("pico8")->size(), 16u);
  EXPECT_EQ(named_palette("websafe")->size(), 216u);
  const auto gb = *named_palette("gameboy");
  ASSERT_EQ(gb.size(), 4u);
  EXPECT_EQ(to_hex(gb[0]), "#0f380f");
  EXPECT_EQ(to_hex(gb[3]), "#9bbc0f");
  EXPECT_EQ(to_hex((*named_palette("pico8"))[8]), "#ff004d");
  EXPECT_EQ(to_hex((*named_palette("ega"))[6]), "#aa5500");
  for (const auto& info : named_palettes()) {
    EXPECT_TRUE(named_palette(info.name).ok()) << info.name;
  }
}

TEST(Palette, ListsDropDuplicatesAndAnswerContains) {
  const Palette p = Palette::from_colors({{1, 2, 3}, {1, 2, 3}, {4, 5, 6}});
  EXPECT_EQ(p.size(), 2u);
  EXPECT_TRUE(p.contains({4, 5, 6}));
  EXPECT_FALSE(p.contains({4, 5, 7}));
  const Palette l = Palette::uniform_levels(3);
  EXPECT_TRUE(l.contains({0, 128, 255}));
  EXPECT_FALSE(l.contains({0, 127, 255}));
}

TEST(Palette, ResolvesAdaptivePalettesFromTheImage) {
  const Image img = testing::synthetic_photo(64, 48);
  const Palette p = resolve_palette(*parse_palette_spec("adaptive:8"), img);
  EXPECT_FALSE(p.is_levels());
  EXPECT_LE(p.size(), 8u);
  EXPECT_GE(p.size(), 2u);
}

// The palette is fitted for the space the image is dithered in: the pipeline passes that on.
TEST(Palette, FitsAdaptivePalettesForTheWorkingSpace) {
  const Image img = testing::synthetic_photo(64, 48);
  const PaletteSpec spec = *parse_palette_spec("adaptive:8");
  const Palette srgb = resolve_palette(spec, img, ColorSpace::kSrgb);
  const Palette linear = resolve_palette(spec, img, ColorSpace::kLinear);
  EXPECT_EQ(srgb.colors(), adaptive_palette(img, 8, ColorSpace::kSrgb));
  EXPECT_EQ(linear.colors(), adaptive_palette(img, 8, ColorSpace::kLinear));
  EXPECT_EQ(resolve_palette(spec, img).colors(), linear.colors());  // linear light by default
  EXPECT_NE(srgb.colors(), linear.colors());
}

}  // namespace
}  // namespace dither::engine
