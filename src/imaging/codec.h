// Image I/O at the edge of the engine: sniff, probe, decode, resize and encode.
//
// Everything untrusted passes through here. Input is recognised by its magic bytes only (never by
// a name or a declared content type), checked against byte and pixel limits from the header alone
// (before any pixel is decoded), then decoded by libvips with an allow-list of loaders into the
// engine's `Image`: 8-bit sRGB, RGB or RGBA, EXIF orientation applied, first frame only. Output is
// written by our PNG writer (libdeflate), giflib and libwebp directly, so every pixel keeps exactly
// its colour: an indexed PNG at the smallest bit depth that fits, a GIF, or a lossless WebP.
//
//   Result<Image> img = imaging::decode(upload_bytes, imaging::Limits{});
//   if (!img) return img.error();  // kUnsupported, kTooLarge, kTooManyPixels or kUndecodable
//   Image dithered = ...;
//   Result<std::vector<uint8_t>> png = imaging::encode(dithered, imaging::OutputFormat::kPng);
//
// Thread-safe: every function may be called from any thread at the same time. libvips is set up
// once, on first use (or by an explicit `init()` at start-up). No function throws on bad input;
// every failure is an `Error` (std::bad_alloc aside).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/image.h"

namespace dither::imaging {

// Defaults follow SPEC section 7: 8 MB uploads, 50 megapixels. The others bound what one file
// may cost besides its pixel count (docs/IMAGING.md, "Limits"); all but the time are checked from
// the header alone.
struct Limits {
  size_t max_bytes = 8 * 1024 * 1024;
  uint64_t max_pixels = 50'000'000;
  // Channels per pixel (kUnsupported past it); CMYK may have one more, for its alpha.
  int max_bands = 4;
  // Bits per sample: 8 or 16 (kUnsupported past it: 32-bit integer, float, double, complex).
  int max_bits_per_sample = 16;
  // Pages in a TIFF (kUnsupported past it; only the first is ever decoded).
  int max_pages = 1000;
  // Animated GIF and WebP: frames, and pixels over all frames (width * height * frames), both
  // checked by probe() from the header (kTooManyPixels past either), so that an animation that
  // is accepted can always be decoded whole (decode_animation()). Each frame is also bounded by
  // max_pixels.
  int max_animation_frames = 300;
  uint64_t max_animation_pixels = 50'000'000;
  // Wall-clock time for decode() (reading the pixels, colour conversion, rotation): past it the
  // decoding is stopped and the image is kUndecodable. 0: no limit.
  std::chrono::milliseconds max_decode_time{20'000};
};

// The allow-list of input formats. Anything else is rejected as kUnsupported.
enum class InputFormat { kJpeg, kPng, kWebp, kGif, kTiff };
enum class OutputFormat { kPng, kGif, kWebp };

// Short lower-case names ("jpeg", "png", "webp", "gif", "tiff"); for outputs also the file
// extension.
std::string_view to_string(InputFormat format);
std::string_view to_string(OutputFormat format);
// MIME types ("image/jpeg", ...).
std::string_view content_type(InputFormat format);
std::string_view content_type(OutputFormat format);
// "png", "gif" or "webp", case-insensitive; anything else is kInvalidArgument.
Result<OutputFormat> parse_output_format(std::string_view text);

// The format by magic bytes alone: JPEG FF D8 FF, the PNG signature, GIF87a/GIF89a,
// RIFF....WEBP, TIFF "II*\0" / "MM\0*" (classic TIFF; BigTIFF is not on the allow-list).
std::optional<InputFormat> sniff(std::span<const uint8_t> bytes);

// What the header says. width and height are as displayed, i.e. after EXIF orientation (swapped
// for orientations 5 to 8).
struct ImageInfo {
  InputFormat format = InputFormat::kPng;
  int width = 0;
  int height = 0;
  // Frames of an animated GIF or WebP (1 for every other image; a TIFF's pages are not frames).
  int frames = 1;
};

// Sets up libvips: the loader allow-list, no operation cache, bounded worker threads. Idempotent
// and thread-safe; probe, decode and resize call it themselves. An error here means libvips is
// unusable (kInternal).
Status init();

// For main(), before any other thread starts and before init(): keeps libvips' optional modules
// (its ImageMagick, PDF, HEIF, JPEG XL and OpenSlide loaders, which init() blocks anyway) from
// being loaded at all, by pointing VIPSHOME, where libvips looks for them, at a path that cannot
// hold any. A VIPSHOME already set is left alone. Start-up is about 20 ms shorter, and those
// libraries never enter the process. (Not done by init(): setting the environment while other
// threads may read it is not safe.)
void leave_out_vips_modules();

// Checks `bytes` without decoding pixels: size against limits.max_bytes (kTooLarge), format
// (kUnsupported, also for empty input), header readable (kUndecodable), width * height against
// limits.max_pixels (kTooManyPixels), bands, bits per sample and pages against their limits
// (kUnsupported), an animation's frames and total pixels against theirs (kTooManyPixels).
Result<ImageInfo> probe(std::span<const uint8_t> bytes, const Limits& limits);

// probe(), then decodes the first frame to 8-bit sRGB: EXIF orientation applied, an embedded ICC
// profile imported, greyscale / CMYK / 16-bit / palette inputs converted; RGBA when the file has
// alpha, else RGB. Truncated or corrupt data is kUndecodable: never a partial image. So is a
// decoding stopped at limits.max_decode_time.
Result<engine::Image> decode(std::span<const uint8_t> bytes, const Limits& limits);

// What an upload needs: decode()'s verdict without keeping the pixels, for less work. Every pixel
// is read as decode() reads it, except that a JPEG is read at 1/8 scale (libjpeg's scaled inverse
// DCT: every entropy-coded byte is still decoded, so truncated or corrupt data fails exactly as
// in decode(), but the inverse DCT and colour work shrink 64-fold). Same errors as decode() (the
// tests compare them on mutated files); on success, probe()'s answer. For an animated GIF or
// WebP every frame is read, so that what verify() accepts decode_animation() decodes.
Result<ImageInfo> verify(std::span<const uint8_t> bytes, const Limits& limits);

// decode(), split so that rows can be read while it runs (the pipeline dithers beside it):
//
//   Result<std::unique_ptr<DecodeJob>> job = DecodeJob::open(bytes, limits);  // probe()'s checks
//   std::thread decoder([&] { decoded = (*job)->run(); });  // fills (*job)->image() from the top
//   (*job)->wait_rows(n);   // on another thread: returns once the top n rows are final
//
// probe()'s checks are made on the same header; for a plain progressive JPEG (jpeg_scans.h) they
// are made from its marker segments and libjpeg's header read, without loading libvips
// (docs/IMAGING.md). `bytes` must outlive the job. run() returns what decode() would; when it
// fails, every waiter is released at once (the rows are then meaningless). Rows come strip by
// strip, except for an EXIF orientation other than the default, where they all come at the end.
class DecodeJob {
 public:
  static Result<std::unique_ptr<DecodeJob>> open(std::span<const uint8_t> bytes,
                                                 const Limits& limits);
  ~DecodeJob();
  DecodeJob(const DecodeJob&) = delete;
  DecodeJob& operator=(const DecodeJob&) = delete;

