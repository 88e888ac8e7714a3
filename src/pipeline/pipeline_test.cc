#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

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
  std::vector<std::pair<std::string, std::string>> good = {
      {"algorithm", "atkinson"}, {"palette", "ega"},    {"channels", "4"},   {"serpentine", "true"},
      {"linear_light", "1"},     {"distance", "oklab"}, {"strength", "0.5"}, {"bayer_size", "16"},
      {"halftone", "h6x6a"},     {"seed", "99"},        {"width", "100"},    {"height", "80"},
      {"upscale", "2"},          {"format", "webp"},    {"threads", "0"}};
  good.emplace_back("alpha", "threshold");
  good.emplace_back("temporal", "fresh");
  good.emplace_back("kernel", "[[0,0,7],[3,5,1]]");
  good.emplace_back("matrix", "[[0,2],[3,1]]");
  ASSERT_EQ(good.size(), option_table().size());
  for (const auto& [name, value] : good) {
    ProcessOptions o;
    EXPECT_TRUE(set_option(o, name, value).ok()) << name;
  }
}

// kernel and matrix (docs/CUSTOM.md): JSON read by the engine, stored in the canonical form only
// with their algorithm, required by it.
TEST(ProcessOptions, CustomKernelsAndMatricesAreKeptCanonical) {
  Result<ProcessOptions> o =
      parse_request_options({{"kernel", R"({"rows": [[0,0,0,7],[0,3,5,1]], "origin": 2})"},
                             {"algorithm", "custom-kernel"}});
  ASSERT_TRUE(o.ok()) << o.error().message;
  const std::string stored = canonical_json(*o);
  EXPECT_NE(stored.find(R"("kernel":"[[0,0,7],[3,5,1]]")"), std::string::npos) << stored;
  EXPECT_EQ(canonical_json(*options_from_json(stored)), stored);
  o = parse_request_options({{"algorithm", "custom-matrix"}, {"matrix", "[[0, 2], [3, 1]]"}});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_NE(canonical_json(*o).find(R"("matrix":"[[0,2],[3,1]]")"), std::string::npos);
  o = parse_request_options({{"algorithm", "atkinson"}, {"kernel", "[[0,0,1]]"}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(canonical_json(*o).find("kernel"), std::string::npos) << "not its algorithm";
  EXPECT_EQ(parse_request_options({{"algorithm", "custom-kernel"}}).error().message,
            "algorithm custom-kernel needs the option kernel, e.g. [[0,0,7],[3,5,1]]");
  EXPECT_EQ(parse_request_options({{"kernel", "[[0,0,7],[3,5,1,0]]"}}).error().message,
            "option 'kernel': row 2 has 4 entries, row 1 has 3");
  EXPECT_EQ(parse_request_options({{"matrix", "{}"}}).error().message,
            "option 'matrix': not a JSON array of rows");
  EXPECT_EQ(to_string(find_option("kernel")->type), "json");
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
                                                                {"colour", "red"},
                                                                {"alpha", "bogus"},
                                                                {"alpha", "flatten:#12345"}};
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
      {{"palette", "adaptive:16"}, {"algorithm", "yliluoma"}},
      {{"palette", "ega"}, {"distance", "CIEDE2000"}}};
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
            R"("linear_light":"true","distance":"rgb","strength":"0.8","format":"png"})");
}

