// Tests for src/imaging. Every input image is made here, in memory, with libvips, giflib or by
// hand: the repository holds no image files.
#include "imaging/codec.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <vips/vips.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace dither::imaging {
namespace {

using Bytes = std::vector<uint8_t>;
using namespace std::string_view_literals;

// libvips warns on stderr about every broken input these tests feed it; decode reports the same
// as errors. VIPS_WARNING (read when libvips starts) silences the duplicates.
[[maybe_unused]] const bool kQuietVips = setenv("VIPS_WARNING", "0", 0) == 0;

// ---------------------------------------------------------------------------------------------
// Helpers: synthetic images and files.

struct VipsUnref {
  void operator()(VipsImage* image) const { g_object_unref(image); }
};
using VipsPtr = std::unique_ptr<VipsImage, VipsUnref>;

void ensure_vips() { ASSERT_TRUE(init().ok()); }

// A smooth-ish test picture with some structure, so decoders have real work to do.
engine::Image make_photo(int width, int height, int channels) {
  engine::Image img(width, height, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, width - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, height - 1));
      p[2] = static_cast<uint8_t>(((x / 4 + y / 4) % 2) * 128 + 64);
      if (channels == 4) p[3] = static_cast<uint8_t>(255 - (x * 200 / std::max(1, width - 1)));
    }
  }
  return img;
}

// An image using exactly `count` distinct colours (each appears at least once when
// width * height >= count).
engine::Image make_palette_image(int width, int height, int channels, int count) {
  engine::Image img(width, height, channels);
  for (int i = 0; i < width * height; ++i) {
    const int c = i % count;
    uint8_t* p = img.pixels.data() + static_cast<size_t>(i) * static_cast<size_t>(channels);
    p[0] = static_cast<uint8_t>(c % 256);
    p[1] = static_cast<uint8_t>((c * 7 + c / 256) % 256);
    p[2] = static_cast<uint8_t>(255 - c % 256);
    if (channels == 4) p[3] = 255;
  }
  return img;
}

VipsPtr to_vips(const void* data, int width, int height, int bands, VipsBandFormat format,
                VipsInterpretation interpretation) {
  const size_t size = static_cast<size_t>(width) * static_cast<size_t>(height) *
                      static_cast<size_t>(bands) * vips_format_sizeof(format);
  VipsPtr memory(vips_image_new_from_memory_copy(data, size, width, height, bands, format));
  EXPECT_TRUE(memory) << vips_error_buffer();
  VipsImage* tagged = nullptr;
  EXPECT_EQ(vips_copy(memory.get(), &tagged, "interpretation", interpretation, nullptr), 0);
  return VipsPtr(tagged);
}

VipsPtr to_vips(const engine::Image& img) {
  return to_vips(img.pixels.data(), img.width, img.height, img.channels, VIPS_FORMAT_UCHAR,
                 VIPS_INTERPRETATION_sRGB);
}

// Saves with libvips by suffix, options included: ".png[bitdepth=16]".
Bytes save(VipsImage* image, const char* suffix) {
  void* buffer = nullptr;
  size_t length = 0;
  if (vips_image_write_to_buffer(image, suffix, &buffer, &length, nullptr) != 0) {
    ADD_FAILURE() << "saving " << suffix << ": " << vips_error_buffer();
    vips_error_clear();
    return {};
  }
  Bytes out(static_cast<uint8_t*>(buffer), static_cast<uint8_t*>(buffer) + length);
  g_free(buffer);
  return out;
}

Bytes save(const engine::Image& img, const char* suffix) {
  ensure_vips();
  VipsPtr v = to_vips(img);
  return save(v.get(), suffix);
}

Bytes text_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

uint32_t crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void put_chunk(Bytes& out, std::string_view type, const Bytes& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type.begin(), type.end());
  out.insert(out.end(), data.begin(), data.end());
  put_be32(out, crc32(out.data() + start, out.size() - start));
}

uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct PngHeader {
  uint32_t width = 0;
  uint32_t height = 0;
  int bit_depth = 0;
  int color_type = 0;
};

PngHeader parse_ihdr(const Bytes& png) {
  PngHeader h;
  if (png.size() < 33) return h;
  EXPECT_EQ(std::memcmp(png.data() + 12, "IHDR", 4), 0);
  h.width = get_be32(png.data() + 16);
  h.height = get_be32(png.data() + 20);
  h.bit_depth = png[24];
  h.color_type = png[25];
  return h;
}

// The payload of the first chunk of `type`, or nullopt.
std::optional<Bytes> find_chunk(const Bytes& png, std::string_view type) {
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const uint32_t length = get_be32(png.data() + pos);
    if (pos + 12 + length > png.size()) break;
    if (std::memcmp(png.data() + pos + 4, type.data(), 4) == 0) {
      return Bytes(png.begin() + static_cast<ptrdiff_t>(pos + 8),
                   png.begin() + static_cast<ptrdiff_t>(pos + 8 + length));
    }
    pos += 12 + length;
  }
  return std::nullopt;
}

// A PNG whose IHDR claims width x height, followed by a token IDAT: enough for any header reader.
Bytes png_claiming(uint32_t width, uint32_t height) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, no filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", Bytes{0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01});
  put_chunk(png, "IEND", Bytes{});
  return png;
}

int on_gif_write(GifFileType* gif, const GifByteType* data, int length) {
  auto* out = static_cast<Bytes*>(gif->UserData);
  out->insert(out->end(), data, data + length);
  return length;
}

// A 16x8 GIF of `frames` frames: the first all red, the others all blue.
Bytes animated_gif(int frames) {
  Bytes out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, on_gif_write, &error);
  EXPECT_NE(gif, nullptr);
  GifColorType colors[2] = {{255, 0, 0}, {0, 0, 255}};
  ColorMapObject* map = GifMakeMapObject(2, colors);
  EGifSetGifVersion(gif, true);
  EXPECT_EQ(EGifPutScreenDesc(gif, 16, 8, 1, 0, map), GIF_OK);
  for (int frame = 0; frame < frames; ++frame) {
    const GifPixelType index = frame == 0 ? 0 : 1;
    GraphicsControlBlock gcb{};
    gcb.DelayTime = 10;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    EGifGCBToExtension(&gcb, ext);
    EXPECT_EQ(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, ext), GIF_OK);
    EXPECT_EQ(EGifPutImageDesc(gif, 0, 0, 16, 8, false, nullptr), GIF_OK);
    std::vector<GifPixelType> line(16, index);
    for (int y = 0; y < 8; ++y) EXPECT_EQ(EGifPutLine(gif, line.data(), 16), GIF_OK);
  }
  EXPECT_EQ(EGifCloseFile(gif, &error), GIF_OK);
  GifFreeMapObject(map);
  return out;
}

Bytes two_frame_gif() { return animated_gif(2); }

double mean_abs_diff(const engine::Image& a, const engine::Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return sum / static_cast<double>(a.pixels.size());
}

void expect_same_pixels(const engine::Image& expected, const engine::Image& actual) {
  ASSERT_EQ(expected.width, actual.width);
  ASSERT_EQ(expected.height, actual.height);
  ASSERT_EQ(expected.channels, actual.channels);
  for (size_t i = 0; i < expected.pixels.size(); ++i) {
    if (expected.pixels[i] != actual.pixels[i]) {
      const size_t pixel = i / static_cast<size_t>(expected.channels);
      FAIL() << "first difference at pixel (" << pixel % static_cast<size_t>(expected.width) << ", "
             << pixel / static_cast<size_t>(expected.width) << ") channel "
             << i % static_cast<size_t>(expected.channels) << ": expected "
             << int{expected.pixels[i]} << ", got " << int{actual.pixels[i]};
    }
  }
}

engine::Image decode_ok(const Bytes& bytes) {
  Result<engine::Image> img = decode(bytes, Limits{});
  EXPECT_TRUE(img.ok()) << (img.ok() ? "" : img.error().message);
  return img.ok() ? std::move(*img) : engine::Image();
}

