// Tests for animations: decode_animation(), encode_animation(), and the animation limits in
// probe() and verify(). Every input is made here, with giflib, libwebp's WebPAnimEncoder and
// muxer, or by hand: the repository holds no image files.
#include <gif_lib.h>
#include <gtest/gtest.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "imaging/codec.h"

namespace dither::imaging {
namespace {

using Bytes = std::vector<uint8_t>;

// libvips warns on stderr about the broken inputs these tests feed it (codec_test.cc does too).
[[maybe_unused]] const bool kQuietVips = setenv("VIPS_WARNING", "0", 0) == 0;

// ---------------------------------------------------------------------------------------------
// Helpers: pictures and animations.

struct Rgba8 {
  uint8_t r, g, b, a;
};

engine::Image filled(int width, int height, int channels, Rgba8 c) {
  engine::Image img(width, height, channels);
  for (size_t i = 0; i < img.pixel_count(); ++i) {
    uint8_t* p = img.pixels.data() + i * static_cast<size_t>(channels);
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
    if (channels == 4) p[3] = c.a;
  }
  return img;
}

void paint(engine::Image& img, int left, int top, int width, int height, Rgba8 c) {
  for (int y = top; y < top + height; ++y) {
    for (int x = left; x < left + width; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
      if (img.channels == 4) p[3] = c.a;
    }
  }
}

// An animation with what an encoder must get right: a square moving over a patterned
// background (only part of each frame changes), a frame identical to the one before, and with
// alpha a transparent hole that moves (pixels turn transparent after being opaque, and back).
// `hidden` gives the pixels under alpha 0 colours of their own, `translucent` adds alpha 128.
Animation moving_square(int width, int height, int frames, int channels, bool hidden = false,
                        bool translucent = false) {
  Animation animation;
  for (int f = 0; f < frames; ++f) {
    const int shown = f == 3 ? 2 : f;  // frame 3 repeats frame 2
    engine::Image img(width, height, channels);
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        uint8_t* p = img.at(x, y);
        const int pattern = (x / 3 + y / 2) % 4;
        p[0] = static_cast<uint8_t>(40 + 60 * pattern);
        p[1] = static_cast<uint8_t>(200 - 50 * pattern);
        p[2] = static_cast<uint8_t>(pattern * 17);
        if (channels == 4) p[3] = 255;
      }
    }
    const int sx = (shown * 3) % std::max(1, width - 4);
    const int sy = (shown * 2) % std::max(1, height - 4);
    paint(img, sx, sy, 4, 4, Rgba8{255, static_cast<uint8_t>(shown % 3 * 100), 10, 255});
    if (channels == 4) {
      const int hx = width - 3 - (shown * 2) % std::max(1, width - 3);
      const Rgba8 hole =
          hidden ? Rgba8{static_cast<uint8_t>(7 * shown), 99, 3, 0} : Rgba8{0, 0, 0, 0};
      paint(img, hx, height - 3, 3, 2, hole);
      if (translucent) paint(img, (shown * 5) % (width - 1), 0, 2, 1, Rgba8{9, 8, 7, 128});
    }
    animation.frames.push_back(std::move(img));
    animation.delays_ms.push_back(f % 3 == 1 ? 0 : 10 * (f + 4));
  }
  animation.loop = 3;
  return animation;
}

// What a GIF keeps of an RGBA frame: alpha < 128 is transparent (0, 0, 0, 0), the rest opaque.
engine::Image as_gif_keeps(const engine::Image& img) {
  engine::Image out = img;
  if (out.channels != 4) return out;
  for (size_t i = 0; i < out.pixel_count(); ++i) {
    uint8_t* p = out.pixels.data() + 4 * i;
    if (p[3] < 128) {
      std::fill_n(p, 4, uint8_t{0});
    } else {
      p[3] = 255;
    }
  }
  return out;
}

void expect_same_image(const engine::Image& expected, const engine::Image& actual,
                       const std::string& what) {
  ASSERT_EQ(expected.width, actual.width) << what;
  ASSERT_EQ(expected.height, actual.height) << what;
  ASSERT_EQ(expected.channels, actual.channels) << what;
  for (size_t i = 0; i < expected.pixels.size(); ++i) {
    if (expected.pixels[i] != actual.pixels[i]) {
      const size_t pixel = i / static_cast<size_t>(expected.channels);
      FAIL() << what << ": first difference at (" << pixel % static_cast<size_t>(expected.width)
             << ", " << pixel / static_cast<size_t>(expected.width) << ") channel "
             << i % static_cast<size_t>(expected.channels) << ": expected "
             << int{expected.pixels[i]} << ", got " << int{actual.pixels[i]};
    }
  }
}

void expect_same_animation(const Animation& expected, const Animation& actual) {
  ASSERT_EQ(expected.frames.size(), actual.frames.size());
  EXPECT_EQ(expected.delays_ms, actual.delays_ms);
  EXPECT_EQ(expected.loop, actual.loop);
  for (size_t i = 0; i < expected.frames.size(); ++i) {
    expect_same_image(expected.frames[i], actual.frames[i], "frame " + std::to_string(i));
  }
}

Animation decode_ok(const Bytes& bytes, const Limits& limits = Limits{}) {
  Result<Animation> animation = decode_animation(bytes, limits);
  EXPECT_TRUE(animation.ok()) << (animation.ok() ? "" : animation.error().message);
  return animation.ok() ? std::move(*animation) : Animation{};
}