  const ImageInfo& info() const;
  // At its final size from open() on; rows are final as wait_rows() says.
  engine::Image& image();
  Status run();
  void wait_rows(int rows) const;
  // Back-pressure, for a consumer that gives rows back as it finishes them (release_rows): from
  // now on run() stays at most `window` rows (plus one strip) ahead of the rows the consumer has
  // reported with consumed(). `window` must exceed the rows the consumer waits for beyond those
  // it has consumed, or both wait for ever. consumed(image().height) lifts the limit; a consumer
  // that stops early must call it.
  void keep_within(int window);
  void consumed(int rows);
  // The rows final so far (what wait_rows() waits on).
  int rows() const;

 private:
  struct State;
  explicit DecodeJob(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// An animation as shown: every frame whole (the file's frame offsets and disposal applied),
// all of one size and channel count, with how long each is shown.
struct Animation {
  std::vector<engine::Image> frames;
  std::vector<int> delays_ms;  // one per frame
  int loop = 0;                // times the animation plays; 0: for ever
};

// probe(), then every frame of an animated GIF or WebP: frame count against
// limits.max_animation_frames and width * height * frames against limits.max_animation_pixels
// (kTooManyPixels, from the header), each frame converted as decode() converts (8-bit sRGB,
// EXIF orientation applied). The frames are RGBA when a pixel of some frame is not opaque, else
// RGB; decode() decides from the header instead, so for an animation whose file declares alpha
// that no frame shows (a GIF with a transparent index, a WebP with a frame smaller than the
// canvas) decode() gives RGBA. Delays are libvips': a GIF's centiseconds * 10; loop as in
// Animation (a GIF's NETSCAPE2.0 count + 1, 1 without it). Any other input (a still GIF or WebP,
// JPEG, PNG, TIFF) is decode()'s image as the one frame, with delay 0 and loop 0. Same errors as
// decode() otherwise, and also kUndecodable for an animated GIF whose last frame is cut short
// (which libvips would show half decoded). The decode time limit covers all frames.
Result<Animation> decode_animation(std::span<const uint8_t> bytes, const Limits& limits);

// An animated GIF or WebP of `animation` (kGif, kWebp; kPng is kInvalidArgument, as are no
// frames, frames of different sizes or channel counts, a delay count other than the frame
// count, negative delays, a loop outside 0..65535), every pixel exact as encode() keeps it,
// delays and loop kept, every frame kept (also one identical to the frame before), each frame
// after the first storing only the rectangle that changed. Deterministic.
//  - kGif: alpha is 1-bit as in encode(). One global colour table for all frames (more than 256
//    colours over the animation, transparent counted as one, is kInvalidArgument), the
//    NETSCAPE2.0 extension (loop - 1 repeats; none for loop 1), each frame's delay rounded to
//    centiseconds (at most 65535).
//  - kWebp: lossless, colours kept exactly (also under alpha 0), each frame's delay as its
//    duration (at most 2^24 - 1 ms).
Result<std::vector<uint8_t>> encode_animation(const Animation& animation, OutputFormat format);

// Resamples to width x height with Lanczos-3 (alpha premultiplied while resampling). A 0 for one
// side keeps the aspect ratio; both 0 returns the image unchanged; sides are clamped to >= 1.
// Negative sides are kInvalidArgument; a result over limits.max_pixels is kTooManyPixels.
Result<engine::Image> resize(const engine::Image& img, int width, int height,
                             const Limits& limits = Limits{});

// Encodes exactly, without changing any visible pixel:
//  - kPng: indexed PNG when there are <= 256 distinct RGBA values, counting every fully
//    transparent pixel as one entry (0, 0, 0, 0) whatever colour it hid (bit depth 1, 2, 4 or 8,
//    the smallest that fits; tRNS when any alpha != 255, translucent entries first), else 8-bit
//    truecolour RGB or RGBA (colours under alpha 0 kept).
//  - kGif: alpha is 1-bit in GIF: alpha < 128 becomes the transparent index, alpha >= 128 opaque.
//    More than 256 colours (counting transparent as one) is kInvalidArgument.
//  - kWebp: lossless, colours kept exactly (also under alpha 0).
// Deterministic: the same image gives the same bytes (for the same `effort`).
//
// `effort` is how hard PNG compression works, by what the image looks like to a compressor; the
// pixels are the same either way. libdeflate's level 6 for ordered dithers and anything else
// (repeating patterns: lower levels were up to 8 % larger than zlib's level 6, what libpng used
// before); level 3 for error-diffused images (noise: 98.6 % of zlib 6's size against 97.5 % at
// level 6, in 62 % of the time). docs/BENCHMARKS.md has the measured tables.
enum class PngEffort { kPatterned, kNoisy };
Result<std::vector<uint8_t>> encode(const engine::Image& img, OutputFormat format,
                                    PngEffort effort = PngEffort::kPatterned);

// encode() in steps, for an image whose rows become final from the top: what can be done per row
// (counting and indexing colours for PNG and GIF) is done as rows come, the rest at finish(). The
// bytes are encode()'s.
//
//   RowEncoder encoder(img, OutputFormat::kPng);
//   encoder.add_rows(img, n);                 // the top n rows are final (n only grows)
//   Result<std::vector<uint8_t>> bytes = encoder.finish(img);
class RowEncoder {
 public:
  RowEncoder(const engine::Image& shape, OutputFormat format,
             PngEffort effort = PngEffort::kPatterned);
  ~RowEncoder();
  RowEncoder(const RowEncoder&) = delete;
  RowEncoder& operator=(const RowEncoder&) = delete;
  void add_rows(const engine::Image& img, int rows);
  Result<std::vector<uint8_t>> finish(const engine::Image& img);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A preview for people, not an exact result: decode() (same formats, limits and errors), shrunk
// with resize() to fit in box x box (never enlarged; alpha kept), as a lossy WebP (quality 75)
// without metadata. box is 1..kMaxThumbnailBox.
inline constexpr int kMaxThumbnailBox = 2048;
Result<std::vector<uint8_t>> thumbnail(std::span<const uint8_t> bytes, int box,
                                       const Limits& limits);

}  // namespace dither::imaging
