// The image decoder (src/imaging/codec.h) on any bytes, with small limits: sniff, probe, verify,
// decode, decode_animation.
// Seeds cover every accepted format (JPEG, PNG, GIF, WebP, TIFF; fuzz/make_seeds.cc).
//
// Invariants: only the documented error kinds come out (never kInternal for bad input); what
// decodes was recognised by sniff(), fits the limits, is 8-bit RGB or RGBA with exactly
// width * height * channels bytes, and has the size probe() announced (orientation applied). An
// animation has probe()'s frame count, every frame of that size and one channel count, a delay
// per frame, and fits the animation limits.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "imaging/codec.h"

namespace {

bool documented(dither::ErrorKind kind) {
  using dither::ErrorKind;
  return kind == ErrorKind::kUnsupported || kind == ErrorKind::kTooLarge ||
         kind == ErrorKind::kTooManyPixels || kind == ErrorKind::kUndecodable;
}

void check_animation(std::span<const uint8_t> bytes, const dither::imaging::Limits& limits,
                     const dither::imaging::ImageInfo& info) {
  using namespace dither;
  const Result<imaging::Animation> animation = imaging::decode_animation(bytes, limits);
  if (!animation) {
    if (!documented(animation.error().kind)) {
      std::fprintf(stderr, "decode_animation: %s\n", animation.error().message.c_str());
    }
    FUZZ_CHECK(documented(animation.error().kind));
    // Not checked: that what verify() accepted decodes. libvips 8.14 sometimes reports success
    // for a corrupt lossless WebP that libwebp refuses every time (the pixels then all 0), so a
    // second decoding of the same bytes may differ (docs/FUZZING.md, "Findings").
    return;
  }
  const std::vector<engine::Image>& frames = animation->frames;
  FUZZ_CHECK(static_cast<int>(frames.size()) == info.frames);
  FUZZ_CHECK(animation->delays_ms.size() == frames.size());
  FUZZ_CHECK(info.frames == 1 || (info.frames <= limits.max_animation_frames &&
                                  uint64_t(info.width) * uint64_t(info.height) * frames.size() <=
                                      limits.max_animation_pixels));
  for (const engine::Image& f : frames) {
    FUZZ_CHECK(f.width == info.width && f.height == info.height);
    FUZZ_CHECK(f.channels == frames.front().channels);
    FUZZ_CHECK(f.pixels.size() == static_cast<size_t>(f.width) * static_cast<size_t>(f.height) *
                                      static_cast<size_t>(f.channels));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!dither::imaging::init()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dither;
  const imaging::Limits limits{.max_bytes = 256 * 1024,
                               .max_pixels = 512 * 512,
                               .max_animation_frames = 16,
                               .max_animation_pixels = 4 * 512 * 512};
  const std::span<const uint8_t> bytes(data, size);

  const std::optional<imaging::InputFormat> format = imaging::sniff(bytes);
  const Result<imaging::ImageInfo> info = imaging::probe(bytes, limits);
  if (!info) {
    if (!documented(info.error().kind)) {
      std::fprintf(stderr, "probe: %s\n", info.error().message.c_str());
    }
    FUZZ_CHECK(documented(info.error().kind));
  } else {
    FUZZ_CHECK(format.has_value() && info->format == *format);
    FUZZ_CHECK(info->width > 0 && info->height > 0);
    FUZZ_CHECK(static_cast<uint64_t>(info->width) * static_cast<uint64_t>(info->height) <=
               limits.max_pixels);
  }

  // verify() (what uploads run: a JPEG read at a smaller scale) never crashes either, and when it
  // accepts, it says probe()'s size.
  const Result<imaging::ImageInfo> verified = imaging::verify(bytes, limits);
  if (!verified) {
    FUZZ_CHECK(documented(verified.error().kind));
  } else {
    FUZZ_CHECK(info.ok() && verified->width == info->width && verified->height == info->height);
  }

  const Result<engine::Image> image = imaging::decode(bytes, limits);
  if (!image) {
    if (!documented(image.error().kind)) {
      std::fprintf(stderr, "decode: %s\n", image.error().message.c_str());
    }
    FUZZ_CHECK(documented(image.error().kind));
    return 0;
  }
  FUZZ_CHECK(format.has_value());
  FUZZ_CHECK(info.ok());  // decode() is probe() first
  FUZZ_CHECK(image->channels == 3 || image->channels == 4);
  FUZZ_CHECK(image->width == info->width && image->height == info->height);
  FUZZ_CHECK(image->pixels.size() == static_cast<size_t>(image->width) *
                                         static_cast<size_t>(image->height) *
                                         static_cast<size_t>(image->channels));
  check_animation(bytes, limits, *info);
  return 0;
}
