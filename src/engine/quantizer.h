// Nearest-colour search in the working space, shared by every algorithm.
//
// Built once per image from a palette, a colour space and a metric; immutable and thread-safe
// afterwards. Two shapes:
//  - levels palettes are separable: each channel is quantised on its own through a 65536-entry
//    table (the prototype's formula in sRGB mode, nearest level in linear mode), whatever the
//    metric, since a weighted distance to a grid is minimised channel by channel;
//  - list palettes use a 32x32x32 grid of cells over the working cube, each holding the few
//    colours that can be nearest anywhere inside it (Heckbert's locally sorted search). Most
//    cells hold one candidate, so most look-ups are a single table read. Ties go to the lowest
//    palette index, exactly like a brute-force search.
//
//   Quantizer q(palette, ColorSpace::kSrgb, Metric::kEuclidean);
//   int i = q.nearest(r, g, b);        // list palettes
//   int l = q.level_of(w);             // levels palettes, per channel
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "engine/color.h"
#include "engine/options.h"
#include "engine/palette.h"

namespace dither {

class Quantizer {
 public:
  Quantizer(const Palette& palette, ColorSpace space, Metric metric);

  ColorSpace space() const { return space_; }
  Metric metric() const { return metric_; }
  // 8-bit sRGB sample -> working value.
  const std::array<uint16_t, 256>& to_working() const { return *to_working_; }

  bool is_levels() const { return levels_ > 0; }

  // Levels palettes.
  int levels() const { return levels_; }
  int level_of(int working) const { return level_of_[static_cast<size_t>(working)]; }
  int32_t level_working(int level) const { return level_working_[static_cast<size_t>(level)]; }
  uint8_t level_output(int level) const { return level_output_[static_cast<size_t>(level)]; }

  // List palettes: index of the nearest colour to a working-space point (each in 0..65535).
  int nearest(int r, int g, int b) const {
    const uint32_t cell = (static_cast<uint32_t>(r) >> kCellShift << (2 * kCellBits)) |
                          (static_cast<uint32_t>(g) >> kCellShift << kCellBits) |
                          (static_cast<uint32_t>(b) >> kCellShift);
    const uint32_t begin = cell_begin_[cell];
    const uint32_t end = cell_begin_[cell + 1];
    if (end - begin == 1) return candidates_[begin];
    return nearest_among(r, g, b, begin, end);
  }
  int size() const { return static_cast<int>(colors_.size()); }
  Color color(int index) const { return colors_[static_cast<size_t>(index)]; }
  const std::array<int32_t, 3>& working(int index) const {
    return working_[static_cast<size_t>(index)];
  }
  // Weighted squared distance between a working point and palette colour `index`.
  int64_t distance(int r, int g, int b, int index) const;
  // The metric's integer weights for R, G, B.
  const std::array<int64_t, 3>& weights() const { return weights_; }

 private:
  static constexpr int kCellBits = 5;
  static constexpr int kCellShift = 16 - kCellBits;
  int nearest_among(int r, int g, int b, uint32_t begin, uint32_t end) const;
  void build_cells();

  ColorSpace space_;
  Metric metric_;
  const std::array<uint16_t, 256>* to_working_;
  std::array<int64_t, 3> weights_{};

  int levels_ = 0;
  std::vector<uint8_t> level_of_;
  std::vector<int32_t> level_working_;
  std::vector<uint8_t> level_output_;

  std::vector<Color> colors_;
  std::vector<std::array<int32_t, 3>> working_;
  std::vector<uint32_t> cell_begin_;
  std::vector<uint8_t> candidates_;
};

}  // namespace dither