Bytes encode_ok(const Animation& animation, OutputFormat format) {
  Result<Bytes> bytes = encode_animation(animation, format);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().message);
  return bytes.ok() ? std::move(*bytes) : Bytes{};
}

void expect_error(const Error& error, ErrorKind kind, std::string_view says) {
  EXPECT_EQ(error.kind, kind) << error.message;
  EXPECT_NE(error.message.find(says), std::string::npos) << error.message;
}

// ---------------------------------------------------------------------------------------------
// Helpers: GIF with giflib.

int append_gif(GifFileType* gif, const GifByteType* data, int length) {
  auto* out = static_cast<Bytes*>(gif->UserData);
  out->insert(out->end(), data, data + length);
  return length;
}

struct GifFrameSpec {
  int left = 0;
  int top = 0;
  int width = 0;
  int height = 0;
  int disposal = DISPOSAL_UNSPECIFIED;
  int delay_cs = 0;
  int transparent = NO_TRANSPARENT_COLOR;
  std::vector<uint8_t> indices;  // width * height
};

GifFrameSpec gif_frame(int left, int top, int width, int height, int disposal, int delay_cs,
                       int transparent, uint8_t index) {
  return GifFrameSpec{
      left,        top,
      width,       height,
      disposal,    delay_cs,
      transparent, std::vector<uint8_t>(static_cast<size_t>(width * height), index)};
}

// A GIF89a with a global colour table, a NETSCAPE2.0 extension with `netscape_loop` unless it
// is negative, and `frames`, each with a Graphic Control Extension.
Bytes make_gif(int width, int height, std::vector<GifColorType> colours, int netscape_loop,
               const std::vector<GifFrameSpec>& frames) {
  Bytes out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, append_gif, &error);
  EXPECT_NE(gif, nullptr);
  int bits = 1;
  while ((size_t{1} << bits) < colours.size()) ++bits;
  colours.resize(size_t{1} << bits);
  ColorMapObject* map = GifMakeMapObject(1 << bits, colours.data());
  EGifSetGifVersion(gif, true);
  EXPECT_EQ(EGifPutScreenDesc(gif, width, height, bits, 0, map), GIF_OK);
  if (netscape_loop >= 0) {
    const GifByteType count[3] = {1, static_cast<GifByteType>(netscape_loop & 0xFF),
                                  static_cast<GifByteType>(netscape_loop >> 8)};
    EXPECT_EQ(EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE), GIF_OK);
    EXPECT_EQ(EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0"), GIF_OK);
    EXPECT_EQ(EGifPutExtensionBlock(gif, 3, count), GIF_OK);
    EXPECT_EQ(EGifPutExtensionTrailer(gif), GIF_OK);
  }
  for (const GifFrameSpec& frame : frames) {
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = frame.disposal;
    gcb.DelayTime = frame.delay_cs;
    gcb.TransparentColor = frame.transparent;
    GifByteType extension[4];
    EGifGCBToExtension(&gcb, extension);
    EXPECT_EQ(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, extension), GIF_OK);
    EXPECT_EQ(
        EGifPutImageDesc(gif, frame.left, frame.top, frame.width, frame.height, false, nullptr),
        GIF_OK);
    std::vector<GifPixelType> line(static_cast<size_t>(frame.width));
    for (int y = 0; y < frame.height; ++y) {
      std::copy_n(frame.indices.begin() + y * frame.width, frame.width, line.begin());
      EXPECT_EQ(EGifPutLine(gif, line.data(), frame.width), GIF_OK);
    }
  }
  EXPECT_EQ(EGifCloseFile(gif, &error), GIF_OK);
  GifFreeMapObject(map);
  return out;
}

// A hand-made GIF of `frames` frames of width x height whose LZW data is garbage in a valid
// block structure (one sub-block of 0xFF): nothing decodes, but every frame can be counted.
Bytes gif_with_garbage_frames(int frames, int width, int height) {
  Bytes out = {'G', 'I', 'F', '8', '9', 'a'};
  auto put16 = [&out](int v) {
    out.push_back(static_cast<uint8_t>(v & 0xFF));
    out.push_back(static_cast<uint8_t>(v >> 8));
  };
  put16(width);
  put16(height);
  out.insert(out.end(), {0x80, 0, 0});            // 2-entry global table
  out.insert(out.end(), {255, 0, 0, 0, 0, 255});  // red, blue
  for (int f = 0; f < frames; ++f) {
    out.insert(out.end(), {0x21, 0xF9, 4, 0, 10, 0, 0, 0});  // GCE: 100 ms
    out.push_back(0x2C);
    put16(0);
    put16(0);
    put16(width);
    put16(height);
    out.push_back(0);
    out.push_back(2);  // LZW minimum code size
    out.push_back(8);
    out.insert(out.end(), 8, 0xFF);
    out.push_back(0);
  }
  out.push_back(0x3B);
  return out;
}

struct GifReader {
  const Bytes* bytes;
  size_t position = 0;
};

int read_gif(GifFileType* gif, GifByteType* data, int length) {
  auto* reader = static_cast<GifReader*>(gif->UserData);
  const size_t n = std::min(static_cast<size_t>(length), reader->bytes->size() - reader->position);
  std::memcpy(data, reader->bytes->data() + reader->position, n);
  reader->position += n;
  return static_cast<int>(n);
}