// `distance` replaced the boolean `perceptual`: the old name still reads (requests, presets and
// records stored by older versions), as distance=luma, but is written and listed nowhere.
TEST(ProcessOptions, PerceptualIsAnOldSpellingOfDistanceLuma) {
  Result<ProcessOptions> old = options_from_json(
      R"({"algorithm":"floyd-steinberg","palette":"ega","serpentine":"false",)"
      R"("linear_light":"true","perceptual":"true","strength":"1","format":"png"})");
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->dither.metric, engine::Metric::kPerceptual);
  EXPECT_EQ(canonical_json(*old),
            R"({"algorithm":"floyd-steinberg","palette":"ega","serpentine":"false",)"
            R"("linear_light":"true","distance":"luma","strength":"1","format":"png"})");
  EXPECT_EQ(options_from_json(R"({"perceptual":"false"})")->dither.metric,
            engine::Metric::kEuclidean);
  // A later perceptual=false undoes luma only, not another distance.
  EXPECT_EQ(parse_request_options({{"distance", "oklab"}, {"perceptual", "false"}})->dither.metric,
            engine::Metric::kOklab);
  EXPECT_EQ(parse_request_options({{"distance", "luma"}, {"perceptual", "off"}})->dither.metric,
            engine::Metric::kEuclidean);
  EXPECT_EQ(parse_request_options({{"distance", "Perceptual"}})->dither.metric,
            engine::Metric::kPerceptual);
  EXPECT_FALSE(parse_request_options({{"perceptual", "maybe"}}).ok());
  EXPECT_FALSE(parse_request_options({{"distance", "cie76"}}).ok());
  const OptionInfo* alias = find_option("perceptual");
  ASSERT_NE(alias, nullptr);
  EXPECT_EQ(alias->type, OptionType::kBoolean);  // a JSON body gives it as true or false
  for (const OptionInfo& o : option_table()) EXPECT_NE(o.name, "perceptual");
  EXPECT_EQ(options_api_json().find(R"("name":"perceptual")"), std::string::npos);
  EXPECT_EQ(options_markdown().find("`perceptual`"), std::string::npos);
  const OptionInfo* distance = find_option("distance");
  ASSERT_NE(distance, nullptr);
  std::vector<std::string> choices;
  for (const OptionChoice& c : distance->choices) choices.push_back(c.value);
  EXPECT_EQ(choices, (std::vector<std::string>{"rgb", "luma", "oklab", "ciede2000"}));
}

// alpha: four modes, the flatten colour as a palette colour is written; keep, the default, is
// left out of the canonical form (records stored before the option existed keep their text).
TEST(ProcessOptions, AlphaModesParseWithClearErrors) {
  const std::vector<std::pair<std::string, std::optional<std::string>>> good = {
      {"keep", std::nullopt},
      {"Threshold", "threshold"},
      {"DITHER", "dither"},
      {"flatten:#FFaa00", "flatten:#ffaa00"},
      {"flatten:f80", "flatten:#ff8800"}};
  for (const auto& [text, canonical] : good) {
    Result<ProcessOptions> o = parse_request_options({{"alpha", text}});
    ASSERT_TRUE(o.ok()) << text << ": " << o.error().message;
    const OptionPairs pairs = describe(*o);
    const auto it =
        std::find_if(pairs.begin(), pairs.end(), [](const auto& p) { return p.first == "alpha"; });
    if (!canonical) {
      EXPECT_EQ(it, pairs.end()) << text;
      continue;
    }
    ASSERT_NE(it, pairs.end()) << text;
    EXPECT_EQ(it->second, *canonical);
    Result<ProcessOptions> back = options_from_json(canonical_json(*o));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->dither.alpha, o->dither.alpha);
    EXPECT_EQ(back->dither.background, o->dither.background);
  }
  const auto message = [](std::string_view text) {
    ProcessOptions o;
    const Status s = set_option(o, "alpha", text);
    return s.ok() ? std::string("accepted") : s.error().message;
  };
  EXPECT_EQ(message("bogus"),
            "option 'alpha': expected keep, threshold, dither or flatten:#rrggbb, got 'bogus'");
  EXPECT_EQ(message("flatten:#12345"),
            "option 'alpha': flatten:#rrggbb: '#12345' is not a hex colour like #ff8800 or #f80");
  EXPECT_EQ(message("flatten:red?"),
            "option 'alpha': flatten:#rrggbb: 'red?' is not a hex colour like #ff8800 or #f80");
  EXPECT_EQ(message("flatten"),
            "option 'alpha': flatten needs the colour to composite over, e.g. flatten:#ffffff; "
            "got 'flatten'");
  EXPECT_NE(message("flatten-#ffffff").find("flatten needs the colour"), std::string::npos);
  EXPECT_EQ(message(""),
            "option 'alpha': expected keep, threshold, dither or flatten:#rrggbb, "
            "got ''");
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
  EXPECT_NE(body.find(R"("applies_when":{"option":"algorithm","values":["bayer"]})"),
            std::string::npos);
  EXPECT_NE(body.find(R"("applies_when":{"option":"algorithm","values":["random","zhou-fang"]})"),
            std::string::npos);
  // Every applies_when names an option and some of its choices.
  for (const OptionInfo& o : option_table()) {
    if (o.applies_when.first.empty()) continue;
    const OptionInfo* on = find_option(o.applies_when.first);
    ASSERT_NE(on, nullptr) << o.name;
    ASSERT_FALSE(o.applies_when.second.empty()) << o.name;
    for (std::string_view value : o.applies_when.second) {
      EXPECT_TRUE(std::any_of(on->choices.begin(), on->choices.end(),
                              [&](const OptionChoice& c) { return c.value == value; }))
          << o.name << " " << value;
    }
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

// ---------------------------------------------------------------------------------------------
// Transparency through every output format (docs/TRANSPARENCY.md).

// An RGBA photo with transparent blocks, a band of partial alpha and opaque parts.
engine::Image rgba_input(int width, int height) {
  engine::Image img = engine::testing::synthetic_photo(width, height, 4);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t& a = img.at(x, y)[3];
      a = (x / 10 + y / 10) % 3 == 0 ? 0 : 255;
      if (y >= height * 2 / 3) a = static_cast<uint8_t>(x * 255 / (width - 1));
    }
  }
  return img;
}

