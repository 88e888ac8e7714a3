// encode_animation(): animated GIF (giflib, through gif_writer.cc) and WebP (libwebp's muxer).
//
// Both keep every pixel exact and store, after the first frame, only the rectangle that changed
// since the frame before: the decoders draw each frame onto a canvas that persists, so a frame
// whose pixels are unchanged costs nothing. Where a format could not show an unchanged pixel
// exactly otherwise, the frame is larger; never wrong. (decode_animation() is in decode.cc, next
// to decode().)
#include <webp/encode.h>
#include <webp/mux.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "imaging/codec.h"
#include "imaging/color_index.h"
#include "imaging/writers.h"

namespace dither::imaging {
namespace {

using internal::GifFrame;
using internal::IndexedImage;
using internal::Rgba;

// Both formats store the loop count in 16 bits.
constexpr int kMaxLoop = 65535;
// A WebP frame's duration has 24 bits (ms); a GIF's delay 16 (cs).
constexpr int kMaxWebpDuration = (1 << 24) - 1;
constexpr int kMaxGifDelay = 65535;

std::string size_text(const engine::Image& img) {
  return std::to_string(img.width) + "x" + std::to_string(img.height) + "x" +
         std::to_string(img.channels);
}

Status check_animation(const Animation& animation) {
  const std::vector<engine::Image>& frames = animation.frames;
  if (frames.empty()) {
    return make_error(ErrorKind::kInvalidArgument, "cannot encode an animation without frames");
  }
  if (animation.delays_ms.size() != frames.size()) {
    return make_error(ErrorKind::kInvalidArgument,
                      "an animation needs one delay per frame: " + std::to_string(frames.size()) +
                          " frames, " + std::to_string(animation.delays_ms.size()) + " delays");
  }
  if (animation.loop < 0 || animation.loop > kMaxLoop) {
    return make_error(
        ErrorKind::kInvalidArgument,
        "the loop count must be 0 (for ever) to 65535, not " + std::to_string(animation.loop));
  }
  const engine::Image& first = frames[0];
  for (size_t i = 0; i < frames.size(); ++i) {
    const engine::Image& frame = frames[i];
    const bool valid = frame.width > 0 && frame.height > 0 &&
                       (frame.channels == 3 || frame.channels == 4) &&
                       frame.pixels.size() == frame.pixel_count() * frame.channels;
    if (!valid || frame.width != first.width || frame.height != first.height ||
        frame.channels != first.channels) {
      return make_error(ErrorKind::kInvalidArgument,
                        "cannot encode the animation: frame " + std::to_string(i) + " is " +
                            size_text(frame) + " (" + std::to_string(frame.pixels.size()) +
                            " bytes); every frame must be a valid RGB or RGBA image of frame 0's "
                            "size, " +
                            size_text(first));
    }
    if (animation.delays_ms[i] < 0) {
      return make_error(ErrorKind::kInvalidArgument,
                        "frame " + std::to_string(i) + " has a negative delay");
    }
  }
  return Status();
}

// A rectangle of the canvas, [left, right) x [top, bottom); grows to cover the points added.
struct Rect {
  int left = 0;
  int top = 0;
  int right = 0;
  int bottom = 0;