Bytes encode_ok(const engine::Image& img, OutputFormat format) {
  Result<Bytes> bytes = encode(img, format);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().message);
  return bytes.ok() ? std::move(*bytes) : Bytes();
}

// ---------------------------------------------------------------------------------------------
// Names and sniffing.

TEST(Formats, NamesAndContentTypes) {
  EXPECT_EQ(to_string(InputFormat::kJpeg), "jpeg");
  EXPECT_EQ(content_type(InputFormat::kTiff), "image/tiff");
  EXPECT_EQ(to_string(OutputFormat::kWebp), "webp");
  EXPECT_EQ(content_type(OutputFormat::kPng), "image/png");
  EXPECT_EQ(content_type(OutputFormat::kGif), "image/gif");
}

TEST(Formats, ParseOutputFormat) {
  EXPECT_EQ(*parse_output_format("png"), OutputFormat::kPng);
  EXPECT_EQ(*parse_output_format("GIF"), OutputFormat::kGif);
  EXPECT_EQ(*parse_output_format("webp"), OutputFormat::kWebp);
  Result<OutputFormat> bad = parse_output_format("jpeg");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("jpeg"), std::string::npos);
  EXPECT_FALSE(parse_output_format("").ok());
}

TEST(Sniff, RecognisesEachAllowedFormat) {
  ensure_vips();
  const engine::Image img = make_photo(8, 8, 3);
  EXPECT_EQ(sniff(save(img, ".jpg")), InputFormat::kJpeg);
  EXPECT_EQ(sniff(save(img, ".png")), InputFormat::kPng);
  EXPECT_EQ(sniff(save(img, ".webp")), InputFormat::kWebp);
  EXPECT_EQ(sniff(save(img, ".gif")), InputFormat::kGif);
  EXPECT_EQ(sniff(save(img, ".tif")), InputFormat::kTiff);
  EXPECT_EQ(sniff(text_bytes("MM\0*xxxx"sv)), InputFormat::kTiff);
  EXPECT_EQ(sniff(text_bytes("II*\0xxxx"sv)), InputFormat::kTiff);
  EXPECT_EQ(sniff(text_bytes("GIF87a"sv)), InputFormat::kGif);
  EXPECT_EQ(sniff(text_bytes("RIFF\0\0\0\0WEBP"sv)), InputFormat::kWebp);
}

TEST(Sniff, RejectsEverythingElse) {
  for (std::string_view text : {
           std::string_view("hello, world\n"),
           std::string_view("PK\x03\x04\x14\x00\x00\x00"),              // zip
           std::string_view("%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"),           // PDF
           std::string_view("BM\x36\x00\x0C\x00\x00\x00\x00\x00\x36"),  // BMP: not allowed
           std::string_view("<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
           std::string_view("<?xml version=\"1.0\"?><svg/>"),
           std::string_view("RIFF\x24\x00\x00\x00WAVEfmt "),  // RIFF but not WebP
           std::string_view("\xFF\xD8"),                      // too short for JPEG
           std::string_view("\x89PNG"),                       // too short for PNG
           "II+\0"sv,                                         // BigTIFF
           "MM\0+"sv,
           ""sv,
       }) {
    EXPECT_EQ(sniff(text_bytes(text)), std::nullopt) << text;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding each format.

TEST(Decode, Jpeg) {
  const engine::Image img = make_photo(64, 48, 3);
  const engine::Image out = decode_ok(save(img, ".jpg[Q=95]"));
  ASSERT_EQ(out.width, 64);
  ASSERT_EQ(out.height, 48);
  ASSERT_EQ(out.channels, 3);
  EXPECT_LT(mean_abs_diff(img, out), 4.0);
}

TEST(Decode, Png8BitRgbIsExact) {
  const engine::Image img = make_photo(33, 17, 3);
  expect_same_pixels(img, decode_ok(save(img, ".png")));
}

TEST(Decode, PngWithAlphaIsExact) {
  const engine::Image img = make_photo(33, 17, 4);
  expect_same_pixels(img, decode_ok(save(img, ".png")));
}

TEST(Decode, Png16BitBecomes8Bit) {
  ensure_vips();
  const int w = 20;
  const int h = 10;
  for (int bands : {3, 4}) {
    std::vector<uint16_t> samples(static_cast<size_t>(w * h * bands));
    engine::Image expected(w, h, bands);
    for (size_t i = 0; i < samples.size(); ++i) {
      const auto v = static_cast<uint8_t>((i * 37) % 256);
      samples[i] = static_cast<uint16_t>(v * 257);
      expected.pixels[i] = v;
    }
    VipsPtr v = to_vips(samples.data(), w, h, bands, VIPS_FORMAT_USHORT, VIPS_INTERPRETATION_RGB16);
    const Bytes png = save(v.get(), ".png[bitdepth=16]");
    ASSERT_EQ(parse_ihdr(png).bit_depth, 16);
    const engine::Image out = decode_ok(png);
    ASSERT_EQ(out.channels, bands);
    EXPECT_LE(mean_abs_diff(expected, out), 0.5) << bands << " bands";
    for (size_t i = 0; i < out.pixels.size(); ++i) {
      ASSERT_NEAR(out.pixels[i], expected.pixels[i], 1) << "sample " << i << ", " << bands;
    }
  }
}

TEST(Decode, GreyPngBecomesRgb) {
  ensure_vips();
  std::vector<uint8_t> grey(12 * 6);
  for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint8_t>(i * 3);
  VipsPtr v = to_vips(grey.data(), 12, 6, 1, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_B_W);
  const engine::Image out = decode_ok(save(v.get(), ".png"));
  ASSERT_EQ(out.channels, 3);
  for (size_t i = 0; i < grey.size(); ++i) {
    ASSERT_EQ(out.pixels[i * 3], grey[i]);
    ASSERT_EQ(out.pixels[i * 3 + 1], grey[i]);
    ASSERT_EQ(out.pixels[i * 3 + 2], grey[i]);
  }
}

TEST(Decode, GreyJpegBecomesRgb) {
  ensure_vips();
  std::vector<uint8_t> grey(16 * 8, 100);
  VipsPtr v = to_vips(grey.data(), 16, 8, 1, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_B_W);
  const engine::Image out = decode_ok(save(v.get(), ".jpg"));
  ASSERT_EQ(out.channels, 3);
  for (uint8_t sample : out.pixels) ASSERT_NEAR(sample, 100, 2);
}

TEST(Decode, GreyAlphaPngBecomesRgba) {
  ensure_vips();
  std::vector<uint8_t> ga(8 * 4 * 2);
  for (size_t i = 0; i < ga.size(); ++i) ga[i] = static_cast<uint8_t>(i * 7);
  VipsPtr v = to_vips(ga.data(), 8, 4, 2, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_B_W);
  const engine::Image out = decode_ok(save(v.get(), ".png"));
  ASSERT_EQ(out.channels, 4);
  for (size_t i = 0; i < 32; ++i) {
    ASSERT_EQ(out.pixels[i * 4], ga[i * 2]);
    ASSERT_EQ(out.pixels[i * 4 + 2], ga[i * 2]);
    ASSERT_EQ(out.pixels[i * 4 + 3], ga[i * 2 + 1]);
  }
}

TEST(Decode, PalettePngFromLibvips) {
  // libvips' palette writer quantises (libimagequant); with 4 colours it keeps them.
  const engine::Image img = make_palette_image(16, 16, 3, 4);
  const Bytes png = save(img, ".png[palette]");
  ASSERT_EQ(parse_ihdr(png).color_type, 3);
  const engine::Image out = decode_ok(png);
  ASSERT_EQ(out.channels, 3);
  EXPECT_LT(mean_abs_diff(img, out), 2.0);
}

TEST(Decode, WebpLossyAndLossless) {
  const engine::Image img = make_photo(40, 30, 3);
  expect_same_pixels(img, decode_ok(save(img, ".webp[lossless]")));
  const engine::Image lossy = decode_ok(save(img, ".webp[Q=90]"));
  EXPECT_LT(mean_abs_diff(img, lossy), 15.0);
  const engine::Image rgba = make_photo(40, 30, 4);
  expect_same_pixels(rgba, decode_ok(save(rgba, ".webp[lossless]")));
}

TEST(Decode, GifFirstFrameOnly) {
  const Bytes gif = two_frame_gif();
  Result<ImageInfo> info = probe(gif, Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->width, 16);
  EXPECT_EQ(info->height, 8);
  const engine::Image out = decode_ok(gif);
  ASSERT_EQ(out.width, 16);
  ASSERT_EQ(out.height, 8);
  ASSERT_GE(out.channels, 3);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 16; ++x) {
      ASSERT_EQ(out.at(x, y)[0], 255);
      ASSERT_EQ(out.at(x, y)[2], 0);
    }
  }
}

TEST(Decode, Tiff) {
  const engine::Image img = make_photo(30, 20, 3);
  expect_same_pixels(img, decode_ok(save(img, ".tif")));
  const engine::Image rgba = make_photo(30, 20, 4);
  expect_same_pixels(rgba, decode_ok(save(rgba, ".tif[compression=lzw]")));
}

TEST(Decode, CmykJpegBecomesRgb) {
  ensure_vips();
  // Left half: no ink (white); right half: full black ink.
  std::vector<uint8_t> cmyk(32 * 16 * 4, 0);
  for (int y = 0; y < 16; ++y) {
    for (int x = 16; x < 32; ++x) cmyk[static_cast<size_t>((y * 32 + x) * 4 + 3)] = 255;
  }
  VipsPtr v = to_vips(cmyk.data(), 32, 16, 4, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_CMYK);
  const Bytes jpeg = save(v.get(), ".jpg[Q=95]");
  const engine::Image out = decode_ok(jpeg);
  ASSERT_EQ(out.channels, 3);
  EXPECT_GT(out.at(4, 8)[0], 200);
  EXPECT_GT(out.at(4, 8)[1], 200);
  EXPECT_LT(out.at(28, 8)[0], 90);
  EXPECT_LT(out.at(28, 8)[1], 90);
}

TEST(Decode, EmbeddedIccProfileIsImported) {
  ensure_vips();
  engine::Image img(16, 16, 3);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    img.pixels[i] = 230;
    img.pixels[i + 1] = 40;
    img.pixels[i + 2] = 30;
  }
  VipsPtr srgb = to_vips(img);
  VipsImage* p3 = nullptr;
  ASSERT_EQ(vips_icc_transform(srgb.get(), &p3, "p3", "input_profile", "srgb", nullptr), 0)
      << vips_error_buffer();
  VipsPtr p3_owned(p3);
  const Bytes png = save(p3_owned.get(), ".png");
  ASSERT_TRUE(find_chunk(png, "iCCP").has_value());
  // The stored numbers really are different from the sRGB ones...
  VipsImage* raw = nullptr;
  ASSERT_EQ(vips_pngload_buffer(const_cast<uint8_t*>(png.data()), png.size(), &raw, nullptr), 0);
  VipsPtr raw_owned(raw);
  double* values = nullptr;
  int n = 0;
  ASSERT_EQ(vips_getpoint(raw, &values, &n, 0, 0, nullptr), 0);
  const double stored_red = values[0];
  g_free(values);
  EXPECT_LT(stored_red, 222.0);
  // ...and decode brings them back to sRGB.
  const engine::Image out = decode_ok(png);
  EXPECT_NEAR(out.at(5, 5)[0], 230, 3);
  EXPECT_NEAR(out.at(5, 5)[1], 40, 3);
  EXPECT_NEAR(out.at(5, 5)[2], 30, 3);
}

