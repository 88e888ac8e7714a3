// Nearest-colour search in the working space, shared by every algorithm.
//
// Built once per image from a palette, a colour space and a metric; immutable and thread-safe
// afterwards. Two shapes:
//  - levels palettes are separable: each channel is quantised on its own through a 65536-entry
//    table (the prototype's formula in sRGB mode, nearest level in linear mode), whatever the
//    metric, since a weighted distance to a grid is minimised channel by channel (for oklab and
//    ciede2000 that is the documented rule, docs/ENGINE-DISTANCE.md);
//  - list palettes use a 32x32x32 grid of cells over the working cube, each holding the few
//    colours that can be nearest anywhere inside it (Heckbert's locally sorted search). Most
//    cells hold one candidate, so most look-ups are a single table read. Ties go to the lowest
//    palette index, exactly like a brute-force search. With Metric::kOklab the candidates are
//    found from the cell's bounding box in Oklab and compared in Oklab; with kCiede2000 every
//    look-up searches the colours outward by lightness (Delta E 2000 has no box bound).
//
// Error diffusion with list palettes uses cell_nearest() instead: one table read per pixel, see
// below.
//
//   Quantizer q(palette, ColorSpace::kSrgb, Metric::kEuclidean);
//   int i = q.nearest(r, g, b);        // list palettes
//   int l = q.level_of(w);             // levels palettes, per channel
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/color.h"
#include "engine/options.h"
#include "engine/palette.h"