struct GifClose {
  void operator()(GifFileType* gif) const { DGifCloseFile(gif, nullptr); }
};
using SlurpedGif = std::unique_ptr<GifFileType, GifClose>;

// The GIF's blocks as giflib reads them (reader must outlive the result).
SlurpedGif slurp(GifReader& reader) {
  int error = 0;
  SlurpedGif gif(DGifOpen(&reader, read_gif, &error));
  EXPECT_TRUE(gif) << GifErrorString(error);
  if (gif) {
    EXPECT_EQ(DGifSlurp(gif.get()), GIF_OK) << GifErrorString(gif->Error);
  }
  return gif;
}

// ---------------------------------------------------------------------------------------------
// Helpers: WebP with libwebp.

// An animated WebP made by WebPAnimEncoder, lossless, RGB kept under alpha 0.
Bytes anim_encoder_webp(const std::vector<engine::Image>& frames, const std::vector<int>& durations,
                        int loop) {
  WebPAnimEncoderOptions options;
  EXPECT_TRUE(WebPAnimEncoderOptionsInit(&options));
  options.anim_params.loop_count = loop;
  WebPAnimEncoder* encoder = WebPAnimEncoderNew(frames[0].width, frames[0].height, &options);
  EXPECT_NE(encoder, nullptr);
  WebPConfig config;
  EXPECT_TRUE(WebPConfigInit(&config));
  config.lossless = 1;
  config.exact = 1;
  int timestamp = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    WebPPicture picture;
    EXPECT_TRUE(WebPPictureInit(&picture));
    picture.use_argb = 1;
    picture.width = frames[i].width;
    picture.height = frames[i].height;
    EXPECT_TRUE(WebPPictureImportRGBA(&picture, frames[i].pixels.data(),
                                      static_cast<int>(frames[i].stride())));
    EXPECT_TRUE(WebPAnimEncoderAdd(encoder, &picture, timestamp, &config))
        << WebPAnimEncoderGetError(encoder);
    WebPPictureFree(&picture);
    timestamp += durations[i];
  }
  EXPECT_TRUE(WebPAnimEncoderAdd(encoder, nullptr, timestamp, nullptr));
  WebPData data;
  WebPDataInit(&data);
  EXPECT_TRUE(WebPAnimEncoderAssemble(encoder, &data)) << WebPAnimEncoderGetError(encoder);
  Bytes out(data.bytes, data.bytes + data.size);
  WebPDataClear(&data);
  WebPAnimEncoderDelete(encoder);
  return out;
}