TEST(Decode, ExifOrientation6IsApplied) {
  ensure_vips();
  // 40x20: left half red, right half blue. Orientation 6 = rotate 90 degrees clockwise to view,
  // so the viewer sees 20x40 with red on top.
  engine::Image img(40, 20, 3);
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 40; ++x) {
      img.at(x, y)[0] = x < 20 ? 255 : 0;
      img.at(x, y)[2] = x < 20 ? 0 : 255;
    }
  }
  VipsPtr v = to_vips(img);
  vips_image_set_int(v.get(), "orientation", 6);
  const Bytes jpeg = save(v.get(), ".jpg[Q=95]");

  Result<ImageInfo> info = probe(jpeg, Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->width, 20);
  EXPECT_EQ(info->height, 40);

  const engine::Image out = decode_ok(jpeg);
  ASSERT_EQ(out.width, 20);
  ASSERT_EQ(out.height, 40);
  EXPECT_GT(out.at(10, 5)[0], 200);
  EXPECT_LT(out.at(10, 5)[2], 60);
  EXPECT_LT(out.at(10, 35)[0], 60);
  EXPECT_GT(out.at(10, 35)[2], 200);
}

TEST(Decode, LargerExifRotatedJpegDecodesWithoutOutOfOrderRead) {
  ensure_vips();
  // Big enough for several strips of sequential decoding.
  const engine::Image img = make_photo(1200, 700, 3);
  for (int orientation : {3, 6, 8}) {
    VipsPtr v = to_vips(img);
    vips_image_set_int(v.get(), "orientation", orientation);
    const engine::Image out = decode_ok(save(v.get(), ".jpg"));
    const bool swapped = orientation >= 5;
    EXPECT_EQ(out.width, swapped ? 700 : 1200) << orientation;
    EXPECT_EQ(out.height, swapped ? 1200 : 700) << orientation;
  }
}

// ---------------------------------------------------------------------------------------------
// Bad input.

TEST(Decode, TruncatedFilesAreUndecodable) {
  const engine::Image img = make_photo(64, 64, 3);
  for (const char* suffix : {".png", ".jpg", ".webp", ".gif", ".tif"}) {
    Bytes bytes = save(img, suffix);
    bytes.resize(bytes.size() / 2);
    Result<engine::Image> out = decode(bytes, Limits{});
    ASSERT_FALSE(out.ok()) << suffix << " cut in half decoded as " << out->width << "x"
                           << out->height;
    EXPECT_EQ(out.error().kind, ErrorKind::kUndecodable) << suffix << ": " << out.error().message;
    EXPECT_FALSE(out.error().message.empty());
  }
}

TEST(Decode, CorruptMiddleNeverCrashes) {
  const engine::Image img = make_photo(64, 64, 3);
  for (const char* suffix : {".png", ".jpg", ".webp", ".gif", ".tif"}) {
    Bytes bytes = save(img, suffix);
    for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 32 && i < bytes.size(); ++i) {
      bytes[i] = static_cast<uint8_t>(bytes[i] ^ 0x5A);
    }
    Result<engine::Image> out = decode(bytes, Limits{});
    if (out.ok()) {
      EXPECT_EQ(out->pixels.size(), out->pixel_count() * static_cast<size_t>(out->channels));
    } else {
      EXPECT_EQ(out.error().kind, ErrorKind::kUndecodable) << suffix << ": " << out.error().message;
    }
  }
}