namespace dither::engine {

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
    const uint32_t entry = cells_[cell];
    if (entry & kSingle) return static_cast<int>(entry & 0xff);
    if (entry & kConverted) return nearest_converted(r, g, b, entry);
    const uint8_t* group = candidates_.data() + (entry & kOffsetMask);
    const int groups = static_cast<int>(entry >> kGroupShift) & 0x3f;
    int best = best_of_four(r, g, b, group);
    for (int k = 1; k <= groups; ++k) {
      const int challenger = best_of_four(r, g, b, group + 4 * k);
      // Earlier groups hold lower indices: only a strictly smaller distance wins.
      if (rank(r, g, b, challenger) < rank(r, g, b, best)) best = challenger;
    }
    return best;
  }
  int size() const { return static_cast<int>(colors_.size()); }
  Color color(int index) const { return colors_[static_cast<size_t>(index)]; }
  const Color* colors() const { return colors_.data(); }
  const std::array<int32_t, 3>& working(int index) const {
    return working_[static_cast<size_t>(index)];
  }
  // Weighted squared distance in the working space between a working point and palette colour
  // `index` (Yliluoma's candidates). Oklab and CIEDE2000 use the weights (1, 1, 1) here.
  int64_t distance(int r, int g, int b, int index) const {
    const auto& p = working4_[static_cast<size_t>(index)];
    const int64_t dr = r - p[0];
    const int64_t dg = g - p[1];
    const int64_t db = b - p[2];
    return weights_[0] * dr * dr + weights_[1] * dg * dg + weights_[2] * db * db;
  }
  // The metric's integer weights for R, G, B in the working space: (2126, 7152, 722) for
  // kPerceptual, (1, 1, 1) otherwise.
  const std::array<int64_t, 3>& weights() const { return weights_; }

  // Error diffusion's look-up for list palettes: the colour nearest (exactly, as nearest()) to
  // the middle of the sample cell holding the point. A sample cell spans four 8-bit sRGB steps
  // per channel (64^3 cells; in linear light too, so dark tones are not lumped together).
  // Diffusion carries the difference to the chosen colour forward, so the rare second-nearest
  // pick near a boundary costs no tone; in exchange every pixel is one table read, filled on
  // first use (concurrent fills write the same value).
  int cell_nearest(int r, int g, int b) const {
    return small_cells() ? cell_table8().nearest(r, g, b) : cell_table16().nearest(r, g, b);
  }

  // The same look-up as a small copyable value of raw pointers, for hot loops: a local copy
  // stays in registers where the quantiser's own members would be re-read after every store.
  // Palettes of at most 255 colours keep one byte per cell (256 KiB for the 64^3 cells, half the
  // cache footprint), larger ones two.
  template <class T>
  struct CellTableOf {
    static constexpr T kUnknown = static_cast<T>(~T{0});
    const uint8_t* sample_cell;  // nullptr in sRGB mode, where the cell is computed
    T* colour;
    const Quantizer* owner;
    int nearest(int r, int g, int b) const {
      return at((cell_of(r) << 12) | (cell_of(g) << 6) | cell_of(b));
    }
    // The colour of cell (red << 12) | (green << 6) | blue, each a sample cell (cell_of()).
    int at(size_t cell) const {
      const T known = std::atomic_ref<T>(colour[cell]).load(std::memory_order_relaxed);
      return known != kUnknown ? known : owner->fill_cell(cell);
    }
    size_t cell_of(int w) const {
      return sample_cell ? sample_cell[static_cast<size_t>(w)]
                         : static_cast<size_t>(w + 128) / 1028;
    }
  };
  bool small_cells() const { return colors_.size() <= 255; }
  CellTableOf<uint8_t> cell_table8() const { return {sample_cells(), cell_colour8_.data(), this}; }
  CellTableOf<uint16_t> cell_table16() const {
    return {sample_cells(), cell_colour16_.data(), this};
  }
  // The sample cell (0..63) of a working value: its nearest 8-bit sample, divided by 4. In sRGB
  // mode the nearest sample is (w + 128) / 257 (no ties), so no table read is needed.
  size_t sample_cell_of(int working) const { return cell_table16().cell_of(working); }

 private:
  int fill_cell(size_t cell) const;
  // nearest() for cells marked kConverted: Oklab among the cell's candidates, or Delta E 2000
  // among all colours.
  int nearest_converted(int r, int g, int b, uint32_t entry) const;
  int nearest_ciede2000(const Lab& point) const;
  // The candidate grid: for each cell, the colours that can be nearest anywhere in it, from
  // distances(cr, cg, cb, dmin, dmax), which gives each of the n colours' smallest and largest
  // distance to a box holding every point of the cell.
  struct Box {
    std::array<int64_t, 3> lo, hi;
  };
  template <class Distances>
  void build_cells(size_t n, uint32_t flag, Distances distances);
  void build_metric_cells();
  void build_rgb_cells();    // distances in the working space, tabulated per axis
  void build_oklab_cells();  // boxes and distances in Oklab
  const uint8_t* sample_cells() const {
    return space_ == ColorSpace::kSrgb ? nullptr : sample_cell_.data();
  }
  static constexpr int kCellBits = 5;
  static constexpr int kCellShift = 16 - kCellBits;
  // distance(v, i) minus the same sum_c k_c v_c^2 for every colour: sum_c k_c p_c^2 -
  // 2 sum_c k_c v_c p_c. Ranks colours exactly like distance() (ties included) with three
  // multiplications instead of six.
  int64_t rank(int r, int g, int b, int index) const {
    const Ranked& p = ranked_[static_cast<size_t>(index)];
    return p.norm - 2 * (r * p.kr + g * p.kg + b * p.kb);
  }

  // The nearest of four candidates in increasing index order (ties to the first), branch-free.
  int best_of_four(int r, int g, int b, const uint8_t* c) const {
    const int64_t d0 = rank(r, g, b, c[0]);
    const int64_t d1 = rank(r, g, b, c[1]);
    const int64_t d2 = rank(r, g, b, c[2]);
    const int64_t d3 = rank(r, g, b, c[3]);
    const int i01 = d1 < d0 ? c[1] : c[0];
    const int64_t m01 = d1 < d0 ? d1 : d0;
    const int i23 = d3 < d2 ? c[3] : c[2];
    const int64_t m23 = d3 < d2 ? d3 : d2;
    return m23 < m01 ? i23 : i01;
  }

  // cells_ entries: kSingle | index, or (extra groups << kGroupShift) | offset of the first group
  // of four candidates in candidates_ (lists padded by repeating their last colour), with
  // kConverted when they are compared in Oklab or by Delta E 2000 rather than by rank().
  static constexpr uint32_t kSingle = 0x80000000u;
  static constexpr uint32_t kConverted = 0x40000000u;
  static constexpr int kGroupShift = 24;
  static constexpr uint32_t kOffsetMask = 0xffffff;

  ColorSpace space_;
  Metric metric_;
  const std::array<uint16_t, 256>* to_working_;
  const std::array<uint16_t, 65536>* to_linear_;
  std::array<int64_t, 3> weights_{};

  int levels_ = 0;
  std::vector<uint8_t> level_of_;
  std::vector<int32_t> level_working_;
  std::vector<uint8_t> level_output_;

  std::vector<Color> colors_;
  std::vector<std::array<int32_t, 3>> working_;
  std::vector<std::array<int32_t, 4>> working4_;  // working_, padded for aligned loads
  struct Ranked {
    int64_t kr, kg, kb;  // k_c * p_c
    int64_t norm;        // sum_c k_c * p_c^2
  };
  std::vector<Ranked> ranked_;
  std::vector<Oklab> oklab_;           // kOklab: the colours in Oklab
  std::vector<Lab> lab_;               // kCiede2000: the colours in CIELAB
  std::vector<uint8_t> by_lightness_;  // kCiede2000: colour indices by increasing L
  std::vector<uint32_t> cells_;
  std::vector<uint8_t> candidates_;
  std::vector<uint8_t> sample_cell_;  // working value -> sample cell
  // 64^3 cells, kUnknown until first use: one of the two, as small_cells() says.
  mutable std::vector<uint8_t> cell_colour8_;
  mutable std::vector<uint16_t> cell_colour16_;
};

}  // namespace dither::engine