uint32_t get_le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// The offsets of the VP8L payloads of an animated WebP's frames (ANMF chunks), in order.
std::vector<std::pair<size_t, size_t>> webp_frame_payloads(const Bytes& webp) {
  std::vector<std::pair<size_t, size_t>> payloads;
  for (size_t pos = 12; pos + 8 <= webp.size();) {
    const size_t size = get_le32(webp.data() + pos + 4);
    if (std::memcmp(webp.data() + pos, "ANMF", 4) == 0) {
      for (size_t sub = pos + 8 + 16; sub + 8 <= pos + 8 + size;) {
        const size_t sub_size = get_le32(webp.data() + sub + 4);
        if (std::memcmp(webp.data() + sub, "VP8L", 4) == 0)
          payloads.emplace_back(sub + 8, sub_size);
        sub += 8 + sub_size + (sub_size & 1);
      }
    }
    pos += 8 + size + (size & 1);
  }
  return payloads;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

// The colours of the hand-made GIFs; index 4 is the transparent one where a frame says so.
const std::vector<GifColorType> kGifColours = {
    {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {9, 9, 9}};
constexpr Rgba8 kRed{255, 0, 0, 255};
constexpr Rgba8 kGreen{0, 255, 0, 255};
constexpr Rgba8 kBlue{0, 0, 255, 255};
constexpr Rgba8 kWhite{255, 255, 255, 255};
constexpr Rgba8 kClear{0, 0, 0, 0};

TEST(DecodeAnimation, GifFramesAsShownWithDisposalDelaysAndLoop) {
  // 6x4: a red frame kept (disposal 1); a green 3x2 rectangle at (2, 1) with one transparent
  // pixel, then restored to background (disposal 2: transparent, the frame has a transparent
  // index); a blue pixel at (0, 0); a whole-canvas frame all transparent but for one white pixel.
  GifFrameSpec green = gif_frame(2, 1, 3, 2, 2, 20, 4, 1);
  green.indices[4] = 4;  // (3, 2) on the canvas: the red shows through
  GifFrameSpec last = gif_frame(0, 0, 6, 4, 1, 35, 4, 4);
  last.indices[23] = 3;  // (5, 3) white
  const Bytes gif = make_gif(6, 4, kGifColours, 3,
                             {gif_frame(0, 0, 6, 4, 1, 10, NO_TRANSPARENT_COLOR, 0), green,
                              gif_frame(0, 0, 1, 1, 1, 0, 4, 2), last});

  Result<ImageInfo> info = probe(gif, Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->frames, 4);
  EXPECT_EQ(info->width, 6);
  EXPECT_EQ(info->height, 4);

  Animation expected;
  engine::Image canvas = filled(6, 4, 4, kRed);
  expected.frames.push_back(canvas);
  paint(canvas, 2, 1, 3, 2, kGreen);
  paint(canvas, 3, 2, 1, 1, kRed);
  expected.frames.push_back(canvas);
  paint(canvas, 2, 1, 3, 2, kClear);  // disposal 2
  paint(canvas, 0, 0, 1, 1, kBlue);
  expected.frames.push_back(canvas);
  paint(canvas, 5, 3, 1, 1, kWhite);
  expected.frames.push_back(canvas);
  expected.delays_ms = {100, 200, 0, 350};  // centiseconds * 10
  expected.loop = 4;                        // NETSCAPE2.0's 3 repeats after the first play
  const Animation decoded = decode_ok(gif);
  expect_same_animation(expected, decoded);

  // The first frame is decode()'s image; verify() reads all and agrees.
  Result<engine::Image> first = decode(gif, Limits{});
  ASSERT_TRUE(first.ok()) << first.error().message;
  expect_same_image(expected.frames[0], *first, "decode()");
  Result<ImageInfo> verified = verify(gif, Limits{});
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->frames, 4);
}

TEST(DecodeAnimation, GifLoopCounts) {
  const auto frames = {gif_frame(0, 0, 2, 2, 1, 5, NO_TRANSPARENT_COLOR, 0),
                       gif_frame(0, 0, 1, 1, 1, 7, NO_TRANSPARENT_COLOR, 1)};
  // Without the extension a GIF plays once; NETSCAPE2.0 0 is for ever.
  EXPECT_EQ(decode_ok(make_gif(2, 2, kGifColours, -1, frames)).loop, 1);
  EXPECT_EQ(decode_ok(make_gif(2, 2, kGifColours, 0, frames)).loop, 0);
  EXPECT_EQ(decode_ok(make_gif(2, 2, kGifColours, 1, frames)).loop, 2);
  // Opaque frames (no transparent index anywhere) decode as RGB.
  const Animation opaque = decode_ok(make_gif(2, 2, kGifColours, -1, frames));
  ASSERT_EQ(opaque.frames.size(), 2u);
  EXPECT_EQ(opaque.frames[1].channels, 3);
  EXPECT_EQ(opaque.delays_ms, (std::vector<int>{50, 70}));
}

TEST(DecodeAnimation, WebpFromAnimEncoder) {
  // RGBA frames with a change in a sub-rectangle, pixels turning transparent (with their own
  // colours under alpha 0) and a translucent strip: WebPAnimEncoder picks sub-frames, blending
  // and disposal as it likes; every frame must come back exactly.
  const Animation source = moving_square(12, 9, 5, 4, /*hidden=*/true, /*translucent=*/true);
  std::vector<engine::Image> frames = source.frames;
  frames.erase(frames.begin() + 3);  // WebPAnimEncoder merges a repeated frame into the one before
  const std::vector<int> durations = {70, 120, 30, 1000};
  const Bytes webp = anim_encoder_webp(frames, durations, 3);
  Result<ImageInfo> info = probe(webp, Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->frames, 4);
  Animation expected;
  expected.frames = frames;
  expected.delays_ms = durations;
  expected.loop = 3;  // a WebP's loop count is the times it plays
  expect_same_animation(expected, decode_ok(webp));
  EXPECT_TRUE(verify(webp, Limits{}).ok());
}

TEST(DecodeAnimation, OpaqueAnimationsAreRgb) {
  // Every frame with the transparent index in its GCE, no pixel shown transparent: libvips (and
  // so decode()) says RGBA from the header, decode_animation() RGB from the frames.
  GifFrameSpec cover = gif_frame(0, 0, 4, 2, 1, 10, 4, 0);
  GifFrameSpec dot = gif_frame(0, 0, 4, 2, 1, 10, 4, 4);
  dot.indices[5] = 2;
  const Bytes gif = make_gif(4, 2, kGifColours, 0, {cover, dot});
  Result<engine::Image> first = decode(gif, Limits{});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->channels, 4);
  Animation expected;
  expected.frames = {filled(4, 2, 3, kRed), filled(4, 2, 3, kRed)};
  paint(expected.frames[1], 1, 1, 1, 1, kBlue);
  expected.delays_ms = {100, 100};
  expect_same_animation(expected, decode_ok(gif));
  // One translucent pixel in one frame keeps alpha for all.
  const Animation rgba = moving_square(10, 8, 3, 4, false, true);
  EXPECT_EQ(decode_ok(encode_ok(rgba, OutputFormat::kWebp)).frames[0].channels, 4);
}

TEST(DecodeAnimation, ExifOrientationTurnsEveryFrame) {
  const Animation animation = moving_square(9, 6, 3, 3);
  const Bytes webp = encode_ok(animation, OutputFormat::kWebp);
  // EXIF: little-endian TIFF, one IFD entry: Orientation (0x0112), SHORT, 6 (shown turned 90
  // degrees clockwise).
  const Bytes exif = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                      0,   1,   0,  0, 0, 6, 0, 0, 0, 0, 0,    0,    0};
  const WebPData in{webp.data(), webp.size()};
  WebPMux* mux = WebPMuxCreate(&in, 1);
  ASSERT_NE(mux, nullptr);
  const WebPData chunk{exif.data(), exif.size()};
  ASSERT_EQ(WebPMuxSetChunk(mux, "EXIF", &chunk, 1), WEBP_MUX_OK);
  WebPData out;
  WebPDataInit(&out);
  ASSERT_EQ(WebPMuxAssemble(mux, &out), WEBP_MUX_OK);
  const Bytes turned(out.bytes, out.bytes + out.size);
  WebPDataClear(&out);
  WebPMuxDelete(mux);

  Result<ImageInfo> info = probe(turned, Limits{});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->width, 6);
  EXPECT_EQ(info->height, 9);
  Animation expected = animation;
  for (engine::Image& frame : expected.frames) {
    engine::Image cw(frame.height, frame.width, frame.channels);
    for (int y = 0; y < cw.height; ++y) {
      for (int x = 0; x < cw.width; ++x) {
        std::copy_n(frame.at(y, frame.height - 1 - x), frame.channels, cw.at(x, y));
      }
    }
    frame = std::move(cw);
  }
  const Animation decoded = decode_ok(turned);
  expect_same_animation(expected, decoded);
  Result<engine::Image> first = decode(turned, Limits{});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->channels,
            4);  // decode(): alpha from the header (frames smaller than the canvas)
  for (int y = 0; y < 9; ++y) {
    for (int x = 0; x < 6; ++x) {
      ASSERT_EQ(std::memcmp(first->at(x, y), expected.frames[0].at(x, y), 3), 0);
    }
  }
}