// The data of the first PNG chunk of `type`, if any.
std::optional<std::vector<uint8_t>> png_chunk(const std::vector<uint8_t>& png, const char* type) {
  for (size_t at = 8; at + 12 <= png.size();) {
    const size_t length = (size_t{png[at]} << 24) | (size_t{png[at + 1]} << 16) |
                          (size_t{png[at + 2]} << 8) | png[at + 3];
    if (std::equal(type, type + 4, png.begin() + static_cast<ptrdiff_t>(at + 4))) {
      const auto data = png.begin() + static_cast<ptrdiff_t>(at + 8);
      return std::vector<uint8_t>(data, data + static_cast<ptrdiff_t>(length));
    }
    at += 12 + length;
  }
  return std::nullopt;
}

// A GIF's transparent colour index (from its Graphic Control Extension), if it has one.
std::optional<int> gif_transparent_index(const std::vector<uint8_t>& gif) {
  for (size_t i = 0; i + 6 < gif.size(); ++i) {
    if (gif[i] == 0x21 && gif[i + 1] == 0xf9 && gif[i + 2] == 4) {
      if ((gif[i + 3] & 1) == 0) return std::nullopt;
      return gif[i + 6];
    }
  }
  return std::nullopt;
}

// The alpha of every pixel of a decoded image (255 for RGB).
std::vector<uint8_t> alphas_of(const engine::Image& img) {
  std::vector<uint8_t> a(img.pixel_count(), 255);
  if (img.has_alpha()) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = img.pixels[i * 4 + 3];
  }
  return a;
}