TEST(Decode, EmptyInputIsRejectedClearly) {
  Result<engine::Image> out = decode(Bytes{}, Limits{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(out.error().message.find("empty"), std::string::npos) << out.error().message;
  EXPECT_FALSE(probe(Bytes{}, Limits{}).ok());
}

TEST(Decode, TextIsUnsupported) {
  Result<engine::Image> out = decode(text_bytes("just some text, not an image\n"), Limits{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().kind, ErrorKind::kUnsupported);
}

TEST(Decode, HeaderOnlyIsUndecodable) {
  for (std::string_view magic :
       {"\xFF\xD8\xFF\xE0"sv, "\x89PNG\r\n\x1A\n"sv, "GIF89a"sv, "RIFF\0\0\0\0WEBP"sv, "II*\0"sv}) {
    Result<engine::Image> out = decode(text_bytes(magic), Limits{});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().kind, ErrorKind::kUndecodable) << out.error().message;
  }
}

TEST(Decode, BmpIsUnsupportedEvenThoughLibvipsCouldReadIt) {
  // A valid 2x2 24-bit BMP, which libvips would open through ImageMagick.
  Bytes bmp = {'B', 'M', 70, 0, 0,    0,    0, 0, 0,    0,    54, 0, 0, 0,  // file header
               40,  0,   0,  0, 2,    0,    0, 0, 2,    0,    0,  0, 1, 0, 24, 0, 0, 0, 0, 0,
               16,  0,   0,  0, 0x13, 0x0B, 0, 0, 0x13, 0x0B, 0,  0, 0, 0, 0,  0, 0, 0, 0, 0};
  for (int row = 0; row < 2; ++row) {
    bmp.insert(bmp.end(), {0, 0, 255, 255, 255, 255, 0, 0});  // 2 pixels + 2 bytes padding
  }
  ASSERT_EQ(bmp.size(), 70u);
  Result<engine::Image> out = decode(bmp, Limits{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().kind, ErrorKind::kUnsupported);
}

TEST(Init, UntrustedLoadersAreBlocked) {
  ensure_vips();
  const Bytes svg = text_bytes(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\">"
      "<rect width=\"4\" height=\"4\" fill=\"red\"/></svg>");
  VipsImage* out = nullptr;
  EXPECT_NE(vips_svgload_buffer(const_cast<uint8_t*>(svg.data()), svg.size(), &out, nullptr), 0);
  vips_error_clear();
  const Bytes png = save(make_photo(4, 4, 3), ".png");
  EXPECT_EQ(vips_pngload_buffer(const_cast<uint8_t*>(png.data()), png.size(), &out, nullptr), 0);
  g_object_unref(out);
}

TEST(Limits, HugePngHeaderIsTooLargeFromTheHeaderAlone) {
  const Bytes png = png_claiming(100000, 100000);
  Result<ImageInfo> info = probe(png, Limits{});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::kTooManyPixels) << info.error().message;
  EXPECT_NE(info.error().message.find("100000x100000"), std::string::npos);
  EXPECT_NE(info.error().message.find("50000000"), std::string::npos);
  Result<engine::Image> img = decode(png, Limits{});
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().kind, ErrorKind::kTooManyPixels);

  // The same construction within the limit is read fine as far as the header goes.
  Result<ImageInfo> small = probe(png_claiming(300, 200), Limits{});
  ASSERT_TRUE(small.ok()) << small.error().message;
  EXPECT_EQ(small->format, InputFormat::kPng);
  EXPECT_EQ(small->width, 300);
  EXPECT_EQ(small->height, 200);
}

TEST(Limits, PixelLimitIsConfigurable) {
  const Bytes png = save(make_photo(100, 100, 3), ".png");
  Limits limits;
  limits.max_pixels = 9999;
  Result<engine::Image> img = decode(png, limits);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().kind, ErrorKind::kTooManyPixels);
  limits.max_pixels = 10000;
  EXPECT_TRUE(decode(png, limits).ok());
}

TEST(Limits, TooManyBytes) {
  const Bytes png = save(make_photo(64, 64, 3), ".png");
  Limits limits;
  limits.max_bytes = png.size() - 1;
  Result<ImageInfo> info = probe(png, limits);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::kTooLarge);
  limits.max_bytes = png.size();
  EXPECT_TRUE(probe(png, limits).ok());
}

void expect_refused(const Bytes& file, const Limits& limits, ErrorKind kind,
                    std::string_view says) {
  ASSERT_FALSE(file.empty());
  Result<ImageInfo> info = probe(file, limits);
  ASSERT_FALSE(info.ok()) << "probe accepted it";
  EXPECT_EQ(info.error().kind, kind) << info.error().message;
  EXPECT_NE(info.error().message.find(says), std::string::npos) << info.error().message;
  Result<engine::Image> img = decode(file, limits);
  ASSERT_FALSE(img.ok()) << "decode accepted it";
  EXPECT_EQ(img.error().kind, kind) << img.error().message;
}

TEST(Limits, MoreThanFourBandsIsRefusedFromTheHeader) {
  ensure_vips();
  std::vector<uint8_t> samples(20 * 10 * 5, 100);
  VipsPtr v = to_vips(samples.data(), 20, 10, 5, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_MULTIBAND);
  expect_refused(save(v.get(), ".tif"), Limits{}, ErrorKind::kUnsupported, "5 channels");
  // The limit is configurable; four bands (RGBA) pass by default.
  Limits three;
  three.max_bands = 3;
  expect_refused(save(make_photo(20, 10, 4), ".png"), three, ErrorKind::kUnsupported, "4 channels");
  EXPECT_TRUE(decode(save(make_photo(20, 10, 4), ".png"), Limits{}).ok());
}

TEST(Limits, CmykWithAlphaMayHaveItsFifthBand) {
  ensure_vips();
  std::vector<uint8_t> samples(20 * 10 * 5, 0);
  for (size_t i = 4; i < samples.size(); i += 5) samples[i] = 255;  // no ink, opaque
  VipsPtr v = to_vips(samples.data(), 20, 10, 5, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_CMYK);
  const Bytes tiff = save(v.get(), ".tif");
  Result<engine::Image> img = decode(tiff, Limits{});
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->channels, 4);
  EXPECT_GT(img->at(3, 3)[0], 200);
}

TEST(Limits, SamplesDeeperThanSixteenBitsAreRefused) {
  ensure_vips();
  std::vector<float> floats(16 * 8 * 3, 0.5f);
  VipsPtr f = to_vips(floats.data(), 16, 8, 3, VIPS_FORMAT_FLOAT, VIPS_INTERPRETATION_scRGB);
  expect_refused(save(f.get(), ".tif"), Limits{}, ErrorKind::kUnsupported, "32-bit floating-point");
  std::vector<uint32_t> ints(16 * 8 * 3, 1u << 30);
  VipsPtr i = to_vips(ints.data(), 16, 8, 3, VIPS_FORMAT_UINT, VIPS_INTERPRETATION_RGB);
  expect_refused(save(i.get(), ".tif"), Limits{}, ErrorKind::kUnsupported, "32-bit integer");
  // 16 bits pass by default (Decode.Png16BitBecomes8Bit); a limit of 8 refuses them.
  std::vector<uint16_t> deep(16 * 8 * 3, 40000);
  VipsPtr d = to_vips(deep.data(), 16, 8, 3, VIPS_FORMAT_USHORT, VIPS_INTERPRETATION_RGB16);
  const Bytes png16 = save(d.get(), ".png");
  EXPECT_TRUE(decode(png16, Limits{}).ok());
  Limits eight;
  eight.max_bits_per_sample = 8;
  expect_refused(png16, eight, ErrorKind::kUnsupported, "16-bit integer");
}

TEST(Limits, FramesPastTheLimitAreRefusedAndOnlyTheFirstIsEverDecoded) {
  const Bytes gif = animated_gif(100);
  // A GIF's frames count against the animation limits (animation_test.cc has more), not against
  // max_pages, which is for TIFF.
  Limits fifty;
  fifty.max_animation_frames = 50;
  expect_refused(gif, fifty, ErrorKind::kTooManyPixels, "100 frames");
  Limits one_page;
  one_page.max_pages = 1;
  EXPECT_TRUE(probe(gif, one_page).ok());
  const engine::Image first = decode_ok(gif);  // the default allows 300
  ASSERT_EQ(first.width, 16);
  ASSERT_EQ(first.height, 8) << "one frame, not a strip of all of them";
  EXPECT_EQ(first.at(5, 5)[0], 255);
  EXPECT_EQ(first.at(5, 5)[2], 0);

  // TIFF pages likewise.
  ensure_vips();
  VipsPtr one = to_vips(make_photo(16, 8, 3));
  std::vector<VipsImage*> pages(3, one.get());
  VipsImage* joined = nullptr;
  ASSERT_EQ(vips_arrayjoin(pages.data(), &joined, 3, "across", 1, nullptr), 0);
  VipsPtr strip(joined);
  VipsImage* tagged = nullptr;
  ASSERT_EQ(vips_copy(strip.get(), &tagged, nullptr), 0);
  VipsPtr paged(tagged);
  vips_image_set_int(paged.get(), "page-height", 8);
  const Bytes tiff = save(paged.get(), ".tif");
  Limits two;
  two.max_pages = 2;
  expect_refused(tiff, two, ErrorKind::kUnsupported, "3 pages");
  const engine::Image page = decode_ok(tiff);
  EXPECT_EQ(page.height, 8);
}