TEST(DecodeAnimation, StillImagesAreOneFrame) {
  const engine::Image img = filled(5, 3, 3, kBlue);
  Result<Bytes> gif = encode(img, OutputFormat::kGif);
  Result<Bytes> png = encode(img, OutputFormat::kPng);
  ASSERT_TRUE(gif.ok() && png.ok());
  for (const Bytes* bytes : {&*gif, &*png}) {
    Result<ImageInfo> info = probe(*bytes, Limits{});
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->frames, 1);
    const Animation still = decode_ok(*bytes);
    ASSERT_EQ(still.frames.size(), 1u);
    expect_same_image(img, still.frames[0], "still");
    EXPECT_EQ(still.delays_ms, std::vector<int>{0});
    EXPECT_EQ(still.loop, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Limits.

TEST(AnimationLimits, FramesAndTotalPixelsAreRefusedByProbe) {
  Animation twenty;
  for (int f = 0; f < 20; ++f) {
    twenty.frames.push_back(filled(100, 50, 3, Rgba8{static_cast<uint8_t>(f * 10), 0, 0, 255}));
    twenty.delays_ms.push_back(100);
  }
  for (OutputFormat format : {OutputFormat::kGif, OutputFormat::kWebp}) {
    const Bytes bytes = encode_ok(twenty, format);
    Result<ImageInfo> info = probe(bytes, Limits{});
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->frames, 20);
    Limits pixels;
    pixels.max_animation_pixels = 99'999;
    Limits frames;
    frames.max_animation_frames = 19;
    for (const auto& [limits, says] :
         {std::pair{pixels, "has 100000 pixels over 20 frames of 100x50; at most 99999"},
          std::pair{frames, "has 20 frames; at most 19 are accepted"}}) {
      Result<ImageInfo> refused = probe(bytes, limits);
      ASSERT_FALSE(refused.ok());
      expect_error(refused.error(), ErrorKind::kTooManyPixels, says);
      ASSERT_FALSE(decode_animation(bytes, limits).ok());
      expect_error(decode_animation(bytes, limits).error(), ErrorKind::kTooManyPixels, says);
      expect_error(verify(bytes, limits).error(), ErrorKind::kTooManyPixels, says);
      expect_error(decode(bytes, limits).error(), ErrorKind::kTooManyPixels, says);
    }
  }
}

TEST(AnimationLimits, GifFramesAreCountedWithoutDecodingThem) {
  // 400 frames whose pixel data is garbage: the limit comes from walking the blocks alone.
  const Bytes gif = gif_with_garbage_frames(400, 4, 4);
  Result<ImageInfo> refused = probe(gif, Limits{});
  ASSERT_FALSE(refused.ok());
  expect_error(refused.error(), ErrorKind::kTooManyPixels, "the GIF has 400 frames; at most 300");
  expect_error(decode_animation(gif, Limits{}).error(), ErrorKind::kTooManyPixels, "400 frames");
  // Under a higher limit the header is fine, and the frames fail as they are decoded.
  Limits many;
  many.max_animation_frames = 1000;
  Result<ImageInfo> info = probe(gif, many);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->frames, 400);
  EXPECT_EQ(decode_animation(gif, many).error().kind, ErrorKind::kUndecodable);
  EXPECT_EQ(verify(gif, many).error().kind, ErrorKind::kUndecodable);
  // A GIF has no frame count in its header: frames are counted by walking the file, so a file
  // cut short has only the frames before the cut (the last one partial).
  const Bytes cut(gif.begin(), gif.begin() + static_cast<std::ptrdiff_t>(gif.size() / 2));
  Result<ImageInfo> half = probe(cut, many);
  ASSERT_TRUE(half.ok()) << half.error().message;
  EXPECT_GT(half->frames, 190);
  EXPECT_LT(half->frames, 210);
}

