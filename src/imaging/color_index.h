// Distinct-colour counting for the encoders: turns an image with few colours into a palette plus
// one index per pixel, or says there are too many.
//
// Internal to dither_imaging.
//
//   std::optional<IndexedImage> ix = index_colors(img, AlphaMode::kExact);
//   if (ix) write_indexed(ix->palette, ix->indices); else write_truecolour(img);
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/image.h"

namespace dither::imaging::internal {

struct Rgba {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  uint8_t a = 255;
};

inline constexpr int kMaxIndexedColors = 256;

struct IndexedImage {
  // The distinct colours; entries with alpha < 255 come first (so a PNG tRNS chunk stays short),
  // otherwise in order of first appearance, so the result is deterministic.
  std::vector<Rgba> palette;
  std::vector<uint8_t> indices;  // width * height, row-major, each < palette.size()
};

enum class AlphaMode {
  kExact,  // every RGBA value is its own colour (RGB images: alpha 255)
  // PNG: alpha 0 is one transparent colour (0, 0, 0, 0), whatever colour it hid; every other
  // RGBA value is its own colour. A 1-bit alpha costs one palette entry, not one per colour.
  kOneTransparent,
  kBinary,  // GIF: alpha < 128 is one transparent colour (0, 0, 0, 0); otherwise alpha is 255
};

// The palette and indices of `img`, or nullopt when it has more than 256 distinct colours.
// One pass over the pixels with a last-colour cache and a small open-addressing table.
std::optional<IndexedImage> index_colors(const engine::Image& img, AlphaMode mode);

// index_colors() in steps, for an image whose rows become final from the top (the pipeline
// indexes rows while the decoder still works). The result is the same.
//
//   ColorIndexer indexer(img, mode);
//   indexer.add_rows(img, n);      // the top n rows are final (n only grows)
//   std::optional<IndexedImage> ix = indexer.finish(img);   // indexes the rest
class ColorIndexer {
 public:
  ColorIndexer(const engine::Image& shape, AlphaMode mode);
  ~ColorIndexer();
  ColorIndexer(const ColorIndexer&) = delete;
  ColorIndexer& operator=(const ColorIndexer&) = delete;
  void add_rows(const engine::Image& img, int rows);
  std::optional<IndexedImage> finish(const engine::Image& img);

  // How far it has got: the top `rows` rows' indices are in `indices` (width a row), `colours`
  // distinct so far; `fits` is false once there were more than 256. For an RGB image an index,
  // once given, is the final one (finish() only moves translucent colours to the front).
  struct Progress {
    int rows = 0;
    int colours = 0;
    bool fits = true;
    const uint8_t* indices = nullptr;
  };
  Progress progress() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dither::imaging::internal