TEST(Limits, DecodingPastItsTimeLimitIsStopped) {
  const Bytes png = save(make_photo(2000, 1500, 3), ".png");
  Limits quick;
  quick.max_decode_time = std::chrono::milliseconds{1};
  const auto started = std::chrono::steady_clock::now();
  Result<engine::Image> img = decode(png, quick);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().kind, ErrorKind::kUndecodable);
  EXPECT_NE(img.error().message.find("took longer than the limit of 1 ms"), std::string::npos)
      << img.error().message;
  const auto stopped = std::chrono::steady_clock::now() - started;
  // The same file decodes within the default limit, and with none.
  const auto full_start = std::chrono::steady_clock::now();
  EXPECT_TRUE(decode(png, Limits{}).ok());
  const auto full = std::chrono::steady_clock::now() - full_start;
  EXPECT_LT(stopped, full) << "stopped before the end";
  Limits unlimited;
  unlimited.max_decode_time = std::chrono::milliseconds{0};
  EXPECT_TRUE(decode(png, unlimited).ok());
  // Probing reads headers only: no time limit applies.
  EXPECT_TRUE(probe(png, quick).ok());
}

// A consumer that gives rows back holds the decoder to a window ahead of it, and lets it finish.
TEST(DecodeJob, KeepsWithinTheConsumersWindow) {
  const engine::Image photo = make_photo(64, 1000, 3);
  const Bytes png = save(photo, ".png");
  auto opened = DecodeJob::open(png, Limits{});
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  DecodeJob& job = **opened;
  constexpr int kWindow = 40;
  constexpr int kStrip = 16;  // the decoder's step (read_rows)
  job.keep_within(kWindow);
  Status decoded;
  std::thread decoder([&] { decoded = job.run(); });
  job.wait_rows(kWindow);
  // Unthrottled, the decoder would have the 1000 rows long before this.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LE(job.rows(), kWindow + kStrip);
  int consumed = 0;
  int most_ahead = 0;
  while (consumed < photo.height) {
    const int next = std::min(photo.height, consumed + 7);
    job.wait_rows(next);
    most_ahead = std::max(most_ahead, job.rows() - consumed);
    consumed = next;
    job.consumed(consumed);
  }
  decoder.join();
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_LE(most_ahead, kWindow + kStrip);
  EXPECT_EQ(job.image().pixels, photo.pixels);
}

// The decoder's waits for its consumer do not count against the decode time limit.
TEST(DecodeJob, WaitingForTheConsumerIsNotDecodingTime) {
  const engine::Image photo = make_photo(64, 400, 3);
  const Bytes png = save(photo, ".png");
  Limits limits;
  limits.max_decode_time = std::chrono::milliseconds(400);
  auto opened = DecodeJob::open(png, limits);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  DecodeJob& job = **opened;
  job.keep_within(20);
  Status decoded;
  std::thread decoder([&] { decoded = job.run(); });
  // A slow consumer: 40 steps of 25 ms, a second in all, well past the limit.
  for (int consumed = 10; consumed <= photo.height; consumed += 10) {
    job.wait_rows(consumed);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    job.consumed(consumed);
  }
  decoder.join();
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(job.image().pixels, photo.pixels);
}

// A consumer that stops early lifts the limit with consumed(height): the decoder finishes.
TEST(DecodeJob, ConsumedAllLiftsTheWindow) {
  const Bytes png = save(make_photo(64, 600, 3), ".png");
  auto opened = DecodeJob::open(png, Limits{});
  ASSERT_TRUE(opened.ok());
  DecodeJob& job = **opened;
  job.keep_within(10);
  Status decoded;
  std::thread decoder([&] { decoded = job.run(); });
  job.wait_rows(10);
  job.consumed(job.image().height);
  decoder.join();
  EXPECT_TRUE(decoded.ok());
  EXPECT_EQ(job.rows(), 600);
}

// ---------------------------------------------------------------------------------------------
// Encoding.

// RowEncoder fed rows as they become final gives encode()'s bytes: indexed and truecolour PNG,
// GIF, WebP, with and without alpha, in uneven steps.
TEST(RowEncoder, GivesEncodesBytes) {
  for (const int channels : {3, 4}) {
    for (const int colours : {2, 16, 200, 0}) {  // 0: a photo, thousands of colours
      const engine::Image img = colours == 0 ? make_photo(57, 41, channels)
                                             : make_palette_image(57, 41, channels, colours);
      for (const OutputFormat format :
           {OutputFormat::kPng, OutputFormat::kGif, OutputFormat::kWebp}) {
        const Result<std::vector<uint8_t>> whole = encode(img, format);
        RowEncoder encoder(img, format);
        for (int rows : {1, 7, 7, 20, 40}) encoder.add_rows(img, rows);
        const Result<std::vector<uint8_t>> stepped = encoder.finish(img);
        ASSERT_EQ(whole.ok(), stepped.ok()) << channels << " " << colours;
        if (whole.ok()) {
          EXPECT_EQ(*whole, *stepped) << channels << " channels, " << colours << " colours";
        } else {
          EXPECT_EQ(whole.error().message, stepped.error().message);
        }
      }
    }
  }
  const engine::Image small = make_photo(8, 8, 3);
  RowEncoder encoder(small, OutputFormat::kPng);
  EXPECT_EQ(encoder.finish(make_photo(8, 9, 3)).error().kind, ErrorKind::kInternal)
      << "an image of another size";
}

// A PNG large enough for its image data to be compressed while rows still come (two pieces or
// more, internal::ZlibStream) gives encode()'s bytes: with colours enough for 8 bits from the
// first row; with 4 bits at first (too little data to start) and 8 once more colours come; and
// given up for truecolour when a 257th colour comes after a piece may have been compressed.
TEST(RowEncoder, CompressingAsRowsComeGivesEncodesBytes) {
  const int width = 4200, height = 2100;
  // Rows from `from` on have `colours` colours (index i of the row's pixels: colour i % colours).
  auto paint = [](engine::Image& img, int from, int colours) {
    for (int y = from; y < img.height; ++y) {
      for (int x = 0; x < img.width; ++x) {
        const int c = (x + y) % colours;
        uint8_t* p = img.row(y) + static_cast<size_t>(x) * 3;
        p[0] = static_cast<uint8_t>(c % 256);
        p[1] = static_cast<uint8_t>((c * 7 + c / 256) % 256);
        p[2] = static_cast<uint8_t>(255 - c % 256);
      }
    }
  };
  struct Case {
    const char* what;
    int first_colours, later_from, later_colours;
  };
  const Case cases[] = {{"200 colours", 200, height, 0},
                        {"10 colours, then 200", 10, 300, 200},
                        {"200 colours, then 300", 200, 1200, 300}};
  for (const Case& c : cases) {
    engine::Image img(width, height, 3);
    paint(img, 0, c.first_colours);
    if (c.later_from < height) paint(img, c.later_from, c.later_colours);
    const Result<std::vector<uint8_t>> whole = encode(img, OutputFormat::kPng);
    ASSERT_TRUE(whole.ok()) << c.what;
    RowEncoder encoder(img, OutputFormat::kPng);
    for (int rows = 16; rows < height; rows += 16 + rows % 97) encoder.add_rows(img, rows);
    const Result<std::vector<uint8_t>> stepped = encoder.finish(img);
    ASSERT_TRUE(stepped.ok()) << c.what;
    EXPECT_TRUE(*whole == *stepped) << c.what;
    EXPECT_EQ(parse_ihdr(*stepped).color_type, c.later_colours > 256 ? 2 : 3) << c.what;
  }
}