TEST(AnimationLimits, WebpFramesAreCountedWithoutDecodingThem) {
  Animation many_frames;
  for (int f = 0; f < 400; ++f) {
    many_frames.frames.push_back(filled(4, 4, 3, Rgba8{static_cast<uint8_t>(f), 1, 2, 255}));
    many_frames.delays_ms.push_back(20);
  }
  Bytes webp = encode_ok(many_frames, OutputFormat::kWebp);
  // Every frame's pixel data overwritten past its 5-byte VP8L header: the demuxer reads the
  // chunk headers only.
  const auto payloads = webp_frame_payloads(webp);
  ASSERT_EQ(payloads.size(), 400u);
  for (const auto& [offset, size] : payloads) {
    std::fill(webp.begin() + static_cast<std::ptrdiff_t>(offset + 5),
              webp.begin() + static_cast<std::ptrdiff_t>(offset + size), uint8_t{0xFF});
  }
  Result<ImageInfo> refused = probe(webp, Limits{});
  ASSERT_FALSE(refused.ok());
  expect_error(refused.error(), ErrorKind::kTooManyPixels, "the WebP has 400 frames; at most 300");
  Limits many;
  many.max_animation_frames = 400;
  Result<ImageInfo> info = probe(webp, many);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->frames, 400);
  EXPECT_EQ(decode_animation(webp, many).error().kind, ErrorKind::kUndecodable);
}

TEST(AnimationLimits, DecodeTimeLimitCoversAllFrames) {
  Animation big;
  for (int f = 0; f < 30; ++f) {
    // Noise of 8 colours, different in every frame.
    engine::Image img(400, 300, 3);
    for (size_t i = 0; i < img.pixel_count(); ++i) {
      const auto k = static_cast<uint8_t>((((i + 7 * f) * 2654435761u) >> 13) % 8);
      uint8_t* p = img.pixels.data() + 3 * i;
      p[0] = static_cast<uint8_t>(k * 30);
      p[1] = static_cast<uint8_t>(255 - k * 30);
      p[2] = k & 1 ? 200 : 0;
    }
    big.frames.push_back(std::move(img));
    big.delays_ms.push_back(40);
  }
  const Bytes gif = encode_ok(big, OutputFormat::kGif);
  Limits quick;
  quick.max_decode_time = std::chrono::milliseconds{1};
  expect_error(decode_animation(gif, quick).error(), ErrorKind::kUndecodable,
               "decoding the GIF took longer than the limit of 1 ms");
  expect_error(verify(gif, quick).error(), ErrorKind::kUndecodable, "took longer");
  EXPECT_EQ(decode_ok(gif).frames.size(), 30u);
}

TEST(Verify, RejectsAnAnimationWithACorruptLaterFrame) {
  const Animation animation = moving_square(16, 12, 6, 3);
  // GIF: cut inside the last frame's data.
  const Bytes gif = encode_ok(animation, OutputFormat::kGif);
  const Bytes cut(gif.begin(), gif.end() - 6);
  EXPECT_TRUE(decode(cut, Limits{}).ok()) << "the first frame is whole";
  EXPECT_EQ(verify(cut, Limits{}).error().kind, ErrorKind::kUndecodable);
  EXPECT_EQ(decode_animation(cut, Limits{}).error().kind, ErrorKind::kUndecodable);
  // WebP: the last frame's pixel data overwritten.
  Bytes webp = encode_ok(animation, OutputFormat::kWebp);
  const auto payloads = webp_frame_payloads(webp);
  ASSERT_EQ(payloads.size(), 6u);
  const auto [offset, size] = payloads.back();
  std::fill(webp.begin() + static_cast<std::ptrdiff_t>(offset + 5),
            webp.begin() + static_cast<std::ptrdiff_t>(offset + size), uint8_t{0xFF});
  EXPECT_TRUE(decode(webp, Limits{}).ok()) << "the first frame is whole";
  EXPECT_EQ(verify(webp, Limits{}).error().kind, ErrorKind::kUndecodable);
  EXPECT_EQ(decode_animation(webp, Limits{}).error().kind, ErrorKind::kUndecodable);
}