  bool empty() const { return right <= left || bottom <= top; }
  int width() const { return right - left; }
  int height() const { return bottom - top; }
  bool contains(int x, int y) const { return x >= left && x < right && y >= top && y < bottom; }
  // Adds the run of columns [x0, x1) on row y.
  void add(int x0, int x1, int y) {
    if (empty()) {
      *this = Rect{x0, y, x1, y + 1};
      return;
    }
    left = std::min(left, x0);
    right = std::max(right, x1);
    top = std::min(top, y);
    bottom = std::max(bottom, y + 1);
  }
};

// ---------------------------------------------------------------------------------------------
// GIF

// The frames as indices into one colour table for the whole animation.
struct IndexedFrames {
  // The transparent entry first (alpha 0), when the animation has transparent pixels or there is
  // room for it (it then marks pixels a frame leaves as they were); then the opaque colours in
  // order of first appearance, frame by frame: deterministic.
  std::vector<Rgba> palette;
  bool transparent = false;                  // palette[0] is the transparent entry
  std::vector<std::vector<uint8_t>> planes;  // one per frame, width * height
};

uint32_t key_of(const Rgba& c) {
  return uint32_t{c.r} | (uint32_t{c.g} << 8) | (uint32_t{c.b} << 16) | (uint32_t{c.a} << 24);
}

Error too_many_gif_colours() {
  return make_error(ErrorKind::kInvalidArgument,
                    "an animated GIF holds at most 256 colours over all its frames (transparent "
                    "counts as one); use WebP");
}

Result<IndexedFrames> index_frames(const std::vector<engine::Image>& frames) {
  // Each frame alone first (color_index.h, GIF's 1-bit alpha), then one table for all.
  std::vector<IndexedImage> indexed;
  indexed.reserve(frames.size());
  bool transparent_pixels = false;
  std::unordered_map<uint32_t, int> opaque;  // colour -> its place among the opaque colours
  std::vector<Rgba> opaque_colours;
  for (const engine::Image& frame : frames) {
    std::optional<IndexedImage> ix = internal::index_colors(frame, internal::AlphaMode::kBinary);
    if (!ix) return too_many_gif_colours();
    for (const Rgba& c : ix->palette) {
      if (c.a == 0) {
        transparent_pixels = true;  // kBinary: the one transparent entry, (0, 0, 0, 0)
      } else if (opaque.emplace(key_of(c), static_cast<int>(opaque_colours.size())).second) {
        if (opaque_colours.size() == internal::kMaxIndexedColors) return too_many_gif_colours();
        opaque_colours.push_back(c);
      }
    }
    indexed.push_back(std::move(*ix));
  }
  IndexedFrames out;
  // An opaque animation gets the transparent entry too when there is room (one frame has no use
  // for it): measured on 30 frames of 320x240 dithered to 8 colours, 19 % smaller for a 4x4
  // Bayer dither, 4 % for Floyd-Steinberg, although the ninth entry doubles the table.
  out.transparent = transparent_pixels ||
                    (frames.size() > 1 && opaque_colours.size() < internal::kMaxIndexedColors);
  const int first_opaque = out.transparent ? 1 : 0;
  if (opaque_colours.size() + static_cast<size_t>(first_opaque) > internal::kMaxIndexedColors) {
    return too_many_gif_colours();
  }
  if (out.transparent) out.palette.push_back(Rgba{0, 0, 0, 0});
  out.palette.insert(out.palette.end(), opaque_colours.begin(), opaque_colours.end());
  out.planes.reserve(frames.size());
  for (IndexedImage& ix : indexed) {
    std::array<uint8_t, internal::kMaxIndexedColors> to_global{};
    for (size_t i = 0; i < ix.palette.size(); ++i) {
      to_global[i] = ix.palette[i].a == 0
                         ? 0
                         : static_cast<uint8_t>(first_opaque + opaque.at(key_of(ix.palette[i])));
    }
    for (uint8_t& index : ix.indices) index = to_global[index];
    out.planes.push_back(std::move(ix.indices));
  }
  return out;
}

// Chooses, frame by frame, what each GIF frame stores so that the canvas shows every frame
// exactly, on any decoder that follows the GIF89a disposal rules:
//  - Frame 0 covers the canvas.
//  - Frame i covers the rectangle where the canvas left by frame i - 1 differs from frame i.
//    Inside it, pixels the canvas already shows are stored as the transparent index (when the
//    animation has one: long runs of one index compress well in LZW).
//  - A transparent pixel cannot erase an opaque one (it draws nothing), so when frame i + 1 is
//    transparent where frame i is opaque, frame i's rectangle is widened to cover those pixels
//    and gets disposal 2 (restore to background: transparent in browsers and libnsgif, since
//    every frame then has a transparent index). Frame 0 follows the last frame when the
//    animation loops; that pair counts too, for decoders that do not clear the canvas between
//    loops.
//  - A frame identical to the canvas still takes a 1x1 rectangle: the frame count is kept.
// (libvips gives RGBA for a GIF with a transparent index anywhere; decode_animation() makes
// frames without a transparent pixel RGB again.)
class GifPlanner {
 public:
  GifPlanner(const IndexedFrames& frames, int width, int height)
      : frames_(frames), width_(width), height_(height) {}

