// Plain 8-bit interleaved pixel buffers, the engine's only image type.
//
// An `Image` owns `width * height * channels` bytes, row after row with no padding; channels is 3
// (RGB) or 4 (RGBA, alpha last, not premultiplied). The engine never decodes or encodes files:
// that is src/imaging's job.
//
//   Image img(640, 480, 3);
//   img.at(10, 20)[0] = 255;  // red channel of pixel (10, 20)
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/unzeroed.h"

namespace dither::engine {

// Allocator for pixel storage. It does not zero-fill (every producer writes every byte anyway),
// and it keeps one freed large buffer for the next (image.cc). The contents of a newly
// constructed Image are therefore unspecified.
template <class T>
struct PixelAllocator : UnzeroedConstruct {
  using value_type = T;
  PixelAllocator() = default;
  template <class U>
  PixelAllocator(const PixelAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return static_cast<T*>(allocate_pixels(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { free_pixels(p, n * sizeof(T)); }
  friend bool operator==(const PixelAllocator&, const PixelAllocator&) { return true; }

 private:
  static void* allocate_pixels(size_t bytes);
  static void free_pixels(void* p, size_t bytes);
};

using PixelBuffer = std::vector<uint8_t, PixelAllocator<uint8_t>>;

// Pixel buffers of at least this many bytes are each a mapping of their own (on Linux), which
// the split JPEG decoder may move pages into (imaging/jpeg_scans.cc).
inline constexpr size_t kMappedPixelBytes = size_t{4} << 20;

struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;  // 3 = RGB, 4 = RGBA
  PixelBuffer pixels;

  Image() = default;
  Image(int w, int h, int c)
      : width(w),
        height(h),
        channels(c),
        pixels(static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(c)) {}

  bool has_alpha() const { return channels == 4; }
  size_t stride() const { return static_cast<size_t>(width) * static_cast<size_t>(channels); }
  size_t pixel_count() const { return static_cast<size_t>(width) * static_cast<size_t>(height); }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * stride(); }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * stride(); }
  uint8_t* at(int x, int y) {
    return row(y) + static_cast<size_t>(x) * static_cast<size_t>(channels);
  }
  const uint8_t* at(int x, int y) const {
    return row(y) + static_cast<size_t>(x) * static_cast<size_t>(channels);
  }
};

// Gives the memory of rows [begin, end) back to the operating system: for a pipeline done with
// those rows for good (dithered, then indexed by the encoder), so that a large image is never
// resident whole. Their contents become unspecified (zeros if touched again); the image keeps its
// size. Only whole pages inside the rows are released.
void release_rows(Image& img, int begin, int end);

}  // namespace dither::engine