TEST(Verify, AgreesWithDecodeAnimationOnMutatedAnimations) {
  // What verify() accepts decode_animation() decodes, and the reverse, on broken files.
  const std::vector<std::pair<std::string, Bytes>> seeds = {
      {"gif", encode_ok(moving_square(24, 18, 6, 4), OutputFormat::kGif)},
      {"opaque gif", encode_ok(moving_square(24, 18, 6, 3), OutputFormat::kGif)},
      {"webp", encode_ok(moving_square(24, 18, 6, 4, true, true), OutputFormat::kWebp)},
  };
  std::mt19937 rng(20260116);
  int accepted = 0;
  int refused = 0;
  for (const auto& [name, seed] : seeds) {
    for (int round = 0; round < 150; ++round) {
      Bytes bytes = seed;
      auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
      if (round > 0) {  // round 0: the file itself
        switch (pick(3)) {
          case 0:  // flip a few bytes past the header
            for (int e = 0; e < 1 + static_cast<int>(pick(3)); ++e) {
              bytes[20 + pick(bytes.size() - 20)] ^= static_cast<uint8_t>(1 + pick(255));
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
      const Result<Animation> decoded = decode_animation(bytes, Limits{});
      const Result<ImageInfo> verified = verify(bytes, Limits{});
      ASSERT_EQ(decoded.ok(), verified.ok())
          << name << " round " << round << ": "
          << (decoded.ok() ? verified.error().message : decoded.error().message);
      if (decoded.ok()) {
        ++accepted;
        EXPECT_EQ(static_cast<int>(decoded->frames.size()), verified->frames) << name;
        EXPECT_EQ(decoded->frames[0].width, verified->width) << name;
      } else {
        ++refused;
        EXPECT_EQ(decoded.error().kind, verified.error().kind) << name << " round " << round;
      }
    }
  }
  EXPECT_GT(accepted, 3);
  EXPECT_GT(refused, 100);
  std::cout << "mutations: " << accepted << " decoded, " << refused << " refused\n";
}

// ---------------------------------------------------------------------------------------------
// Encoding.

TEST(EncodeAnimation, GifRoundTripKeepsEveryPixelDelayAndLoop) {
  for (int channels : {3, 4}) {
    for (int loop : {0, 1, 2, 3}) {
      SCOPED_TRACE("channels " + std::to_string(channels) + ", loop " + std::to_string(loop));
      Animation animation = moving_square(23, 17, 7, channels, /*hidden=*/true);
      animation.loop = loop;
      Animation expected = animation;
      for (engine::Image& frame : expected.frames) frame = as_gif_keeps(frame);
      expect_same_animation(expected, decode_ok(encode_ok(animation, OutputFormat::kGif)));
    }
  }
  // Delays are stored in centiseconds: rounded to the nearest.
  Animation odd = moving_square(8, 8, 3, 3);
  odd.delays_ms = {14, 15, 2'147'483'647};  // the longest GIF delay: 655.35 s
  EXPECT_EQ(decode_ok(encode_ok(odd, OutputFormat::kGif)).delays_ms,
            (std::vector<int>{10, 20, 655'350}));
  EXPECT_EQ(decode_ok(encode_ok(odd, OutputFormat::kWebp)).delays_ms,
            (std::vector<int>{14, 15, (1 << 24) - 1}));
}

TEST(EncodeAnimation, WebpRoundTripKeepsEveryPixelDelayAndLoop) {
  for (int channels : {3, 4}) {
    for (int loop : {0, 1, 3}) {
      SCOPED_TRACE("channels " + std::to_string(channels) + ", loop " + std::to_string(loop));
      // Alpha 128 and colours under alpha 0 are kept exactly too.
      Animation animation = moving_square(23, 17, 7, channels, true, true);
      animation.loop = loop;
      animation.delays_ms = {33, 0, 1000, 17, 5, 250, 1};
      expect_same_animation(animation, decode_ok(encode_ok(animation, OutputFormat::kWebp)));
    }
  }
}

TEST(EncodeAnimation, GifHasOneGlobalPaletteAndStoresOnlyWhatChanged) {
  for (int channels : {3, 4}) {
    SCOPED_TRACE("channels " + std::to_string(channels));
    const Animation animation = moving_square(40, 30, 6, channels);
    const Bytes gif = encode_ok(animation, OutputFormat::kGif);
    GifReader reader{&gif};
    SlurpedGif parsed = slurp(reader);
    ASSERT_TRUE(parsed);
    ASSERT_EQ(parsed->ImageCount, 6);
    ASSERT_NE(parsed->SColorMap, nullptr);
    // 4 background colours, 3 square colours and the transparent entry: 8 entries. (Without
    // alpha the transparent entry marks pixels a frame leaves as they are.)
    EXPECT_EQ(parsed->SColorMap->ColorCount, 8);
    for (int i = 0; i < parsed->ImageCount; ++i) {
      const GifImageDesc& desc = parsed->SavedImages[i].ImageDesc;
      EXPECT_EQ(desc.ColorMap, nullptr) << "frame " << i << " has a local colour table";
      GraphicsControlBlock gcb{};
      ASSERT_EQ(DGifSavedExtensionToGCB(parsed.get(), i, &gcb), GIF_OK);
      EXPECT_EQ(gcb.TransparentColor, 0);
      // Opaque: the moving square's old and new place (with alpha the moving hole at the other
      // corner makes the rectangles large; the unchanged pixels in them are transparent).
      if (i == 0) {
        EXPECT_EQ(desc.Width * desc.Height, 40 * 30);
      } else if (channels == 3) {
        EXPECT_LT(desc.Width * desc.Height, 40 * 30 / 8) << "frame " << i;
      }
      if (i == 3 && channels == 3) {
        EXPECT_EQ(desc.Width * desc.Height, 1) << "a repeated frame";
      }
    }
    // The hole moves left: pixels turn transparent, so some frame is disposed of.
    bool disposed = false;
    for (int i = 0; i < parsed->ImageCount; ++i) {
      GraphicsControlBlock gcb{};
      ASSERT_EQ(DGifSavedExtensionToGCB(parsed.get(), i, &gcb), GIF_OK);
      disposed |= gcb.DisposalMode == DISPOSE_BACKGROUND;
      if (channels == 3) {
        EXPECT_EQ(gcb.DisposalMode, DISPOSE_DO_NOT);
      }
    }
    EXPECT_EQ(disposed, channels == 4);
    // The loop extension: NETSCAPE2.0, repeats = loop - 1.
    const SavedImage& first = parsed->SavedImages[0];
    ASSERT_GE(first.ExtensionBlockCount, 2);
    EXPECT_EQ(first.ExtensionBlocks[0].Function, APPLICATION_EXT_FUNC_CODE);
    EXPECT_EQ(std::memcmp(first.ExtensionBlocks[0].Bytes, "NETSCAPE2.0", 11), 0);
    ASSERT_EQ(first.ExtensionBlocks[1].ByteCount, 3);
    EXPECT_EQ(first.ExtensionBlocks[1].Bytes[1], 2);
  }
}

TEST(EncodeAnimation, TooManyColoursOverAllFramesAreRefused) {
  Animation animation;
  for (int f = 0; f < 2; ++f) {
    engine::Image img(20, 10, 3);
    for (int i = 0; i < 200; ++i) {
      uint8_t* p = img.pixels.data() + 3 * i;
      p[0] = static_cast<uint8_t>(i);
      p[1] = static_cast<uint8_t>(f);
      p[2] = 0;
    }
    animation.frames.push_back(std::move(img));
    animation.delays_ms.push_back(100);
  }
  // 200 colours each, 400 together.
  Result<Bytes> gif = encode_animation(animation, OutputFormat::kGif);
  // 256 opaque colours fit (without the transparent entry for unchanged pixels).
  Animation full = animation;
  for (int f = 0; f < 2; ++f) {
    for (int i = 0; i < 200; ++i) full.frames[f].pixels[3 * i] = static_cast<uint8_t>(i % 128);
  }
  expect_same_animation(full, decode_ok(encode_ok(full, OutputFormat::kGif)));
  ASSERT_FALSE(gif.ok());
  expect_error(gif.error(), ErrorKind::kInvalidArgument, "at most 256 colours over all its frames");
  EXPECT_TRUE(encode_animation(animation, OutputFormat::kWebp).ok());
  // 255 opaque colours and a transparent one fit exactly; one more colour does not.
  Animation fits;
  for (int f = 0; f < 2; ++f) {
    engine::Image img(16, 16, 4);
    for (int i = 0; i < 256; ++i) {
      uint8_t* p = img.pixels.data() + 4 * i;
      const int c = std::min(i, 127) + 127 * f;  // 128 per frame, 255 over both
      p[0] = static_cast<uint8_t>(c);
      p[1] = p[2] = 0;
      p[3] = i == 255 ? 0 : 255;
    }
    fits.frames.push_back(std::move(img));
    fits.delays_ms.push_back(100);
  }
  const Bytes ok = encode_ok(fits, OutputFormat::kGif);
  Animation expected = fits;
  for (engine::Image& frame : expected.frames) frame = as_gif_keeps(frame);
  expect_same_animation(expected, decode_ok(ok));
  fits.frames[1].at(8, 12)[1] = 1;  // (254, 1, 0): colour 254 remains elsewhere
  expect_error(encode_animation(fits, OutputFormat::kGif).error(), ErrorKind::kInvalidArgument,
               "256 colours");
}

TEST(EncodeAnimation, BadInputIsRefused) {
  const Animation good = moving_square(8, 6, 3, 3);
  expect_error(encode_animation(good, OutputFormat::kPng).error(), ErrorKind::kInvalidArgument,
               "PNG");
  for (OutputFormat format : {OutputFormat::kGif, OutputFormat::kWebp}) {
    EXPECT_EQ(encode_animation(Animation{}, format).error().kind, ErrorKind::kInvalidArgument);
    Animation sizes = good;
    sizes.frames[2] = filled(8, 7, 3, kRed);
    expect_error(encode_animation(sizes, format).error(), ErrorKind::kInvalidArgument,
                 "frame 2 is 8x7x3");
    Animation channels = good;
    channels.frames[1] = filled(8, 6, 4, kRed);
    EXPECT_EQ(encode_animation(channels, format).error().kind, ErrorKind::kInvalidArgument);
    Animation delays = good;
    delays.delays_ms.pop_back();
    expect_error(encode_animation(delays, format).error(), ErrorKind::kInvalidArgument,
                 "one delay per frame");
    Animation negative = good;
    negative.delays_ms[1] = -1;
    EXPECT_EQ(encode_animation(negative, format).error().kind, ErrorKind::kInvalidArgument);
    Animation loop = good;
    loop.loop = 65536;
    EXPECT_EQ(encode_animation(loop, format).error().kind, ErrorKind::kInvalidArgument);
    Animation broken = good;
    broken.frames[0].pixels.pop_back();
    EXPECT_EQ(encode_animation(broken, format).error().kind, ErrorKind::kInvalidArgument);
  }
}

TEST(EncodeAnimation, DeterministicBytes) {
  const Animation animation = moving_square(31, 19, 8, 4, true, true);
  Animation opaque = moving_square(31, 19, 8, 3);
  Animation gif_ready = animation;
  for (engine::Image& frame : gif_ready.frames) frame = as_gif_keeps(frame);
  EXPECT_EQ(encode_ok(gif_ready, OutputFormat::kGif), encode_ok(gif_ready, OutputFormat::kGif));
  EXPECT_EQ(encode_ok(opaque, OutputFormat::kGif), encode_ok(opaque, OutputFormat::kGif));
  EXPECT_EQ(encode_ok(animation, OutputFormat::kWebp), encode_ok(animation, OutputFormat::kWebp));
  EXPECT_EQ(encode_ok(opaque, OutputFormat::kWebp), encode_ok(opaque, OutputFormat::kWebp));
}

TEST(EncodeAnimation, OneFrameDecodesAsAStill) {
  Animation one;
  one.frames.push_back(filled(6, 4, 3, kGreen));
  one.delays_ms.push_back(500);
  one.loop = 2;
  for (OutputFormat format : {OutputFormat::kGif, OutputFormat::kWebp}) {
    const Animation decoded = decode_ok(encode_ok(one, format));
    ASSERT_EQ(decoded.frames.size(), 1u);
    expect_same_image(one.frames[0], decoded.frames[0], "the frame");
    EXPECT_EQ(decoded.delays_ms, std::vector<int>{0});
    EXPECT_EQ(decoded.loop, 0);
  }
}

}  // namespace
}  // namespace dither::imaging