  void plan(int index, int delay_ms, GifFrame& frame) {
    const size_t count = frames_.planes.size();
    const auto i = static_cast<size_t>(index);
    const std::vector<uint8_t>& now = frames_.planes[i];
    const std::vector<uint8_t>* next =
        count > 1 && frames_.transparent ? &frames_.planes[(i + 1) % count] : nullptr;
    Rect rect;
    bool clears = false;  // frame i + 1 is transparent where frame i is opaque
    for (int y = 0; y < height_; ++y) {
      for (int x = 0; x < width_; ++x) {
        const size_t p = static_cast<size_t>(y) * static_cast<size_t>(width_) + x;
        const bool clear = next != nullptr && now[p] != 0 && (*next)[p] == 0;
        clears |= clear;
        if (clear || (i > 0 && before(p, x, y) != now[p])) rect.add(x, x + 1, y);
      }
    }
    if (i == 0) rect = Rect{0, 0, width_, height_};
    if (rect.empty()) rect = Rect{0, 0, 1, 1};
    frame.left = rect.left;
    frame.top = rect.top;
    frame.width = rect.width();
    frame.height = rect.height();
    frame.indices.resize(static_cast<size_t>(rect.width()) * static_cast<size_t>(rect.height()));
    uint8_t* out = frame.indices.data();
    for (int y = rect.top; y < rect.bottom; ++y) {
      for (int x = rect.left; x < rect.right; ++x) {
        const size_t p = static_cast<size_t>(y) * static_cast<size_t>(width_) + x;
        const bool shown = i > 0 && frames_.transparent && before(p, x, y) == now[p];
        *out++ = shown ? 0 : now[p];
      }
    }
    frame.delay_cs = std::min(kMaxGifDelay, delay_ms / 10 + (delay_ms % 10 >= 5 ? 1 : 0));
    frame.disposal = clears ? 2 : 1;
    previous_ = &now;
    previous_rect_ = rect;
    previous_cleared_ = clears;
  }

 private:
  // The canvas before the frame being planned, at pixel p = (x, y): the previous frame, with its
  // rectangle made transparent (index 0) when it was disposed of.
  uint8_t before(size_t p, int x, int y) const {
    return previous_cleared_ && previous_rect_.contains(x, y) ? 0 : (*previous_)[p];
  }