TEST(EncodePng, IndexedAtTheSmallestBitDepth) {
  const std::array<std::pair<int, int>, 7> cases = {
      {{1, 1}, {2, 1}, {3, 2}, {5, 4}, {16, 4}, {17, 8}, {256, 8}}};
  for (auto [colors, depth] : cases) {
    const engine::Image img = make_palette_image(37, 23, 3, colors);
    const Bytes png = encode_ok(img, OutputFormat::kPng);
    const PngHeader h = parse_ihdr(png);
    EXPECT_EQ(h.width, 37u);
    EXPECT_EQ(h.height, 23u);
    EXPECT_EQ(h.color_type, 3) << colors << " colours";
    EXPECT_EQ(h.bit_depth, depth) << colors << " colours";
    std::optional<Bytes> plte = find_chunk(png, "PLTE");
    ASSERT_TRUE(plte.has_value());
    EXPECT_EQ(plte->size(), static_cast<size_t>(colors) * 3);
    EXPECT_FALSE(find_chunk(png, "tRNS").has_value());
    expect_same_pixels(img, decode_ok(png));
  }
}

TEST(EncodePng, MoreThan256ColoursIsTruecolour) {
  for (int channels : {3, 4}) {
    const engine::Image img = make_palette_image(40, 30, channels, 257);
    const Bytes png = encode_ok(img, OutputFormat::kPng);
    const PngHeader h = parse_ihdr(png);
    EXPECT_EQ(h.color_type, channels == 3 ? 2 : 6);
    EXPECT_EQ(h.bit_depth, 8);
    if (channels == 3) {
      expect_same_pixels(img, decode_ok(png));
    }
  }
  const engine::Image photo = make_photo(50, 40, 4);
  expect_same_pixels(photo, decode_ok(encode_ok(photo, OutputFormat::kPng)));
}

// `img` as an indexed PNG gives it back: every fully transparent pixel as (0, 0, 0, 0).
engine::Image transparent_cleared(engine::Image img) {
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    if (img.pixels[i * 4 + 3] == 0) std::fill_n(&img.pixels[i * 4], 4, uint8_t{0});
  }
  return img;
}

TEST(EncodePng, BinaryAlphaRoundTrips) {
  engine::Image img = make_palette_image(21, 13, 4, 6);
  for (size_t i = 0; i < img.pixel_count(); i += 3) img.pixels[i * 4 + 3] = 0;
  const Bytes png = encode_ok(img, OutputFormat::kPng);
  EXPECT_EQ(parse_ihdr(png).color_type, 3);
  std::optional<Bytes> trns = find_chunk(png, "tRNS");
  ASSERT_TRUE(trns.has_value());
  EXPECT_EQ(*trns, Bytes{0}) << "one transparent entry, first";
  expect_same_pixels(transparent_cleared(img), decode_ok(png));
}

TEST(EncodePng, PartialAlphaRoundTrips) {
  engine::Image img = make_palette_image(21, 13, 4, 3);
  const uint8_t alphas[] = {0, 64, 128, 200, 255};
  for (size_t i = 0; i < img.pixel_count(); ++i) img.pixels[i * 4 + 3] = alphas[i % 5];
  const Bytes png = encode_ok(img, OutputFormat::kPng);
  EXPECT_EQ(parse_ihdr(png).color_type, 3);
  std::optional<Bytes> trns = find_chunk(png, "tRNS");
  ASSERT_TRUE(trns.has_value());
  // Translucent entries first: tRNS stops before the opaque ones. 3 colours at alphas 64, 128
  // and 200, and one entry for alpha 0.
  EXPECT_EQ(trns->size(), 10u);
  expect_same_pixels(transparent_cleared(img), decode_ok(png));
}

// However many colours hide under alpha 0, they are one palette entry: 255 opaque colours and
// transparency of 200 colours still fit an indexed PNG.
TEST(EncodePng, FullyTransparentPixelsShareOneEntry) {
  engine::Image img = make_palette_image(40, 30, 4, 255);
  engine::Image hidden = make_palette_image(40, 30, 4, 200);
  for (size_t i = 0; i < img.pixel_count(); i += 2) {
    std::copy_n(&hidden.pixels[i * 4], 3, &img.pixels[i * 4]);
    img.pixels[i * 4 + 3] = 0;
  }
  const Bytes png = encode_ok(img, OutputFormat::kPng);
  const PngHeader h = parse_ihdr(png);
  EXPECT_EQ(h.color_type, 3);
  EXPECT_EQ(h.bit_depth, 8);
  EXPECT_EQ(find_chunk(png, "tRNS"), Bytes{0});
  expect_same_pixels(transparent_cleared(img), decode_ok(png));
}

TEST(EncodePng, OpaqueRgbaHasNoTrns) {
  const engine::Image img = make_palette_image(10, 10, 4, 8);
  const Bytes png = encode_ok(img, OutputFormat::kPng);
  EXPECT_FALSE(find_chunk(png, "tRNS").has_value());
  const engine::Image out = decode_ok(png);
  ASSERT_EQ(out.channels, 3);  // no alpha in the file: decodes as RGB
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    ASSERT_EQ(std::memcmp(&img.pixels[i * 4], &out.pixels[i * 3], 3), 0);
  }
}

TEST(EncodePng, IsDeterministic) {
  const engine::Image img = make_palette_image(64, 64, 3, 16);
  EXPECT_EQ(encode_ok(img, OutputFormat::kPng), encode_ok(img, OutputFormat::kPng));
  const engine::Image photo = make_photo(64, 64, 3);
  EXPECT_EQ(encode_ok(photo, OutputFormat::kPng), encode_ok(photo, OutputFormat::kPng));
}

// The effort changes the compression only: the same pixels, indexed and truecolour, and a
// RowEncoder with an effort gives encode()'s bytes with that effort.
TEST(EncodePng, EffortChangesOnlyTheCompression) {
  for (const engine::Image& img : {make_palette_image(300, 200, 3, 8), make_photo(120, 90, 3)}) {
    Result<std::vector<uint8_t>> patterned = encode(img, OutputFormat::kPng, PngEffort::kPatterned);
    Result<std::vector<uint8_t>> noisy = encode(img, OutputFormat::kPng, PngEffort::kNoisy);
    ASSERT_TRUE(patterned.ok() && noisy.ok());
    const engine::Image a = decode_ok(*patterned);
    const engine::Image b = decode_ok(*noisy);
    EXPECT_EQ(a.pixels, img.pixels);
    EXPECT_EQ(b.pixels, img.pixels);
    RowEncoder rows(img, OutputFormat::kPng, PngEffort::kNoisy);
    rows.add_rows(img, img.height);
    Result<std::vector<uint8_t>> streamed = rows.finish(img);
    ASSERT_TRUE(streamed.ok());
    EXPECT_EQ(*streamed, *noisy);
  }
}

TEST(EncodeGif, RoundTripKeepsColours) {
  for (int colors : {2, 7, 200, 256}) {
    const engine::Image img = make_palette_image(31, 17, 3, colors);
    const Bytes gif = encode_ok(img, OutputFormat::kGif);
    ASSERT_EQ(sniff(gif), InputFormat::kGif);
    const engine::Image out = decode_ok(gif);
    ASSERT_EQ(out.width, 31);
    ASSERT_EQ(out.height, 17);
    for (size_t i = 0; i < img.pixel_count(); ++i) {
      ASSERT_EQ(
          std::memcmp(&img.pixels[i * 3], &out.pixels[i * static_cast<size_t>(out.channels)], 3), 0)
          << colors << " colours, pixel " << i;
    }
  }
}

TEST(EncodeGif, AlphaIsOneBit) {
  engine::Image img = make_palette_image(20, 10, 4, 5);
  const uint8_t alphas[] = {0, 100, 127, 128, 255};
  for (size_t i = 0; i < img.pixel_count(); ++i) img.pixels[i * 4 + 3] = alphas[i % 5];
  const engine::Image out = decode_ok(encode_ok(img, OutputFormat::kGif));
  ASSERT_EQ(out.channels, 4);
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    const uint8_t* in = &img.pixels[i * 4];
    const uint8_t* got = &out.pixels[i * 4];
    if (in[3] < 128) {
      ASSERT_EQ(got[3], 0) << i;
    } else {
      ASSERT_EQ(got[3], 255) << i;
      ASSERT_EQ(std::memcmp(in, got, 3), 0) << i;
    }
  }
}