// Each mode through PNG, GIF and WebP, following the decoder (error diffusion) and not (Bayer):
// the decoded alphas are what the mode says, PNG is indexed with one transparent tRNS entry for
// 1-bit alpha, GIF marks its transparent index, and the bytes are those of decoding first.
TEST(Pipeline, EveryAlphaModeThroughEveryFormat) {
  const engine::Image input = rgba_input(90, 60);
  const auto bytes = png_of(input);
  std::vector<uint8_t> one_bit(input.pixel_count());
  for (size_t i = 0; i < one_bit.size(); ++i) one_bit[i] = input.pixels[i * 4 + 3] >= 128 ? 255 : 0;
  for (const char* algorithm : {"floyd-steinberg", "bayer"}) {
    for (const char* mode : {"keep", "threshold", "dither", "flatten:#336699"}) {
      for (const char* format : {"png", "gif", "webp"}) {
        const std::string what = std::string(algorithm) + " " + mode + " " + format;
        ProcessOptions o;
        ASSERT_TRUE(set_option(o, "algorithm", algorithm).ok());
        ASSERT_TRUE(set_option(o, "palette", "ega").ok());
        ASSERT_TRUE(set_option(o, "alpha", mode).ok());
        ASSERT_TRUE(set_option(o, "format", format).ok());
        Result<Processed> r = process(bytes, o, imaging::Limits{});
        ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
        Result<engine::Image> plain = process_image(input, o, imaging::Limits{});
        ASSERT_TRUE(plain.ok()) << what;
        EXPECT_EQ(r->bytes, *imaging::encode(*plain, o.format, png_effort(o.dither))) << what;
        Result<engine::Image> back = imaging::decode(r->bytes, imaging::Limits{});
        ASSERT_TRUE(back.ok()) << what;
        const std::vector<uint8_t> alpha = alphas_of(*back);
        const std::string m = mode;
        if (m == "flatten:#336699") {
          EXPECT_EQ(plain->channels, 3) << what;
          EXPECT_EQ(alpha, std::vector<uint8_t>(alpha.size(), 255)) << what;
          if (o.format == imaging::OutputFormat::kGif) {
            EXPECT_FALSE(gif_transparent_index(r->bytes)) << what;
          }
        } else if (m == "keep" && o.format != imaging::OutputFormat::kGif) {
          EXPECT_EQ(alpha, alphas_of(input)) << what;
        } else if (m == "dither") {
          EXPECT_EQ(alpha, alphas_of(*plain)) << what;
          EXPECT_NE(alpha, one_bit) << what << ": partial alpha is dithered, not cut";
          for (uint8_t a : alpha) ASSERT_TRUE(a == 0 || a == 255) << what;
        } else {
          EXPECT_EQ(alpha, one_bit) << what;  // threshold, and keep in GIF
        }
        const bool binary = m != "keep" && m != "flatten:#336699";
        if (o.format == imaging::OutputFormat::kPng && binary) {
          const auto ihdr = png_chunk(r->bytes, "IHDR");
          ASSERT_TRUE(ihdr);
          EXPECT_EQ((*ihdr)[9], 3) << what << ": indexed";
          EXPECT_EQ(png_chunk(r->bytes, "tRNS"), std::vector<uint8_t>{0}) << what;
        }
        if (o.format == imaging::OutputFormat::kGif && m != "flatten:#336699") {
          EXPECT_EQ(gif_transparent_index(r->bytes), 0) << what;
        }
      }
    }
  }
}

// The dither beside the decoder with 1-bit alpha gives its decoded rows back as it goes (PNG and
// GIF are sure to be indexed: the palette and one transparent entry): the same bytes as decoding
// first, on an image tall enough for many steps of rows.
TEST(Pipeline, OneBitAlphaBesideTheDecoderChangesNoByte) {
  const auto bytes = png_of(rgba_input(200, 700));
  const Result<engine::Image> decoded = imaging::decode(bytes, imaging::Limits{});
  ASSERT_TRUE(decoded.ok());
  for (const char* mode : {"threshold", "dither", "keep"}) {
    for (const char* format : {"png", "gif"}) {
      for (const char* palette : {"levels:2", "adaptive:12"}) {
        ProcessOptions o;
        ASSERT_TRUE(set_option(o, "alpha", mode).ok());
        ASSERT_TRUE(set_option(o, "format", format).ok());
        ASSERT_TRUE(set_option(o, "palette", palette).ok());
        Result<Processed> r = process(bytes, o, imaging::Limits{});
        ASSERT_TRUE(r.ok()) << r.error().message;
        Result<engine::Image> plain = process_image(*decoded, o, imaging::Limits{});
        ASSERT_TRUE(plain.ok());
        EXPECT_EQ(r->bytes, *imaging::encode(*plain, o.format, png_effort(o.dither)))
            << mode << " " << format << " " << palette;
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