  const IndexedFrames& frames_;
  int width_;
  int height_;
  const std::vector<uint8_t>* previous_ = nullptr;
  Rect previous_rect_;
  bool previous_cleared_ = false;
};

Result<std::vector<uint8_t>> encode_gif(const Animation& animation) {
  const engine::Image& first = animation.frames[0];
  Result<IndexedFrames> indexed = index_frames(animation.frames);
  if (!indexed) return indexed.error();
  GifPlanner planner(*indexed, first.width, first.height);
  // Animation.loop counts plays; NETSCAPE2.0 counts repeats after the first play, and a GIF
  // without it plays once.
  const int repeats = animation.loop == 0 ? 0 : animation.loop - 1;
  return internal::write_gif_animation(
      first.width, first.height, indexed->palette, animation.loop == 1 ? -1 : repeats,
      static_cast<int>(animation.frames.size()), [&](int index, GifFrame& frame) {
        planner.plan(index, animation.delays_ms[static_cast<size_t>(index)], frame);
        return Status();
      });
}

// ---------------------------------------------------------------------------------------------
// WebP

struct MuxDelete {
  void operator()(WebPMux* mux) const { WebPMuxDelete(mux); }
};

// What a WebP frame stores: a rectangle of the canvas and how it is drawn.
struct WebpFrame {
  Rect rect;
  bool blend = false;
  engine::Image pixels;
};

// The rectangle where `now` differs from `before` (every channel, also under alpha 0).
Rect changed(const engine::Image& before, const engine::Image& now) {
  Rect rect;
  const size_t channels = static_cast<size_t>(now.channels);
  for (int y = 0; y < now.height; ++y) {
    const uint8_t* a = before.row(y);
    const uint8_t* b = now.row(y);
    if (std::memcmp(a, b, now.stride()) == 0) continue;
    int x0 = 0;
    while (std::memcmp(a + x0 * channels, b + x0 * channels, channels) == 0) ++x0;
    int x1 = now.width;
    while (std::memcmp(a + (x1 - 1) * channels, b + (x1 - 1) * channels, channels) == 0) --x1;
    rect.add(x0, x1, y);
  }
  return rect;
}

// Frame i as WebP stores it. Every frame is drawn without disposal, so the canvas before frame
// i is exactly frame i - 1. Frame 0 covers the canvas; frame i the rectangle that changed
// (offsets snapped to even, as WebP stores them; a frame with no change keeps a 1x1 rectangle,
// so that the frame count is kept). Blended, its unchanged pixels become transparent (the
// canvas shows through; they compress to almost nothing), which is exact only when every pixel
// it changes is opaque: blending a translucent pixel would mix it with the canvas. Else it
// replaces the rectangle as it is. Measured on 30 frames of 320x240 dithered to 8 colours: 15 KB
// against 106 KB with every frame whole (4x4 Bayer), 540 KB against 790 KB (Floyd-Steinberg),
// within 0.1 % of WebPAnimEncoder (which merges repeated frames into one). libvips gives RGBA
// for an animated WebP with a frame smaller than the canvas; decode_animation() makes frames
// without a translucent pixel RGB again.
WebpFrame plan_webp_frame(const std::vector<engine::Image>& frames, size_t i) {
  const engine::Image& now = frames[i];
  WebpFrame frame;
  frame.rect = Rect{0, 0, now.width, now.height};
  if (i > 0) {
    frame.rect = changed(frames[i - 1], now);
    if (frame.rect.empty()) frame.rect = Rect{0, 0, 1, 1};  // kept as a frame of its own
    frame.rect.left &= ~1;
    frame.rect.top &= ~1;
  }
  const Rect& r = frame.rect;
  const engine::Image* before = i > 0 ? &frames[i - 1] : nullptr;
  const size_t channels = static_cast<size_t>(now.channels);
  frame.blend = before != nullptr;
  for (int y = r.top; y < r.bottom && frame.blend; ++y) {
    for (int x = r.left; x < r.right && frame.blend; ++x) {
      frame.blend = channels == 3 || now.at(x, y)[3] == 255 ||
                    std::memcmp(now.at(x, y), before->at(x, y), channels) == 0;
    }
  }
  frame.pixels = engine::Image(r.width(), r.height(), frame.blend ? 4 : now.channels);
  for (int y = r.top; y < r.bottom; ++y) {
    uint8_t* out = frame.pixels.row(y - r.top);
    for (int x = r.left; x < r.right; ++x) {
      const uint8_t* p = now.at(x, y);
      if (!frame.blend) {
        out = std::copy(p, p + channels, out);
      } else if (std::memcmp(p, before->at(x, y), channels) == 0) {
        out = std::fill_n(out, 4, uint8_t{0});
      } else {
        out = std::copy(p, p + 3, out);
        *out++ = 255;
      }
    }
  }
  return frame;
}

Result<std::vector<uint8_t>> encode_webp(const Animation& animation) {
  const engine::Image& first = animation.frames[0];
  if (first.width > WEBP_MAX_DIMENSION || first.height > WEBP_MAX_DIMENSION) {
    return make_error(ErrorKind::kInvalidArgument,
                      "WebP is limited to 16383x16383 pixels; use PNG");
  }
  std::unique_ptr<WebPMux, MuxDelete> mux(WebPMuxNew());
  if (!mux) return make_error(ErrorKind::kInternal, "cannot write the WebP: out of memory");
  for (size_t i = 0; i < animation.frames.size(); ++i) {
    const WebpFrame frame = plan_webp_frame(animation.frames, i);
    // Each frame is a lossless WebP of its own, written as encode() writes one.
    Result<std::vector<uint8_t>> bytes = internal::write_webp(frame.pixels);
    if (!bytes) return bytes.error();
    WebPMuxFrameInfo info{};
    info.bitstream = WebPData{bytes->data(), bytes->size()};
    info.x_offset = frame.rect.left;
    info.y_offset = frame.rect.top;
    info.duration = std::min(kMaxWebpDuration, animation.delays_ms[i]);
    info.id = WEBP_CHUNK_ANMF;
    info.dispose_method = WEBP_MUX_DISPOSE_NONE;
    info.blend_method = frame.blend ? WEBP_MUX_BLEND : WEBP_MUX_NO_BLEND;
    if (WebPMuxPushFrame(mux.get(), &info, /*copy_data=*/1) != WEBP_MUX_OK) {
      return make_error(ErrorKind::kInternal,
                        "cannot write the WebP: cannot add frame " + std::to_string(i));
    }
  }
  // The background colour is only a hint (browsers ignore it); transparent, as the canvas
  // starts in libvips and libwebp.
  const WebPMuxAnimParams params{0x00000000u, animation.loop};
  WebPData assembled;
  WebPDataInit(&assembled);
  if (WebPMuxSetCanvasSize(mux.get(), first.width, first.height) != WEBP_MUX_OK ||
      WebPMuxSetAnimationParams(mux.get(), &params) != WEBP_MUX_OK ||
      WebPMuxAssemble(mux.get(), &assembled) != WEBP_MUX_OK) {
    WebPDataClear(&assembled);
    return make_error(ErrorKind::kInternal, "cannot write the WebP: cannot assemble the frames");
  }
  std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
  WebPDataClear(&assembled);
  return out;
}

}  // namespace

Result<std::vector<uint8_t>> encode_animation(const Animation& animation, OutputFormat format) {
  if (format == OutputFormat::kPng) {
    return make_error(ErrorKind::kInvalidArgument,
                      "PNG holds no animation here; encode each frame, or use GIF or WebP");
  }
  if (Status s = check_animation(animation); !s) return s.error();
  if (format == OutputFormat::kGif) return encode_gif(animation);
  if (format == OutputFormat::kWebp) return encode_webp(animation);
  return make_error(ErrorKind::kInvalidArgument, "unknown output format");
}

}  // namespace dither::imaging