TEST(EncodeGif, TooManyColours) {
  const engine::Image img = make_palette_image(40, 30, 3, 257);
  Result<Bytes> gif = encode(img, OutputFormat::kGif);
  ASSERT_FALSE(gif.ok());
  EXPECT_EQ(gif.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(gif.error().message, "GIF holds at most 256 colours; use PNG or WebP");
  // 255 opaque colours plus transparency fit; 256 plus transparency do not.
  engine::Image rgba = make_palette_image(40, 30, 4, 256);
  rgba.pixels[3] = 0;
  EXPECT_FALSE(encode(rgba, OutputFormat::kGif).ok());
}

TEST(EncodeWebp, LosslessRoundTrip) {
  const engine::Image rgb = make_photo(45, 31, 3);
  const Bytes webp = encode_ok(rgb, OutputFormat::kWebp);
  ASSERT_EQ(sniff(webp), InputFormat::kWebp);
  expect_same_pixels(rgb, decode_ok(webp));

  engine::Image rgba = make_palette_image(45, 31, 4, 9);
  const uint8_t alphas[] = {0, 1, 128, 254, 255};
  for (size_t i = 0; i < rgba.pixel_count(); ++i) rgba.pixels[i * 4 + 3] = alphas[i % 5];
  expect_same_pixels(rgba, decode_ok(encode_ok(rgba, OutputFormat::kWebp)));
}

TEST(Encode, RejectsInvalidImages) {
  EXPECT_EQ(encode(engine::Image(), OutputFormat::kPng).error().kind, ErrorKind::kInvalidArgument);
  engine::Image wrong(4, 4, 3);
  wrong.pixels.resize(5);
  EXPECT_EQ(encode(wrong, OutputFormat::kGif).error().kind, ErrorKind::kInvalidArgument);
  engine::Image grey(4, 4, 1);
  EXPECT_EQ(encode(grey, OutputFormat::kWebp).error().kind, ErrorKind::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Resizing.

TEST(Resize, KeepsAspectRatio) {
  const engine::Image img = make_photo(200, 100, 3);
  Result<engine::Image> half = resize(img, 100, 0);
  ASSERT_TRUE(half.ok()) << half.error().message;
  EXPECT_EQ(half->width, 100);
  EXPECT_EQ(half->height, 50);
  EXPECT_EQ(half->channels, 3);
  Result<engine::Image> by_height = resize(img, 0, 25);
  ASSERT_TRUE(by_height.ok());
  EXPECT_EQ(by_height->width, 50);
  EXPECT_EQ(by_height->height, 25);
  Result<engine::Image> tiny = resize(img, 0, 1);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->width, 2);
  EXPECT_EQ(tiny->height, 1);
  Result<engine::Image> thin = resize(make_photo(1000, 3, 3), 10, 0);
  ASSERT_TRUE(thin.ok());
  EXPECT_EQ(thin->height, 1);  // clamped, never 0
}

TEST(Resize, ExactSizesUpAndDown) {
  const engine::Image img = make_photo(97, 61, 3);
  for (auto [w, h] : {std::pair{13, 7}, std::pair{300, 200}, std::pair{97, 30}, std::pair{1, 1},
                      std::pair{61, 97}}) {
    Result<engine::Image> out = resize(img, w, h);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(out->width, w);
    EXPECT_EQ(out->height, h);
    EXPECT_EQ(out->pixels.size(), static_cast<size_t>(w * h * 3));
  }
}

TEST(Resize, BothZeroIsUnchanged) {
  const engine::Image img = make_photo(20, 10, 4);
  Result<engine::Image> out = resize(img, 0, 0);
  ASSERT_TRUE(out.ok());
  expect_same_pixels(img, *out);
}

TEST(Resize, FlatColourStaysFlat) {
  for (int channels : {3, 4}) {
    engine::Image img(64, 48, channels);
    for (size_t i = 0; i < img.pixels.size(); ++i) {
      const size_t c = i % static_cast<size_t>(channels);
      img.pixels[i] = static_cast<uint8_t>(c == 3 ? 200 : 90 + c);
    }
    for (auto [w, h] : {std::pair{20, 15}, std::pair{150, 100}}) {
      Result<engine::Image> out = resize(img, w, h);
      ASSERT_TRUE(out.ok());
      ASSERT_EQ(out->channels, channels);
      for (size_t i = 0; i < out->pixels.size(); ++i) {
        ASSERT_NEAR(out->pixels[i], img.pixels[i % static_cast<size_t>(channels)], 1)
            << channels << " channels, sample " << i;
      }
    }
  }
}

TEST(Resize, TransparentPixelsLendNoColour) {
  // Left half: transparent red; right half: opaque blue.
  engine::Image img(64, 32, 4);
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = x < 32 ? 255 : 0;
      p[2] = x < 32 ? 0 : 255;
      p[3] = x < 32 ? 0 : 255;
    }
  }
  Result<engine::Image> out = resize(img, 21, 11);
  ASSERT_TRUE(out.ok());
  for (int y = 0; y < out->height; ++y) {
    for (int x = 0; x < out->width; ++x) {
      const uint8_t* p = out->at(x, y);
      if (p[3] >= 16) {
        EXPECT_LT(p[0], 24) << x << "," << y;
      }
    }
  }
}

TEST(Thumbnail, FitsTheBoxAsWebpKeepingTheShape) {
  for (const char* suffix : {".jpg", ".png", ".tif", ".gif", ".webp"}) {
    const Bytes bytes = save(make_photo(1000, 500, 3), suffix);
    Result<Bytes> thumb = thumbnail(bytes, 400, Limits{});
    ASSERT_TRUE(thumb.ok()) << suffix << ": " << thumb.error().message;
    EXPECT_EQ(sniff(*thumb), InputFormat::kWebp) << suffix;
    const engine::Image small = decode_ok(*thumb);
    EXPECT_EQ(small.width, 400) << suffix;
    EXPECT_EQ(small.height, 200) << suffix;
    EXPECT_LT(thumb->size(), bytes.size()) << suffix;
  }
}

TEST(Thumbnail, NeverEnlargesAndKeepsAlpha) {
  const engine::Image small =
      decode_ok(thumbnail(save(make_photo(120, 60, 4), ".png"), 400, Limits{}).value());
  EXPECT_EQ(small.width, 120);
  EXPECT_EQ(small.height, 60);
  EXPECT_EQ(small.channels, 4);
}

TEST(Thumbnail, SameGateAsDecode) {
  EXPECT_EQ(thumbnail(text_bytes("not an image"), 100, Limits{}).error().kind,
            ErrorKind::kUnsupported);
  const Bytes png = save(make_photo(100, 100, 3), ".png");
  Limits limits;
  limits.max_pixels = 1000;
  EXPECT_EQ(thumbnail(png, 100, limits).error().kind, ErrorKind::kTooManyPixels);
  Result<Bytes> cut = thumbnail(Bytes(png.begin(), png.begin() + png.size() / 2), 50, Limits{});
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().kind, ErrorKind::kUndecodable);
  EXPECT_EQ(thumbnail(png, 0, Limits{}).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(thumbnail(png, kMaxThumbnailBox + 1, Limits{}).error().kind,
            ErrorKind::kInvalidArgument);
}

TEST(Resize, BadArguments) {
  const engine::Image img = make_photo(20, 10, 3);
  EXPECT_EQ(resize(img, -1, 5).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(resize(engine::Image(), 5, 5).error().kind, ErrorKind::kInvalidArgument);
  Limits limits;
  limits.max_pixels = 1000;
  EXPECT_EQ(resize(img, 100, 100, limits).error().kind, ErrorKind::kTooManyPixels);
}

// ---------------------------------------------------------------------------------------------
// Robustness.

// Random damage to valid files: every decode returns a value or an error, never crashes, and a
// value is always a whole image. Runs under AddressSanitizer in CI.
TEST(Robustness, MutatedFilesNeverCrash) {
  const engine::Image img = make_photo(48, 40, 3);
  engine::Image few = make_palette_image(48, 40, 4, 12);
  few.pixels[3] = 0;
  const std::vector<std::pair<std::string, Bytes>> seeds = {
      {"png", save(img, ".png")},
      {"indexed png", encode_ok(few, OutputFormat::kPng)},
      {"jpeg", save(img, ".jpg")},
      {"gif", encode_ok(few, OutputFormat::kGif)},
      {"webp", save(img, ".webp[lossless]")},
      {"lossy webp", save(img, ".webp")},
      {"tiff", save(img, ".tif[compression=deflate]")},
  };
  std::mt19937 rng(20240611);
  int decoded = 0;
  int rejected = 0;
  for (const auto& [name, seed] : seeds) {
    ASSERT_FALSE(seed.empty()) << name;
    for (int round = 0; round < 200; ++round) {
      Bytes bytes = seed;
      auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
      const int edits = 1 + static_cast<int>(pick(4));
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        switch (pick(4)) {
          case 0:  // flip one byte
            bytes[pick(bytes.size())] ^= static_cast<uint8_t>(1 + pick(255));
            break;
          case 1:  // overwrite a short run
            for (size_t i = pick(bytes.size()), end = i + 1 + pick(16); i < end && i < bytes.size();
                 ++i) {
              bytes[i] = static_cast<uint8_t>(pick(256));
            }
            break;
          case 2:  // truncate
            bytes.resize(pick(bytes.size()) + 1);
            break;
          default:  // insert a few bytes
            bytes.insert(bytes.begin() + static_cast<ptrdiff_t>(pick(bytes.size())), pick(8) + 1,
                         static_cast<uint8_t>(pick(256)));
            break;
        }
      }
      Result<engine::Image> out = decode(bytes, Limits{});
      if (out.ok()) {
        ++decoded;
        ASSERT_GT(out->width, 0);
        ASSERT_TRUE(out->channels == 3 || out->channels == 4);
        ASSERT_EQ(out->pixels.size(), out->pixel_count() * static_cast<size_t>(out->channels));
      } else {
        ++rejected;
        ASSERT_FALSE(out.error().message.empty());
        ASSERT_NE(out.error().kind, ErrorKind::kInternal) << name << ": " << out.error().message;
      }
    }
  }
  EXPECT_EQ(decoded + rejected, static_cast<int>(seeds.size()) * 200);
  std::cout << "mutations: " << decoded << " decoded, " << rejected << " rejected\n";
}

// verify() is decode()'s verdict for less work: the same answer on every file decode() accepts
// or refuses, mutated ones included, and probe()'s dimensions on success.
TEST(Verify, AgreesWithDecodeOnMutatedFiles) {
  const engine::Image img = make_photo(96, 72, 3);
  engine::Image few = make_palette_image(48, 40, 4, 12);
  few.pixels[3] = 0;
  const std::vector<std::pair<std::string, Bytes>> seeds = {
      {"jpeg", save(img, ".jpg")},
      {"progressive jpeg", save(img, ".jpg[interlace]")},
      {"4:4:4 jpeg", save(img, ".jpg[Q=95,subsample-mode=off]")},
      {"png", save(img, ".png")},
      {"gif", encode_ok(few, OutputFormat::kGif)},
      {"webp", save(img, ".webp")},
      {"tiff", save(img, ".tif[compression=deflate]")},
  };
  std::mt19937 rng(20261205);
  int accepted = 0;
  int refused = 0;
  for (const auto& [name, seed] : seeds) {
    ASSERT_FALSE(seed.empty()) << name;
    for (int round = 0; round < 150; ++round) {
      Bytes bytes = seed;
      auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
      if (round > 0) {  // round 0: the file itself
        switch (pick(3)) {
          case 0:  // flip a few bytes past the header
            for (int e = 0; e < 1 + static_cast<int>(pick(3)); ++e) {
              bytes[bytes.size() / 4 + pick(bytes.size() * 3 / 4)] ^=
                  static_cast<uint8_t>(1 + pick(255));
            }
            break;
          case 1:  // truncate
            bytes.resize(bytes.size() / 4 + pick(bytes.size() * 3 / 4));
            break;
          default:  // overwrite a short run anywhere
            for (size_t i = pick(bytes.size()), end = i + 1 + pick(16); i < end && i < bytes.size();
                 ++i) {
              bytes[i] = static_cast<uint8_t>(pick(256));
            }
            break;
        }
      }
      const Result<engine::Image> decoded = decode(bytes, Limits{});
      const Result<ImageInfo> verified = verify(bytes, Limits{});
      ASSERT_EQ(verified.ok(), decoded.ok())
          << name << " round " << round << ": decode "
          << (decoded.ok() ? "accepted" : decoded.error().message) << ", verify "
          << (verified.ok() ? "accepted" : verified.error().message);
      if (decoded.ok()) {
        ++accepted;
        EXPECT_EQ(verified->width, decoded->width) << name;
        EXPECT_EQ(verified->height, decoded->height) << name;
      } else {
        ++refused;
        EXPECT_EQ(verified.error().kind, decoded.error().kind)
            << name << ": " << verified.error().message << " / " << decoded.error().message;
      }
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, 50);
  EXPECT_GT(refused, 50);
}

TEST(Verify, OrientedAndLimitedAsDecode) {
  ensure_vips();
  // Displayed dimensions (EXIF orientation 6 swaps them), as probe() and decode() give.
  VipsPtr v = to_vips(make_photo(120, 70, 3));
  vips_image_set_int(v.get(), "orientation", 6);
  const Bytes oriented = save(v.get(), ".jpg[Q=95]");
  Result<ImageInfo> info = verify(oriented, Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->width, 70);
  EXPECT_EQ(info->height, 120);
  // Tiny JPEGs, sides shorter than the 1/8 shrink included (libvips would make them 0 pixels).
  for (const auto& [w, h] : {std::pair{1, 1}, {1, 9}, {9, 1}, {3, 5}, {7, 7}, {8, 8}, {15, 2}}) {
    const Bytes tiny = save(make_photo(w, h, 3), ".jpg");
    Result<ImageInfo> small = verify(tiny, Limits{});
    ASSERT_TRUE(small.ok()) << w << "x" << h << ": " << small.error().message;
    EXPECT_EQ(small->width, w);
    EXPECT_EQ(small->height, h);
  }
  // The pixel limit from the header, and the time limit while reading.
  Limits few_pixels;
  few_pixels.max_pixels = 1000;
  EXPECT_EQ(verify(oriented, few_pixels).error().kind, ErrorKind::kTooManyPixels);
  const Bytes png = save(make_photo(2000, 1500, 3), ".png");
  Limits quick;
  quick.max_decode_time = std::chrono::milliseconds{1};
  Result<ImageInfo> slow = verify(png, quick);
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.error().message.find("took longer than the limit of 1 ms"), std::string::npos)
      << slow.error().message;
}

TEST(Robustness, ConcurrentCalls) {
  const engine::Image img = make_photo(120, 80, 3);
  const Bytes jpeg = save(img, ".jpg");
  const Bytes png = save(img, ".png");
  Bytes broken = png;
  broken.resize(broken.size() / 2);
  const engine::Image few = make_palette_image(50, 50, 3, 16);
  const Bytes expected_png = encode_ok(few, OutputFormat::kPng);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (!decode(jpeg, Limits{}).ok()) ++failures[static_cast<size_t>(t)];
        if (!decode(png, Limits{}).ok()) ++failures[static_cast<size_t>(t)];
        if (decode(broken, Limits{}).ok()) ++failures[static_cast<size_t>(t)];
        Result<Bytes> again = encode(few, OutputFormat::kPng);
        if (!again.ok() || *again != expected_png) ++failures[static_cast<size_t>(t)];
        if (!resize(img, 60, 0).ok()) ++failures[static_cast<size_t>(t)];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace dither::imaging
